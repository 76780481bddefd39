"""``--only sweep``: a sweep's trials in this process and on local Dask clusters, and
the samplers and pruners on the book's search."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

try:  # imported by asv's discovery as benchmarks.reports.*
    from .. import sweep_search
except ImportError:  # run from compare.py as a script: benchmarks/ is on sys.path
    import sweep_search

from .load import busy, stop


def _sweep_seconds(trials: int, client=None, **training) -> float:
    """Seconds from the moment the trials can start (cluster connected) to the last one
    finished, for a sweep in this process (client None) or on ``client``."""
    from fastnn import sweeps as S

    plan = S.prepare(trials=trials, seed=0, client=client, workers=None if client else 1,
                     training=training)
    t = {}
    plan.run(on_start=lambda c: t.setdefault("start", time.perf_counter()),
             progress=lambda *a: t.update(last=time.perf_counter()))
    return t["last"] - t["start"]  # (the best trial's final run for the test set excluded)


_HERE = """
import json, sys, time
import fastnn
from fastnn import sweeps as S
fastnn.set_num_threads(1)
S.sweep(trials=1, workers=1, hidden=[16], epochs=1)  # the kernels loaded, as on a warm worker
plan = S.prepare(trials=int(sys.argv[1]), seed=0, workers=1, training=json.loads(sys.argv[2]))
t = {}
plan.run(on_start=lambda c: t.setdefault("start", time.perf_counter()),
         progress=lambda *a: t.update(last=time.perf_counter()))
print(t["last"] - t["start"])
"""


def _here_seconds(trials: int, **training) -> float:
    """_sweep_seconds in this process's stead: a fresh process that hosts no scheduler
    (the clusters' schedulers run in this one, and their threads would take turns with
    the trials' for the GIL)."""
    out = subprocess.run([sys.executable, "-c", _HERE, str(trials), json.dumps(training)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def report_sweep(quick: bool = False) -> None:
    """The book's random search on digits: one process (in-process trials, as
    ``--workers 1``) vs a local cluster of 1 and 2 single-threaded workers (warm: the
    cluster started and the kernels loaded before the timing), quiet and beside busy
    processes; and the per-trial cost of the cluster."""
    try:
        import distributed
    except ImportError:
        print("## Sweeps: skipped (needs `pip install distributed`)\n")
        return
    import logging

    logging.getLogger("distributed").setLevel(logging.ERROR)  # no INFO lines as clusters close
    trials = 6 if quick else 16
    rounds = 1 if quick else 3
    work = dict(epochs=5 if quick else 40)  # digits' defaults: 128-128, batch 32, SGD
    tiny = dict(hidden=[16], epochs=1)
    clusters = {n: distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                            dashboard_address=":0", silence_logs=logging.ERROR)
                for n in (1, 2)}
    clients = {n: distributed.Client(c) for n, c in clusters.items()}
    try:
        for c in clients.values():  # workers import fastnn and load the kernels once
            _sweep_seconds(2, c, **tiny)
        print(f"## Sweeps: {trials} trials of digits 64-128-128-10, {work['epochs']} epochs "
              f"each (the book's random search), seconds from the first trial's start to the "
              f"last one's end, median of "
              f"{rounds}\n")
        print("| busy processes | in-process | 1 worker | 2 workers | 2 workers vs 1 | "
              "2 workers vs in-process |\n|---|---|---|---|---|---|")
        for load in (0, 1) if quick else (0, 1, 2):
            procs = busy(load)
            try:
                time.sleep(0.3)
                times = {k: [] for k in ("here", 1, 2)}
                for _ in range(rounds):  # interleaved
                    times["here"].append(_here_seconds(trials, **work))
                    for n, c in clients.items():
                        times[n].append(_sweep_seconds(trials, c, **work))
                med = {k: float(np.median(v)) for k, v in times.items()}
                print(f"| {load} | {med['here']:.2f} | {med[1]:.2f} | {med[2]:.2f} | "
                      f"{med[1] / med[2]:.2f}x | {med['here'] / med[2]:.2f}x |")
            finally:
                stop(procs)
        short, n_short = dict(epochs=2 if quick else 5), 8 if quick else 32
        times = {k: [] for k in ("here", 1, 2)}
        for _ in range(rounds):
            times["here"].append(_here_seconds(n_short, **short))
            for n, c in clients.items():
                times[n].append(_sweep_seconds(n_short, c, **short))
        med = {k: float(np.median(v)) for k, v in times.items()}
        print(f"\nShort trials ({n_short} trials of {short['epochs']} epochs, about "
              f"{med['here'] / n_short * 1e3:.0f} ms each, quiet): in-process "
              f"{med['here']:.2f} s, 1 worker {med[1]:.2f} s, 2 workers {med[2]:.2f} s: "
              f"2 workers vs 1 {med[1] / med[2]:.2f}x, vs in-process "
              f"{med['here'] / med[2]:.2f}x")
        n_tiny = 10 if quick else 40
        here = float(np.median([_here_seconds(n_tiny, **tiny) for _ in range(rounds)]))
        one = float(np.median([_sweep_seconds(n_tiny, clients[1], **tiny)
                               for _ in range(rounds)]))
        print(f"\nPer-trial cost of the cluster ({n_tiny} trials of 64-16-10 for one epoch, "
              f"one worker vs in-process): {(one - here) / n_tiny * 1e3:.1f} ms a trial "
              f"(in-process {here / n_tiny * 1e3:.1f} ms, 1 worker {one / n_tiny * 1e3:.1f} "
              f"ms a trial)\n")
    finally:
        for c in clients.values():
            c.close()
        for c in clusters.values():
            c.close()
    t0 = time.perf_counter()
    from fastnn import sweeps as S

    S.sweep(trials=2, workers=2, seed=0, **tiny)
    print(f"A whole `fastnn.sweep(workers=2)` of two tiny trials, starting and stopping its "
          f"cluster: {time.perf_counter() - t0:.2f} s\n")
    if not quick:
        report_cold_workers()
    report_search(quick)


def report_cold_workers(trials: int = 4) -> None:
    """A sweep on two fresh workers with an empty kernel cache, with and without the
    worker warm-up (``sweeps.warm``): the whole sweep's seconds, and its slowest trial
    (without the warm-up, each worker's first trial carries the compile)."""
    import os
    import tempfile

    from fastnn import sweeps as S

    print(f"## Cold workers: {trials} trials of digits 64-16-10, 2 epochs, on a fresh local "
          f"cluster of 2 workers with an empty kernel cache, seconds\n")
    print("| warm-up | whole sweep | slowest trial |\n|---|---|---|")
    before = os.environ.get("FASTNN_CACHE_DIR")
    try:
        for warmup in (False, True):
            with tempfile.TemporaryDirectory() as cache:
                os.environ["FASTNN_CACHE_DIR"] = cache  # (the workers inherit it)
                t0 = time.perf_counter()
                result = S.sweep(trials=trials, workers=2, seed=0, warmup=warmup,
                                 hidden=[16], epochs=2)
                whole = time.perf_counter() - t0
            slowest = max(r["wall_seconds"] for r in result)
            print(f"| {'on' if warmup else 'off'} | {whole:.1f} | {slowest:.2f} |", flush=True)
    finally:
        if before is None:
            os.environ.pop("FASTNN_CACHE_DIR", None)
        else:
            os.environ["FASTNN_CACHE_DIR"] = before
    print()


def report_search(quick: bool = False) -> None:
    """The samplers and pruners on the book's search, digits, in this process (a small
    version of ``benchmarks/sweep_search.py``; the same trials on any cluster)."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        print('## Samplers and pruners: skipped (--sampler tpe needs `pip install optuna`, '
              'in a checkout `pip install ".[search]"`)\n')
        return
    trials, epochs, seeds = (12, 3, range(1)) if quick else (24, 10, range(3))
    t0 = time.perf_counter()
    rows, _ = sweep_search.search_rows("digits", trials, epochs, seeds)
    print(f"## Samplers and pruners: digits, the book's search, {trials} trials of {epochs} "
          f"epochs, seeds 0-{len(seeds) - 1}, rounds of 4, in this process "
          f"({time.perf_counter() - t0:.0f} s)\n")
    print(sweep_search.markdown(rows) + "\n")

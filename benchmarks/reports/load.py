"""``--only load``: thread settings under load (busy processes started and stopped here).

Two tables, the cells issue 28's targets name:

* the 784-128-128-10 training step at each batch size and dtype, quiet and beside one and
  two busy processes: fastnn's default thread policy against each forced thread count
  (1 .. the usable cores), with the ratios default / best forced (target: at most 1.15)
  and default / one thread (target: at most 1.05); then ``fastnn train`` per setting;
* the book's chapter-6 scripts (``optimizer_compare_mnist.py``, ``batch_norm_test.py``,
  ``overfit_dropout.py``: their networks, batch sizes, optimizers and evaluations) with
  the imports swapped, beside busy processes: fastnn's default against the book's code
  (``book.py``) forced to one BLAS thread with threadpoolctl (target: fastnn at least
  1.3x faster).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

try:  # imported by asv's discovery as benchmarks.reports.*
    from .. import book
    from ..timing import interleaved
except ImportError:  # run from compare.py as a script: benchmarks/ is on sys.path
    import book
    from timing import interleaved

from .cases import problem

BEST_FORCED_TARGET = 1.15  # default / best forced thread count, at most
ONE_THREAD_TARGET = 1.05  # default / one thread, at most
BOOK_TARGET = 1.3  # the book's code on one BLAS thread / fastnn's default, at least


def busy(n: int):
    """Start n busy-loop processes (each holds a core); returns them for _stop."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop(procs) -> None:
    for p in procs:
        p.kill()
        p.wait()


def _beside(load: int):
    """A context: ``load`` busy processes running (and settled) inside it."""
    import contextlib

    @contextlib.contextmanager
    def running():
        procs = busy(load)
        try:
            time.sleep(0.3)
            yield
        finally:
            stop(procs)

    return running()


def _verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def report_load(batches=(32, 100, 1000), dtypes=(np.float32, np.float64), rounds: int = 7,
                quick: bool = False) -> None:
    """The step table, ``fastnn train`` per setting, then the chapter-6 scripts."""
    import fastnn
    from fastnn.threads import usable_cores

    settings = ["default", *range(1, usable_cores() + 1)]
    loads = (0, 1) if quick else (0, 1, 2)
    print("## Thread settings under load: 784-128-128-10 train_step, median ms (busy = "
          "`python -c \"while True: pass\"` processes started by this script; default = "
          "fastnn's own policy, N = `set_num_threads(N)`)\n")
    print("| busy | batch | dtype | " + " | ".join(f"{s}" for s in settings) +
          f" | default / best forced | default / 1 thread | targets (<= {BEST_FORCED_TARGET}, "
          f"<= {ONE_THREAD_TARGET}) |")
    print("|---" * (len(settings) + 6) + "|")
    try:
        for load in loads:
            with _beside(load):
                for dtype in dtypes:
                    for N in batches:
                        _step_row(load, N, np.dtype(dtype), settings, rounds)
                if not quick:
                    _train_row(load, settings)
    finally:
        fastnn.set_num_threads(None)
    print()
    report_chapter6_load(rounds, quick)


def _step_row(load: int, N: int, dtype, settings, rounds: int) -> None:
    import fastnn

    x, t = problem(N, dtype)
    opt = fastnn.SGD(lr=1e-4)

    def case(setting):
        net = fastnn.Sequential(784, [128, 128], 10, dtype=dtype, seed=0)
        xv, tv = net.validate(x, t)

        def step():
            fastnn.set_num_threads(None if setting == "default" else setting)
            net.engine.step(xv, tv, opt)
        return step

    r = interleaved({str(s): case(s) for s in settings}, rounds)
    best = min(r[str(s)] for s in settings if s != "default")
    to_best, to_one = r["default"] / best, r["default"] / r["1"]
    cells = " | ".join(f"{r[str(s)] * 1e3:.3f}" for s in settings)
    print(f"| {load} | {N} | {dtype.name} | {cells} | {to_best:.2f} | {to_one:.2f} | "
          f"{_verdict(to_best <= BEST_FORCED_TARGET and to_one <= ONE_THREAD_TARGET)} |",
          flush=True)


def _train_row(load: int, settings) -> None:
    times = {}
    for setting in settings:
        threads = "auto" if setting == "default" else str(setting)
        out = subprocess.run([sys.executable, "-m", "fastnn.cli", "train", "--json",
                              "--threads", threads], capture_output=True, text=True, check=True)
        times[setting] = json.loads(out.stdout)["train_seconds"]
    best = min(v for k, v in times.items() if k != "default")
    print(f"| {load} | `fastnn train` (digits), s | float64 | " +
          " | ".join(f"{times[s]:.2f}" for s in settings) +
          f" | {times['default'] / best:.2f} | {times['default'] / times[1]:.2f} | - |",
          flush=True)


# --- the book's chapter-6 scripts, imports swapped, beside busy processes -----------------

def script_epoch(nets, optimizers, x, t, evaluations, batch: int, iterations: int) -> None:
    """One epoch of a chapter-6 script's loop, the same calls on the book's classes and on
    fastnn's: ``iterations`` times a random batch, then for each network its gradient, its
    optimizer's update and the batch's loss (as the book's Trainer and
    optimizer_compare_mnist do); then each network's accuracy on each of
    ``evaluations`` ((x, t) pairs: the scripts' evaluation every epoch)."""
    for _ in range(iterations):
        idx = np.random.choice(x.shape[0], batch)
        xb, tb = x[idx], t[idx]
        for net, opt in zip(nets, optimizers):
            opt.update(net.params, net.gradient(xb, tb))
            net.loss(xb, tb)
    for net in nets:
        for xe, te in evaluations:
            net.accuracy(xe, te)


def chapter6_scripts(quick: bool = False) -> dict:
    """{script: (description, iterations per epoch, {"book": epoch, "fastnn": epoch})}: one
    epoch of each script's loop (their shapes on random data of MNIST's width, float64
    as the scripts), the book's code and fastnn's, both networks drawn alike."""
    import fastnn

    rng = np.random.default_rng(0)

    def data(n):
        return rng.random((n, 784)), rng.integers(0, 10, n)

    n_test = 1000 if quick else 10000
    x300, t300 = data(300)
    x1000, t1000 = data(1000)
    x_test, t_test = data(n_test)
    names = ("SGD", "Momentum", "AdaGrad", "Adam")
    rates = (0.01, 0.01, 0.01, 0.001)
    specs = {  # script: (description, [network kwargs; extend: MultiLayerNetExtend, as the
        #          script imports], optimizers, x, t, evaluations, batch, iterations per epoch)
        "optimizer_compare_mnist": (
            "784-100x4-10, SGD / Momentum / AdaGrad / Adam side by side, batch 128, the "
            "batch's loss each iteration", [dict(hidden=4)] * 4, list(zip(names, rates)),
            x1000, t1000, [], 128, 5),
        "batch_norm_test": (
            "784-100x5-10 with and without BatchNorm, SGD 0.01, batch 100, 1,000 rows, "
            "training accuracy each epoch",
            [dict(hidden=5, extend=True, batchnorm=True), dict(hidden=5, extend=True)],
            [("SGD", 0.01)] * 2, x1000, t1000, [(x1000, t1000)], 100, 10),
        "overfit_dropout": (
            f"784-100x6-10, Dropout 0.2, SGD 0.01, batch 100, 300 rows, training and "
            f"{n_test:,}-row test accuracy each epoch",
            [dict(hidden=6, extend=True, dropout=0.2)],
            [("SGD", 0.01)], x300, t300, [(x300, t300), (x_test, t_test)], 100, 3),
    }
    from threadpoolctl import ThreadpoolController

    blas = ThreadpoolController()
    scripts = {}
    for name, (about, kinds, opts, x, t, evaluations, batch, iterations) in specs.items():
        iterations = 1 if quick else iterations  # (a smoke run: one iteration an epoch)
        np.random.seed(0)
        book_nets = [book.Net(784, [100] * k["hidden"], 10, dropout=k.get("dropout"),
                              batchnorm=k.get("batchnorm", False)) for k in kinds]
        np.random.seed(0)
        fast_nets = [fastnn.MultiLayerNetExtend(  # (the class each script imports)
            784, [100] * k["hidden"], 10, use_dropout="dropout" in k,
            dropout_ration=k.get("dropout", 0.5), use_batchnorm=k.get("batchnorm", False))
            if k.get("extend") else fastnn.MultiLayerNet(784, [100] * k["hidden"], 10)
            for k in kinds]
        book_opts = [getattr(book, n)(lr) for n, lr in opts]
        fast_opts = [getattr(fastnn, n)(lr) for n, lr in opts]

        def book_epoch(nets=book_nets, opts=book_opts, x=x, t=t, ev=evaluations, b=batch,
                       it=iterations):
            with blas.limit(limits=1, user_api="blas"):  # the book's code on one thread
                script_epoch(nets, opts, x, t, ev, b, it)

        def fast_epoch(nets=fast_nets, opts=fast_opts, x=x, t=t, ev=evaluations, b=batch,
                       it=iterations):
            script_epoch(nets, opts, x, t, ev, b, it)

        scripts[name] = (about, iterations, {"book": book_epoch, "fastnn": fast_epoch})
    return scripts


def report_chapter6_load(rounds: int = 7, quick: bool = False) -> None:
    """Each chapter-6 script's epoch beside busy processes: the book's code on one BLAS
    thread against fastnn at its default."""
    import fastnn

    fastnn.set_num_threads(None)
    scripts = chapter6_scripts(quick)
    loads = (1,) if quick else (0, 1, 2)
    print("## The book's chapter-6 scripts with the imports swapped, beside busy processes: "
          "the book's code forced to one BLAS thread (threadpoolctl) against fastnn's "
          "default, median ms per iteration (an epoch's evaluation shared out)\n")
    for name, (about, _, _) in scripts.items():
        print(f"- `{name}.py`: {about}")
    print(f"\n| busy | script | book, 1 BLAS thread | fastnn default | speed-up | target "
          f"(>= {BOOK_TARGET}) |\n|---|---|---|---|---|---|")
    for load in loads:
        with _beside(load):
            for name, (_, iterations, cases) in scripts.items():
                r = interleaved(cases, rounds=max(1, rounds // 2), budget=0.3, slices=1)
                book_ms, fast_ms = (r[k] / iterations * 1e3 for k in ("book", "fastnn"))
                target = _verdict(book_ms / fast_ms >= BOOK_TARGET) if load else "-"
                print(f"| {load} | {name} | {book_ms:.2f} | {fast_ms:.2f} | "
                      f"{book_ms / fast_ms:.2f} | {target} |", flush=True)
    print()

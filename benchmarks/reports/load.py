"""``--only load``: thread settings under load (busy processes started and stopped here)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

try:  # imported by asv's discovery as benchmarks.reports.*
    from ..timing import interleaved
except ImportError:  # run from compare.py as a script: benchmarks/ is on sys.path
    from timing import interleaved

from .cases import problem


def busy(n: int):
    """Start n busy-loop processes (each holds a core); returns them for _stop."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop(procs) -> None:
    for p in procs:
        p.kill()
        p.wait()


def report_load(rounds: int, quick: bool = False) -> None:
    """Training steps and `fastnn train` under 0, 1, 2 busy processes, for the automatic
    thread policy and each forced count."""
    from fastnn.kernels._threads import usable_cores

    import fastnn

    settings = ["auto", *range(1, usable_cores() + 1)]
    batches = (32,) if quick else (32, 1000)
    loads = (0, 1) if quick else (0, 1, 2)
    print("## Thread settings under load: 784-128-128-10 train_step, float32, median ms "
          "(busy = `python -c \"while True: pass\"` processes started by this script)\n")
    print("| busy processes | batch | " + " | ".join(f"threads {s}" for s in settings) +
          " | auto / best forced |")
    print("|---" * (len(settings) + 3) + "|")
    for load in loads:
        procs = busy(load)
        try:
            time.sleep(0.3)
            for N in batches:
                x, t = problem(N, np.float32)
                nets = {}
                for setting in settings:
                    nets[setting] = fastnn.Sequential(784, [128, 128], 10, dtype=np.float32,
                                                      seed=0)
                opt = fastnn.SGD(lr=1e-4)

                def case(setting, nets=nets, x=x, t=t, opt=opt):
                    net = nets[setting]
                    xv, tv = net.validate(x, t)

                    def step():
                        fastnn.set_num_threads(None if setting == "auto" else setting)
                        net.engine.step(xv, tv, opt)
                    return step

                r = interleaved({str(s): case(s) for s in settings}, rounds)
                best = min(r[str(s)] for s in settings if s != "auto")
                cells = " | ".join(f"{r[str(s)] * 1e3:.3f}" for s in settings)
                print(f"| {load} | {N} | {cells} | {r['auto'] / best:.2f} |")
            if not quick:
                times = {}
                for setting in settings:
                    out = subprocess.run([sys.executable, "-m", "fastnn.cli", "train", "--json",
                                          "--threads", str(setting)], capture_output=True,
                                         text=True, check=True)
                    times[setting] = json.loads(out.stdout)["train_seconds"]
                print(f"| {load} | `fastnn train` (digits), s | " +
                      " | ".join(f"{times[s]:.2f}" for s in settings) +
                      f" | {times['auto'] / min(v for k, v in times.items() if k != 'auto'):.2f} |")
        finally:
            stop(procs)
            fastnn.set_num_threads(None)
    print()


# --- sweep: trials on 1 process vs 2 local Dask workers -----------------------------------

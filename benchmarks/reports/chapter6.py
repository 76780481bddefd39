"""``--only chapter6``: the book's chapter-6 shapes through ``fastnn.Trainer`` against
the book-style baseline, each optimizer's step and update beside its bounds."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np

try:  # imported by asv's discovery as benchmarks.reports.*
    from .. import book
    from ..timing import in_turns, interleaved
except ImportError:  # run from compare.py as a script: benchmarks/ is on sys.path
    import book
    from timing import in_turns, interleaved

from .cases import SIZES, problem, step_cases

OVERFIT = (784, [100] * 6, 10)  # the book's overfit_dropout / batch_norm_test network


def _trainer_runs(iters_per_run: int, x, t, x_test, t_test):
    """Two callables, each ``iters_per_run`` more iterations of one Trainer run (BatchNorm,
    Dropout 0.2, Adam, batch 100, float64), built once: fastnn's and the book-style
    baseline's. Building the networks is left out of the timing."""
    import fastnn

    epochs = max(1, iters_per_run * 100 // x.shape[0])
    np.random.seed(0)
    net = fastnn.MultiLayerNetExtend(*OVERFIT, use_dropout=True, dropout_ration=0.2,
                                     use_batchnorm=True)
    trainer = fastnn.Trainer(net, x, t, x_test, t_test, epochs=epochs, mini_batch_size=100,
                             optimizer="adam", optimizer_param={"lr": 0.001}, verbose=False)
    np.random.seed(0)
    ref = book.Net(*OVERFIT, dropout=0.2, batchnorm=True)
    ref_opt = book.Adam(0.001)

    def baseline():
        book.train(ref, ref_opt, x, t, x_test, t_test, epochs, 100)

    return {"fastnn.Trainer": trainer.train, "book-style": baseline}, trainer.max_iter


def _bandwidth(n: int, dtype) -> float:
    """Copy bandwidth (bytes read + written per second) for arrays of n elements: the
    working set of an update over n parameters, in whatever cache level holds it."""
    a, b = np.ones(n, dtype), np.empty(n, dtype)
    r = interleaved({"copy": lambda: np.copyto(b, a)}, rounds=3)
    return 2 * a.nbytes / r["copy"]


_EXT_COMPILE_SNIPPET = """
import time, numpy as np, fastnn
net = fastnn.MultiLayerNetExtend(784, [100] * 6, 10, use_dropout=True, use_batchnorm=True)
x = np.random.default_rng(0).random((100, 784)); t = np.arange(100) % 10
opt = fastnn.Adam()
def step():
    t0 = time.perf_counter()
    net.train_step(x, t, opt)
    net.loss(x, t)
    return time.perf_counter() - t0
first = step()
print(first - step())
"""


def report_chapter6(quick: bool = False) -> None:
    import fastnn

    rng = np.random.default_rng(0)
    n_test = 1000 if quick else 10000
    x, t = rng.random((300, 784)), rng.integers(0, 10, 300)
    x_test, t_test = rng.random((n_test, 784)), rng.integers(0, 10, n_test)
    runs, iters = _trainer_runs(6 if quick else 30, x, t, x_test, t_test)
    r = interleaved(runs, rounds=2 if quick else 5, budget=0.5, slices=1)
    print(f"## The book's overfit_dropout shape through Trainer: 784-100x6-10, batch 100, "
          f"BatchNorm + Dropout + Adam, float64, 300 training rows, {n_test} test rows "
          f"evaluated every 3 iterations; median ms per iteration ({iters} per run)\n")
    fast, book = r["fastnn.Trainer"] / iters * 1e3, r["book-style"] / iters * 1e3
    print("| book-style | fastnn.Trainer | speed-up |\n|---|---|---|")
    print(f"| {book:.2f} | {fast:.2f} | {book / fast:.2f} |\n")

    N, dtype = 100, np.float32
    xb, tb = problem(N, dtype)
    cases, nets, opts = {}, {}, {}
    for name in fastnn.optim.OPTIMIZERS:
        net = fastnn.Sequential(SIZES[0], list(SIZES[1:-1]), SIZES[-1], dtype=dtype, seed=0)
        opt = fastnn.optim.optimizer_named(name, lr=1e-4)
        nets[name], opts[name] = net, opt
        cases[name] = (lambda net=net, opt=opt: net.engine.step(xb, tb, opt))
    cases["gemm"] = step_cases(N, dtype)["gemm"]
    r = in_turns(cases, 2 if quick else 5)  # the bound is NumPy's OpenBLAS: see in_turns
    n = nets["sgd"].n_params
    bandwidth = _bandwidth(n, dtype)
    traffic = {"sgd": 3, "momentum": 5, "nesterov": 5, "adagrad": 5, "rmsprop": 5, "adam": 7}
    updates = {}
    for name, opt in opts.items():
        if name == "sgd":
            continue
        grads = nets[name].engine._grads
        updates[name] = (lambda net=nets[name], opt=opt, g=grads: opt.update_flat(net.params, g,
                                                                        net.engine.backend))
    u = interleaved(updates, 2 if quick else 7)
    print(f"## Each optimizer's training step, 784-128-128-10, batch {N}, float32, median us "
          f"(GEMM-only bound {r['gemm'] * 1e6:.0f} us; copy bandwidth "
          f"{bandwidth / 1e9:.1f} GB/s)\n")
    print("| optimizer | step | step / GEMM bound | update alone | update's traffic bound | "
          "update / bound |\n|---|---|---|---|---|---|")
    for name in fastnn.optim.OPTIMIZERS:
        bound = traffic[name] * n * np.dtype(dtype).itemsize / bandwidth
        if name == "sgd":
            upd = "(fused into the backward GEMMs)"
            ratio = "-"
        else:
            upd, ratio = f"{u[name] * 1e6:.1f}", f"{u[name] / bound:.2f}"
        print(f"| {name} | {r[name] * 1e6:.0f} | {r[name] / r['gemm']:.2f} | {upd} | "
              f"{bound * 1e6:.1f} | {ratio} |")
    print(f"\n(traffic: arrays read and written per parameter x {n:,} parameters x 4 bytes)\n")

    if not quick:
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache, FASTNN_NUMBA_CACHE="1")
            run = [sys.executable, "-c", _EXT_COMPILE_SNIPPET]
            cold = float(subprocess.run(run, env=env, check=True, capture_output=True,
                                        text=True).stdout)
            cached = float(subprocess.run(run, env=env, check=True, capture_output=True,
                                          text=True).stdout)
        print("## First use of an extended network (BatchNorm + Dropout + Adam, float64): "
              "compile time\n")
        print(f"| cold | from cache |\n|---|---|\n| {cold:.2f} s | {cached:.2f} s |\n")


# --- load: thread settings beside busy processes --------------------------------------------

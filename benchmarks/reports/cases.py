"""The cases the reports time: the 784-128-128-10 problem, its training steps on each
backend and the GEMM-only bound, the seed article's loop, memory and compile time."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import tracemalloc

import numpy as np

try:  # imported by asv's discovery as benchmarks.reports.*
    from ..book import BookSequential
except ImportError:  # run from compare.py as a script: benchmarks/ is on sys.path
    from book import BookSequential



SIZES = (784, 128, 128, 10)


def problem(N: int, dtype, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((N, SIZES[0])).astype(dtype)
    t = rng.integers(0, SIZES[-1], N)
    return x, t


def step_cases(N: int, dtype) -> dict:
    """numpy step, numba step and the GEMM-only bound for one batch size and dtype."""
    from fastnn import SGD, Sequential

    x, t = problem(N, dtype)
    opt = SGD(lr=1e-3)  # small: thousands of steps on one batch must not drive it to ~0 loss
    cases = {}
    for backend in ("numpy", "numba"):
        net = Sequential(*SIZES[:1], list(SIZES[1:-1]), SIZES[-1], backend=backend,
                         dtype=dtype, seed=0)

        def step(net=net):  # one training step as fit() runs it
            net.train_step(x, t, opt)

        cases[backend] = step
    W = [net.params[f"W{i}"].copy() for i in (1, 2, 3)]
    h1, h2 = np.empty((N, SIZES[1]), dtype), np.empty((N, SIZES[2]), dtype)
    dh1, dh2 = np.empty_like(h1), np.empty_like(h2)
    s = np.empty((N, SIZES[3]), dtype)
    dW = [np.empty_like(w) for w in W]

    def gemm_only():  # forward 3, backward 5 (the first layer's dx is never needed)
        np.dot(x, W[0], out=h1)
        np.dot(h1, W[1], out=h2)
        np.dot(h2, W[2], out=s)
        np.dot(h2.T, s, out=dW[2])
        np.dot(s, W[2].T, out=dh2)
        np.dot(h1.T, dh2, out=dW[1])
        np.dot(dh2, W[1].T, out=dh1)
        np.dot(x.T, dh1, out=dW[0])

    cases["gemm"] = gemm_only
    return cases


def article_cases(N: int = 1000) -> dict:
    """The article's own loop body with its class and with fastnn's Sequential."""
    from fastnn import Sequential

    x, t = problem(N, np.float64)
    lr = 0.1

    def loop_body(net):
        grad = net.gradient(x, t)
        for key in net.params.keys():
            net.params[key] -= lr * grad[key]

    np.random.seed(0)
    book = BookSequential(SIZES[0], list(SIZES[1:-1]), SIZES[-1])
    np.random.seed(0)
    fast = Sequential(SIZES[0], list(SIZES[1:-1]), SIZES[-1])
    return {"article class": lambda: loop_body(book), "fastnn.Sequential": lambda: loop_body(fast)}


def peak_step_memory(N: int, dtype, backend: str = "numba") -> int:
    """Peak bytes allocated during one steady-state training step (tracemalloc)."""
    cases = step_cases(N, dtype)
    step = cases[backend]
    step()
    step()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    step()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


_COMPILE_SNIPPET = """
import time, numpy as np, fastnn
net = fastnn.Sequential(784, [128, 128], 10, dtype=np.{dtype}, seed=0)
x = np.random.default_rng(0).random((100, 784)).astype(np.{dtype}); t = np.arange(100) % 10
opt = fastnn.SGD(0.01)
def step():  # both ways to train: fit()'s train_step, and the article's loop body
    t0 = time.perf_counter()
    net.train_step(x, t, opt)
    opt.update(net.params, net.gradient(x, t))
    return time.perf_counter() - t0
first = step()
print(first - step())
"""


def compile_times(dtype: str = "float64") -> tuple[float, float]:
    """Seconds the first training step spends compiling: cold cache, then warm cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, FASTNN_NUMBA_CACHE="1")
        code = _COMPILE_SNIPPET.format(dtype=dtype)
        run = [sys.executable, "-c", code]
        cold = float(subprocess.run(run, env=env, check=True, capture_output=True,
                                    text=True).stdout)
        cached = float(subprocess.run(run, env=env, check=True, capture_output=True,
                                      text=True).stdout)
    return cold, cached


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}"

"""The training-step tables (numpy, numba, GEMM-only) and the per-kernel breakdown."""

from __future__ import annotations

import numpy as np

try:  # imported by asv's discovery as benchmarks.reports.*
    from ..timing import in_turns, interleaved
except ImportError:  # run from compare.py as a script: benchmarks/ is on sys.path
    from timing import in_turns, interleaved

from .cases import SIZES, article_cases, compile_times, ms, peak_step_memory, problem, step_cases


def report_breakdown(batches, dtypes, rounds: int) -> None:
    """Where a numba step's time goes beyond the GEMMs: stages, 10th percentiles.

    Low percentiles of the calls, each case in turns of its own (``in_turns``), for
    attribution on a noisy machine (medians are in the main table): GEMM-only; the
    compiled step (``kernels.sgd_step``) on validated arrays; + input validation
    (``train_step``, the full step); and for comparison ``loss_and_gradient`` (per-layer
    kernels, gradients into a dict).
    """
    from fastnn import SGD, Sequential, kernels

    print("## Step breakdown (numba), 10th percentile us\n")
    print("| dtype | batch | GEMM-only | sgd_step kernel | + validation (full step) | "
          "full / GEMM | loss_and_gradient |")
    print("|---|---|---|---|---|---|---|")
    for dtype in dtypes:
        for N in batches:
            x, t = problem(N, dtype)
            net = Sequential(*SIZES[:1], list(SIZES[1:-1]), SIZES[-1], dtype=dtype, seed=0)
            opt = SGD(1e-3)
            xv, tv = net.validate(x, t)
            ws, layout = net.engine.workspace(N), net.params.layout

            def kernel(xv=xv, tv=tv, ws=ws, net=net, layout=layout):
                kernels.sgd_step(xv, tv, net.params.flat, layout, ws.acts, ws.dacts,
                                 net.activation, net.loss_name, 1e-3)

            cases = {"gemm": step_cases(N, dtype)["gemm"], "kernel": kernel,
                     "full": lambda x=x, t=t, net=net, opt=opt: net.train_step(x, t, opt),
                     "grads": lambda x=x, t=t, net=net: net.loss_and_gradient(x, t)}
            r = in_turns(cases, rounds, statistic=lambda v: np.percentile(v, 10))
            print(f"| {np.dtype(dtype).name} | {N} | {r['gemm'] * 1e6:.1f} | "
                  f"{r['kernel'] * 1e6:.1f} | {r['full'] * 1e6:.1f} | "
                  f"{r['full'] / r['gemm']:.3f} | {r['grads'] * 1e6:.1f} |")
    print()


def report_steps(batches, dtypes, rounds: int) -> dict:
    print("## Training step, 784-128-128-10 (forward + backward + SGD update), median ms\n")
    print("| dtype | batch | numpy | numba | GEMM-only | numba / GEMM | numpy / numba |")
    print("|---|---|---|---|---|---|---|")
    results = {}
    for dtype in dtypes:
        for N in batches:
            # in turns: NumPy's OpenBLAS threads (the numpy step, the GEMM bound) spin
            # for a tenth of a second after a call and take a core from the next case
            r = in_turns(step_cases(N, dtype), rounds)
            results[(np.dtype(dtype).name, N)] = r
            print(f"| {np.dtype(dtype).name} | {N} | {ms(r['numpy'])} | {ms(r['numba'])} | "
                  f"{ms(r['gemm'])} | {r['numba'] / r['gemm']:.3f} | "
                  f"{r['numpy'] / r['numba']:.2f} |", flush=True)
    print()
    return results


# --- chapter 6 -------------------------------------------------------------------------


def report_article(rounds: int) -> None:
    r = interleaved(article_cases(), rounds)
    print("## The seed article's loop, 784-128-128-10, batch 1000, float64, median ms\n")
    print("| article class | fastnn.Sequential | speed-up |\n|---|---|---|")
    print(f"| {ms(r['article class'])} | {ms(r['fastnn.Sequential'])} | "
          f"{r['article class'] / r['fastnn.Sequential']:.2f} |\n")


def report_memory(batches) -> None:
    print("## Peak memory allocated inside one steady-state step (numba, float32)\n")
    print("| batch | peak bytes |\n|---|---|")
    for N in sorted({*batches, 1000}):
        print(f"| {N} | {peak_step_memory(N, np.float32)} |")
    print("\n(gradient and work buffers are reused: nothing allocated grows with the batch)\n")


def report_compile_times() -> None:
    cold, cached = compile_times()
    print("## First use: compile time of a training step (train_step, and gradient() + "
          "SGD.update), float64\n")
    print(f"| cold | from cache |\n|---|---|\n| {cold:.2f} s | {cached:.2f} s |\n")

"""What a layer's cut into blocks costs: ``python benchmarks/block_cut.py [batch ...]``.

The 784-128-128-10 step's eight products run as the network kernel runs them
(``_blas.gemm`` on views of row blocks, and of dW's blocks of input features), on one
thread, three ways alternated in one process: whole products (one block each), the cut
of ``_blocks.grain`` alone (at least 64 rows a row block, 8 features a dW block, 4 M
multiply-adds: the cut of issue 28 as merged) and ``affine_act.layer_grain``'s (at least
sqrt(n x 64) items: the kernels' cut now). Median ms of 40 rounds, and each over the
whole products. The elementwise passes are not in it: they do not depend on the cut.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
from fastnn.kernels._blas import gemm
from fastnn.kernels._blocks import MIN_ROWS, grain
from fastnn.kernels._views import view_cols, view_rows
from fastnn.kernels.affine_act import layer_grain
from numba import njit
from threadpoolctl import threadpool_limits

SIZES = (784, 128, 128, 10)


@njit(nogil=True)
def _rows(a, b, c, trans_b, g):
    """c = a @ b (or a @ b.T) by row blocks of g rows."""
    N, start = a.shape[0], 0
    while start < N:
        n = min(g, N - start)
        gemm(False, trans_b, 1.0, view_rows(a, start, n), b, 0.0, view_rows(c, start, n))
        start += n


@njit(nogil=True)
def _weights(x, dz, W, g):
    """W -= 1e-6 * x.T @ dz by blocks of g input features (SGD's fused step)."""
    D, start = W.shape[0], 0
    while start < D:
        n = min(g, D - start)
        gemm(True, False, -1e-6, view_cols(x, start, n), dz, 1.0, view_rows(W, start, n))
        start += n


@njit(nogil=True)
def _step(x, W1, W2, W3, h1, h2, scores, dh1, dh2, cut, reps):
    f1, f2, f3, d3, d2, w3, w2, w1 = cut
    for _ in range(reps):
        _rows(x, W1, h1, False, f1)
        _rows(h1, W2, h2, False, f2)
        _rows(h2, W3, scores, False, f3)
        _rows(scores, W3, dh2, True, d3)
        _weights(h2, scores, W3, w3)
        _rows(dh2, W2, dh1, True, d2)
        _weights(h1, dh2, W2, w2)
        _weights(x, dh1, W1, w1)


def cuts(N: int) -> dict:
    """Block sizes of the eight products (forward 1-3, dx 3, 2, dW 3, 2, 1) per cut."""
    D, H1, H2, C = SIZES
    rows = [(D, H1), (H1, H2), (H2, C), (C, H2), (H2, H1)]
    feats = [(H2, C), (H1, H2), (D, H1)]
    return {
        "whole": tuple([N] * 5 + [d for d, _ in feats]),
        "grain": tuple([grain(N, a * b, MIN_ROWS) for a, b in rows]
                       + [grain(d, N * h, 8) for d, h in feats]),
        "layer_grain": tuple([layer_grain(N, a * b) for a, b in rows]
                             + [layer_grain(d, N * h) for d, h in feats]),
    }


def main(batches) -> None:
    rng = np.random.default_rng(0)
    with threadpool_limits(1):
        for dtype in (np.float32, np.float64):
            for N in batches:
                x = rng.random((N, SIZES[0])).astype(dtype)
                Ws = [(rng.random(s) * 0.01).astype(dtype)
                      for s in ((784, 128), (128, 128), (128, 10))]
                h1, h2, dh1, dh2 = (rng.random((N, 128)).astype(dtype) for _ in range(4))
                scores = rng.random((N, 10)).astype(dtype)
                args = (x, *Ws, h1, h2, scores, dh1, dh2)
                by = cuts(N)
                times = {k: [] for k in by}
                for cut in by.values():
                    _step(*args, cut, 2)
                for _ in range(40):
                    for k, cut in by.items():
                        t0 = time.perf_counter()
                        _step(*args, cut, 3)
                        times[k].append((time.perf_counter() - t0) / 3 * 1e3)
                med = {k: statistics.median(v) for k, v in times.items()}
                print(f"{np.dtype(dtype).name} batch {N}: " + ", ".join(
                    f"{k} {by[k]} {v:.3f} ms ({v / med['whole']:.3f})" for k, v in med.items()),
                    flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 1000])

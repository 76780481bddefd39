"""Shared set-up for the asv suite: shapes of 784-128-128-10, random data, backends."""

import numpy as np

from fastnn import kernels, reference

BACKENDS = {"numpy": reference, "numba": kernels}
SIZES = (784, 128, 128, 10)
BATCHES = [32, 1000]
DTYPES = ["float32", "float64"]
GRID = (list(BACKENDS), BATCHES, DTYPES)
GRID_NAMES = ["backend", "batch", "dtype"]


def layer(N, D, H, dtype, seed=0):
    """x (N, D), W (D, H), b (H,) of one layer, scaled like a trained network's."""
    rng = np.random.default_rng(seed)
    x = rng.random((N, D)).astype(dtype)
    W = (rng.standard_normal((D, H)) * np.sqrt(2 / D)).astype(dtype)
    b = (0.1 * rng.standard_normal(H)).astype(dtype)
    return x, W, b


def batch(N, dtype, seed=0):
    """Inputs (N, 784) in [0, 1) and labels (N,) in 0..9."""
    rng = np.random.default_rng(seed)
    return rng.random((N, SIZES[0])).astype(dtype), rng.integers(0, SIZES[-1], N)

"""Cheap checks the Python layer runs before the kernels (input validation)."""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ._config import kernel


@kernel
def count_nonfinite(x):
    """Number of NaN or +-Inf elements of a 1-D array (integer sum: vectorises)."""
    bad = 0
    for i in prange(x.shape[0]):
        bad += not math.isfinite(x[i])
    return bad


def all_finite(x):
    """True when no element of x is NaN or +-Inf."""
    if x.dtype.kind != "f":
        return True
    flat = x.reshape(-1) if x.flags.c_contiguous else np.ravel(x)
    return count_nonfinite.pick(flat.size)(flat) == 0

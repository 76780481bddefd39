"""The SGD update over a flat parameter buffer, in one pass."""

from __future__ import annotations

import numpy as np
from numba import prange

from ._blas import gemm_update
from ._config import kernel


@kernel
def axpy_(param, grad, lr):
    """In place: param -= lr * grad. Both are 1-D and of one dtype; lr is of that dtype."""
    for i in prange(param.shape[0]):
        param[i] -= lr * grad[i]


def sgd_update(param, grad, lr):
    """In place: param -= lr * grad (any shape; one pass over contiguous arrays)."""
    if param.flags.c_contiguous and grad.flags.c_contiguous and grad.dtype == param.dtype:
        axpy_.pick(param.size)(param.reshape(-1), grad.reshape(-1), param.dtype.type(lr))
    else:  # unusual layouts: the reference semantics, still in place
        param -= lr * grad


def sgd_update_affine(W, x, dz, lr):
    """In place: W -= lr * (x.T @ dz): one GEMM with beta = 1 in NumPy's own BLAS.

    Without a GEMM that can accumulate (see ``_blas``), the product goes into a scratch
    array and ``sgd_update`` applies it.
    """
    if (gemm_update is not None and W.dtype == x.dtype == dz.dtype
            and W.flags.c_contiguous and x.flags.c_contiguous and dz.flags.c_contiguous):
        gemm_update(W, x, dz, -float(lr))
    else:
        sgd_update(W, np.dot(x.T, dz), lr)

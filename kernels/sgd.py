"""The SGD update: a pass over a flat parameter buffer, and the weights' step as a GEMM."""

from __future__ import annotations

import numpy as np
from numba import prange

from . import _blas
from ._blas import gemm
from ._config import compile_serial, kernel


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


@compile_serial
def gemm_update_(W, x, dz, alpha):
    """In place: W += alpha * x.T @ dz, one GEMM with beta = 1 (NumPy's BLAS, see _blas)."""
    gemm(True, False, alpha, x, dz, 1.0, W)


def sgd_update_affine(W, x, dz, lr):
    """In place: W -= lr * (x.T @ dz): one GEMM accumulating into W.

    Without NumPy's BLAS bound (see ``_blas``), or for arrays that are not C-contiguous
    float32/float64 of one dtype, the product goes into a scratch array and
    ``sgd_update`` applies it.
    """
    if _blas.takes(W.dtype, W, x, dz):
        gemm_update_(W, x, dz, -W.dtype.type(lr))
    else:
        sgd_update(W, np.dot(x.T, dz), lr)

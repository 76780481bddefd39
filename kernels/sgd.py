"""The SGD update over a flat parameter buffer, in one pass."""

from __future__ import annotations

from numba import prange

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

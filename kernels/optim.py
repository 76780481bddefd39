"""The optimizer stage: updates over the flat parameter and gradient buffers.

``sgd_`` is SGD's update of a flat buffer (param -= lr * grad), the stage that runs after
a backward pass into a gradient buffer. In a training step SGD has a fused form instead:
the weights' step is the weight-gradient GEMM itself (beta = 1, see
``affine_act.sgd_backward_``) and ``sgd_bias_`` steps the bias, so dW is never stored.

Adding an optimizer (Momentum, Adam, ...): its update as an ``@inline`` body over flat
(params, grads, state) buffers here, its NumPy twin in ``fastnn.reference``, and a
branch in ``network.run_``'s SGD modes, which then run the backward pass into a gradient
buffer (``network.backward_`` with ``fused`` False) followed by that update.
"""

from __future__ import annotations

import numpy as np

from ._blas import gemm
from ._config import inline


@inline
def sgd_(param, grad, lr):
    """In place: param -= lr * grad. Both 1-D of one dtype; lr of that dtype."""
    for i in range(param.shape[0]):
        param[i] -= lr * grad[i]


@inline
def sgd_bias_(b, db, lr):
    """In place: b -= lr * db, the bias half of SGD's fused step."""
    for h in range(b.shape[0]):
        b[h] -= lr * db[h]


@inline
def sgd_affine_(W, x, dz, lr):
    """In place: W -= lr * x.T @ dz, one GEMM accumulating into W (beta = 1)."""
    gemm(True, False, -lr, x, dz, 1.0, W)


def sgd_update(param, grad, lr):
    """In place: param -= lr * grad (any shape; one pass over contiguous arrays)."""
    if param.flags.c_contiguous and grad.flags.c_contiguous and grad.dtype == param.dtype \
            and param.dtype in (np.float32, np.float64):
        sgd_(param.reshape(-1), grad.reshape(-1), param.dtype.type(lr))
    else:  # unusual layouts or dtypes: the reference semantics, still in place
        param -= lr * grad


def sgd_update_affine(W, x, dz, lr):
    """In place: W -= lr * (x.T @ dz): one GEMM accumulating into W (beta = 1)."""
    dtype = W.dtype
    W_buf = W if W.flags.c_contiguous else np.ascontiguousarray(W)
    sgd_affine_(W_buf, np.ascontiguousarray(x, dtype), np.ascontiguousarray(dz, dtype),
                dtype.type(lr))
    if W_buf is not W:
        W[...] = W_buf

"""The optimizer stage: updates over the flat parameter and gradient buffers.

``sgd_`` is SGD's update of a flat buffer (param -= lr * grad), the stage that runs after
a backward pass into a gradient buffer. In a training step SGD has a fused form instead:
the weights' step is the weight-gradient GEMM itself (beta = 1, see
``affine_act.sgd_backward_``) and ``sgd_bias_`` steps the bias, so dW is never stored.

The other optimizers (Momentum, Nesterov, AdaGrad, RMSprop, Adam) are one body,
``update_``: a single pass over flat (param, grad, state) buffers, the optimizer a code
(``OPTIMIZERS``), so one compiled kernel per dtype serves all five. Their NumPy twins
are in ``fastnn.reference``. A training step with them is the network's gradient kernel
(``network.gradient``, into a gradient buffer the engine keeps) followed by this pass,
which runs in fixed blocks of the flat buffers (``_blocks``) on the thread policy's
threads once a buffer is large enough (``UPDATE_WORK``).
(``benchmarks/compare.py --only optimizers`` sets each update beside its memory-traffic
bound.)

Adding an optimizer: a code and a branch in ``update_``, a wrapper below, its twin in
``fastnn.reference`` and its class in ``fastnn.optim``.
"""

from __future__ import annotations

import math

import numpy as np

from ._blas import gemm
from ._blocks import block_of, blocks, grain, n_blocks
from ._config import compiled, inline
from ._threads import block_threads, for_work


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


MOMENTUM, NESTEROV, ADAGRAD, RMSPROP, ADAM = 1, 2, 3, 4, 5
OPTIMIZERS = {"momentum": MOMENTUM, "nesterov": NESTEROV, "adagrad": ADAGRAD,
              "rmsprop": RMSPROP, "adam": ADAM}
EPSILON = 1e-7  # the book's, added after the square root


@compiled
def update_(code, p, g, s1, s2, lr, a, b, c):
    """In place, one pass: the update ``code`` of the flat param p with gradient g.

    MOMENTUM (s1 = v, a = momentum), NESTEROV (s1 = v, a = momentum, b = momentum**2,
    c = (1 + momentum) * lr), ADAGRAD (s1 = h), RMSPROP (s1 = h, a = decay rate,
    b = 1 - decay rate), ADAM (s1 = m, s2 = v, lr = this step's lr_t, a = 1 - beta1,
    b = 1 - beta2). Each element's arithmetic is the book's, in its order. Scalars are of
    the arrays' dtype, computed in Python as the book computes them (so float32 stays
    float32: ``1 - a`` here would be float64); unused state arrays may be any of the type.
    """
    eps = p.dtype.type(EPSILON)
    if code == MOMENTUM:
        for i in range(p.shape[0]):
            vel = a * s1[i] - lr * g[i]
            s1[i] = vel
            p[i] += vel
    elif code == NESTEROV:
        for i in range(p.shape[0]):
            p[i] += b * s1[i]
            p[i] -= c * g[i]
            s1[i] = a * s1[i] - lr * g[i]
    elif code == ADAGRAD:
        for i in range(p.shape[0]):
            s1[i] += g[i] * g[i]
            p[i] -= lr * g[i] / (math.sqrt(s1[i]) + eps)
    elif code == RMSPROP:
        for i in range(p.shape[0]):
            h = s1[i] * a
            h += b * g[i] * g[i]
            s1[i] = h
            p[i] -= lr * g[i] / (math.sqrt(h) + eps)
    elif code == ADAM:
        for i in range(p.shape[0]):
            mi = s1[i] + a * (g[i] - s1[i])
            vi = s2[i] + b * (g[i] * g[i] - s2[i])
            s1[i] = mi
            s2[i] = vi
            p[i] -= lr * mi / (math.sqrt(vi) + eps)


# Element operations an update counts per parameter for the thread policy and the cut
# (``_blocks.grain``): a pass reads and writes 3-7 arrays. So a pass is cut into blocks
# (of at least BLOCK_WORK / UPDATE_WORK elements) above about half a million parameters,
# and takes a second thread from about a million (``_threads.threads_for``); the book's
# networks (up to a few hundred thousand) update in one pass, in the calling thread.
UPDATE_WORK = 8


@compiled
def _update_block(blk, g, code, p, grad, s1, s2, lr, a, b, c):
    """``update_`` on block ``blk`` of the flat buffers (elements [blk * g, ...)): each
    element's arithmetic is its own, so the blocks give the same bits in any order."""
    start, stop = block_of(blk, p.shape[0], g)
    update_(code, p[start:stop], grad[start:stop], s1[start:stop], s2[start:stop], lr, a, b,
            c)


_run_update = blocks(_update_block)
# (the cut's arithmetic from Python as plain Python: the compiled forms are for kernels)
_grain, _n_blocks = getattr(grain, "py_func", grain), getattr(n_blocks, "py_func", n_blocks)


def _apply(code, param, grad, s1, s2, lr, a, b, c=0.0):
    """Run ``update_`` on the arrays (any layout; float64 for other dtypes), in place, in
    fixed blocks of the flat buffers: on the thread policy's numba threads where the pass
    is large enough (``UPDATE_WORK``), else in the calling thread.

    Arrays that are not C-contiguous of the param's float dtype are computed on such a
    copy and written back.
    """
    dtype = param.dtype if param.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    arrays = [param, grad, s1] + ([s2] if s2 is not None else [])
    for other in arrays[1:]:  # (a compiled pass over mismatched buffers writes anywhere)
        if other.shape != param.shape:
            raise ValueError(f"expected arrays of the parameter's shape {param.shape}, got "
                             f"{other.shape}")
    bufs = [np.ascontiguousarray(x, dtype) for x in arrays]
    t = dtype.type
    flat = [x.reshape(-1) for x in bufs]
    n = flat[0].shape[0]
    args = (code, flat[0], flat[1], flat[2], flat[3] if s2 is not None else flat[2],
            t(lr), t(a), t(b), t(c))
    g = _grain(n, UPDATE_WORK, 1)
    if g >= n:  # one block: the body's pass itself (no runner to compile for the book's
        update_(*args)  # networks), in the calling thread, as the policy would run it
    else:
        with for_work(n * UPDATE_WORK):
            _run_update(_n_blocks(n, g), block_threads(), (g,) + args)
    for x, buf in zip(arrays, bufs):
        if buf is not x and x is not grad:
            x[...] = buf


def momentum_update(param, grad, v, lr, momentum):
    """In place: v = momentum * v - lr * grad; param += v."""
    _apply(MOMENTUM, param, grad, v, None, lr, momentum, 0.0)


def nesterov_update(param, grad, v, lr, momentum):
    """In place, the book's corrected Nesterov (see ``fastnn.reference``)."""
    _apply(NESTEROV, param, grad, v, None, lr, momentum, momentum * momentum,
           (1 + momentum) * lr)


def adagrad_update(param, grad, h, lr):
    """In place: h += grad**2; param -= lr * grad / (sqrt(h) + 1e-7)."""
    _apply(ADAGRAD, param, grad, h, None, lr, 0.0, 0.0)


def rmsprop_update(param, grad, h, lr, decay_rate):
    """In place: h = decay_rate * h + (1 - decay_rate) * grad**2, then AdaGrad's step."""
    _apply(RMSPROP, param, grad, h, None, lr, decay_rate, 1 - decay_rate)


def adam_lr(lr, beta1, beta2, step):
    """Adam's step size for update number ``step``: lr * sqrt(1 - b2^t) / (1 - b1^t)."""
    return lr * np.sqrt(1.0 - beta2 ** step) / (1.0 - beta1 ** step)


def adam_update(param, grad, m, v, lr, beta1, beta2, step):
    """In place, Adam's update number ``step`` (see ``fastnn.reference``)."""
    _apply(ADAM, param, grad, m, v, adam_lr(lr, beta1, beta2, step), 1 - beta1, 1 - beta2)

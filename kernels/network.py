"""A whole training step of a network in one compiled call: ``sgd_step``.

Per layer, the step path makes one kernel call for the forward pass and one for the
backward pass with the SGD update (``affine_relu``), each of which calls NumPy's BLAS
from inside (``_blas``). That still leaves Python between the layers: a dozen calls of
~1-3 us each (numba's argument checks, the wrappers), a fifth of a float32 step at batch
32. Here the layers' loop itself is compiled: forward, loss, and backward with the
update, one call per step, running the same inlined passes and GEMMs as the per-layer
kernels in the same order. (Python between kernels is dearer than it looks in
isolation: right after a step's GEMMs the interpreter runs on cold caches, and a
NumPy call that takes 0.2 us alone took ~5 us there.)

The network is described by flat buffers, as ``fastnn.reference.sgd_step`` specifies:
the parameters W1, b1, W2, ... back to back, and one buffer each for the layers'
outputs and their gradients; a (L, 4) int64 ``layout`` gives each layer's W offset,
fan-in, fan-out and b offset.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit

from fastnn._validation import check_label_range
from fastnn.reference import sgd_step_with

from . import _blas
from ._blas import gemm
from ._config import COMMON, kernel, n_chunks
from .affine_relu import (
    _ACTS,
    IDENTITY,
    _bias_act,
    _colsum,
    _grad_colsum,
)
from .train_loop import MSE, SOFTMAX_LABELS, SOFTMAX_ROWS, _squared_error, _xent_labels, _xent_rows


@njit(inline="always", **COMMON)
def _weights(params, layout, i):
    w, fan_in, fan_out, b = layout[i, 0], layout[i, 1], layout[i, 2], layout[i, 3]
    return params[w:w + fan_in * fan_out].reshape((fan_in, fan_out)), params[b:b + fan_out]


@njit(inline="always", **COMMON)
def _first_bad_label(labels, C):
    """Index of the first class index outside [0, C), or -1 (labels may be empty)."""
    for n in range(labels.shape[0]):
        if labels[n] < 0 or labels[n] >= C:
            return n
    return -1


@njit(inline="always", **COMMON)
def _forward(x, params, layout, acts, act):
    """Each layer's act(inp @ W + b) into its block of acts; the last one is the identity.

    Returns the first layer's count of non-finite pre-activations, and stops there when
    it is not zero.
    """
    N = x.shape[0]
    last = layout.shape[0] - 1
    inp = x
    off = 0
    for i in range(last + 1):
        W, b = _weights(params, layout, i)
        fan_out = layout[i, 2]
        out = acts[off:off + N * fan_out].reshape((N, fan_out))
        gemm(False, False, 1.0, inp, W, 0.0, out)
        bad = _bias_act(out, b, act if i < last else IDENTITY, i == 0)
        if bad:
            return bad
        inp = out
        off += N * fan_out
    return 0


@njit(inline="always", **COMMON)
def _backward_sgd(x, params, layout, acts, dacts, chunks, act, lr):
    """From the scores' gradient (the last block of dacts) down, each layer's backward
    pass and its SGD step, as ``affine_relu.dense_backward_`` does it for one layer.

    ``chunks``: how many partial column sums the bias gradient is split into (one per
    thread, ``act_grad_colsum_``). The scratch is allocated here: from Python each
    allocation would cost microseconds, inside it is a few dozen nanoseconds.
    """
    N = x.shape[0]
    last = layout.shape[0] - 1
    off = acts.shape[0]  # the end of layer i's block
    for i in range(last, -1, -1):
        W, b = _weights(params, layout, i)
        fan_in, fan_out = layout[i, 1], layout[i, 2]
        start = off - N * fan_out
        out = acts[start:off].reshape((N, fan_out))
        dz = dacts[start:off].reshape((N, fan_out))
        scratch = np.empty((chunks, fan_out))  # float64 partial column sums
        dbias = np.empty(fan_out, params.dtype)
        if i == last:
            _colsum(dbias, dz, scratch)
        else:
            _grad_colsum(dz, dz, out, dbias, act, scratch)
        if i > 0:  # dx = dz @ W.T with the old W; the first layer's is never needed
            dx = dacts[start - N * fan_in:start].reshape((N, fan_in))
            gemm(False, True, 1.0, dz, W, 0.0, dx)
            inp = acts[start - N * fan_in:start].reshape((N, fan_in))
            gemm(True, False, -lr, inp, dz, 1.0, W)
        else:
            gemm(True, False, -lr, x, dz, 1.0, W)
        for h in range(fan_out):
            b[h] -= lr * dbias[h]
        off = start


def _sgd_step_kernel(loss_kind: int, act: int):
    """The whole-step kernel for one loss and activation, compiled when first used.

    Both are constants of the closure, so numba compiles only their branches: less code
    to compile (a cold compile of 3.4 s with the activation as an argument) and no
    branch on them at run time.
    """

    def sgd_step_(x, labels, targets, params, layout, acts, dacts, chunks, lr):
        """Forward, the fused loss rows, backward with the update.

        Returns (loss, n_bad, the index of the first label out of range or -1); with a
        bad label nothing is computed.
        """
        N = x.shape[0]
        C = layout[layout.shape[0] - 1, 2]
        at = _first_bad_label(labels, C)
        if at >= 0:
            return math.nan, 0, at
        bad = _forward(x, params, layout, acts, act)
        if bad:
            return math.nan, bad, -1
        start = acts.shape[0] - N * C
        scores = acts[start:].reshape((N, C))
        dscores = dacts[start:].reshape((N, C))
        # loss_kind is a constant of this closure: numba prunes the other branches
        if loss_kind == SOFTMAX_LABELS:
            loss = _xent_labels(dscores, scores, labels)
        elif loss_kind == SOFTMAX_ROWS:
            loss = _xent_rows(dscores, scores, targets)
        else:
            loss = _squared_error(dscores, scores, targets)
        if not math.isfinite(loss):
            return loss, 0, -1
        _backward_sgd(x, params, layout, acts, dacts, chunks, act, lr)
        return loss, 0, -1

    return kernel(sgd_step_)


_SGD_STEP = {(kind, act): _sgd_step_kernel(kind, act)
             for kind in (SOFTMAX_LABELS, SOFTMAX_ROWS, MSE) for act in _ACTS.values()}


@functools.lru_cache(maxsize=64)
def layout_of(sizes: tuple) -> np.ndarray:
    """(L, 4) int64 rows (W offset, fan-in, fan-out, b offset) of ``param_views``' layout."""
    rows, offset = [], 0
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        rows.append((offset, fan_in, fan_out, offset + fan_in * fan_out))
        offset += fan_in * fan_out + fan_out
    return np.array(rows, dtype=np.int64)


_NO_LABELS = np.empty(0, np.intp)


def sgd_step(x, t, params, sizes, acts, dacts, activation, loss, lr):
    """One SGD step of the network with layer sizes ``sizes``; returns (loss, n_bad).

    See ``fastnn.reference.sgd_step``. One compiled call. (Its softmax takes a scalar exp
    per score; ``softmax_cross_entropy`` alone switches to NumPy's vectorised exp from
    ``NUMPY_EXP_MIN`` scores on, but inside a step the Python between the extra calls
    cost more: at batch 1000 x 10 the one call was 91 us faster in float32, 70 us in
    float64.) Where NumPy's BLAS is not bound, or for arrays that are not C-contiguous,
    the step is composed of the per-layer kernels instead.
    """
    dtype = params.dtype
    if not _blas.takes(dtype, x, params, acts, dacts):
        import fastnn.kernels as ops  # (the package imports this module)

        return sgd_step_with(ops, x, t, params, sizes, acts, dacts, activation, loss, lr)
    layout = layout_of(tuple(sizes))
    N = x.shape[0]
    widest = max(sizes[1:])
    work = N * widest
    chunks = n_chunks(work)
    act, lr = _ACTS[activation], dtype.type(lr)
    if loss == "mse":
        kind, labels, targets = MSE, _NO_LABELS, t
    elif t.ndim == 1:
        kind, labels, targets = SOFTMAX_LABELS, t, x[:0]  # (unused: any 2-D of the dtype)
    else:
        kind, labels, targets = SOFTMAX_ROWS, _NO_LABELS, t
    value, n_bad, at = _SGD_STEP[kind, act].pick(work)(x, labels, targets, params, layout,
                                                       acts, dacts, chunks, lr)
    if at >= 0:
        check_label_range(t, "t", sizes[-1])  # raises
    return float(value), int(n_bad)

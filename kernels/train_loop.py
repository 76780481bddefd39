"""Whole stretches of training inside one compiled function.

For small networks and batches the time of a step goes to the calls, not arithmetic:
even one compiled call per step (``network.sgd_step``) costs microseconds of argument
handling, more than a 1-3-1 network's whole step. ``train_batches`` runs forward,
backward and the SGD update for a list of batches without returning to Python, calling
the same fused passes as the step path (``bias_act_``, ``act_grad_colsum_``, the
losses), so both paths compute the same numbers to rounding (here the update is dW
then one ``axpy_`` pass; the step path folds W's step into its GEMM). New here: the
batch gather, and ``matmul_`` which sends small products to a plain loop (a BLAS call
costs more than multiplying a 1x3 by a 3x1) and the rest to BLAS via ``np.dot``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._config import COMMON, compile_serial, inlined
from .affine_relu import IDENTITY, act_grad_colsum_, act_grad_value, act_value, bias_act_, colsum
from .sgd import axpy_
from .softmax_xent import (
    softmax_xent_labels,
    softmax_xent_onehot,
    squared_error_,
    squared_error_row,
    xent_labels_row,
    xent_rows_row,
)

SOFTMAX_LABELS, SOFTMAX_ROWS, MSE = 0, 1, 2


# the same kernels the step path runs, as globals numba can resolve in the loop
_bias_act = inlined(bias_act_)
_act_grad_colsum = inlined(act_grad_colsum_)
_colsum = inlined(colsum)
_xent_labels = inlined(softmax_xent_labels)
_xent_rows = inlined(softmax_xent_onehot)
_squared_error = inlined(squared_error_)
_axpy = inlined(axpy_)


@njit(inline="always", **COMMON)
def matmul_(a, b, out, blas_min):
    """out = a @ b; loops below ``blas_min`` multiply-adds, BLAS (np.dot) above."""
    M, K = a.shape
    N = b.shape[1]
    if M * K * N >= blas_min:
        np.dot(a, b, out)
        return
    for i in range(M):
        for j in range(N):
            out[i, j] = 0
        for k in range(K):
            aik = a[i, k]
            for j in range(N):
                out[i, j] += aik * b[k, j]


@njit(inline="always", **COMMON)
def _max_batch(starts):
    B_max = 0
    for i in range(starts.shape[0] - 1):
        B_max = max(B_max, starts[i + 1] - starts[i])
    return B_max


@njit(inline="always", **COMMON)
def _gather(xb, lb, tb, x, labels, targets, order, s, B, loss_kind):
    """Copy batch rows order[s:s + B] into the flat, row-major buffers xb / lb or tb."""
    D, C = x.shape[1], tb.shape[0] // lb.shape[0]
    for r in range(B):
        src = order[s + r]
        for d in range(D):
            xb[r * D + d] = x[src, d]
        if loss_kind == SOFTMAX_LABELS:
            lb[r] = labels[src]
        else:
            for c in range(C):
                tb[r * C + c] = targets[src, c]


def _train_batches(params, layout, x, labels, targets, order, starts, lr, act, loss_kind,
                   blas_min, losses):
    """Train on batches ``order[starts[i]:starts[i + 1]]`` in turn; per-batch losses out.

    params: the network's flat parameter buffer, updated in place. layout: (L, 4) int64
    rows (offset of W, fan_in, fan_out, offset of b) per affine layer. x: (n, D).
    labels (n,) for SOFTMAX_LABELS, else targets (n, C) (the unused one may be empty).
    On a non-finite loss the batch is not applied, its loss and all later ones are set
    to that value / NaN, and the function returns.
    """
    n_layers = layout.shape[0]
    n_batches = starts.shape[0] - 1
    B_max = _max_batch(starts)
    D = x.shape[1]
    C = layout[n_layers - 1, 2]
    xflat = np.empty(B_max * D, params.dtype)
    xb = xflat.reshape((B_max, D))
    hs = [np.empty((B_max, layout[i, 2]), params.dtype) for i in range(n_layers)]
    ds = [np.empty((B_max, layout[i, 2]), params.dtype) for i in range(n_layers)]
    grads = np.zeros_like(params)
    partials = [np.empty((1, layout[i, 2])) for i in range(n_layers)]  # bias-sum scratch
    lb = np.empty(B_max, np.int64)
    tflat = np.empty(B_max * C, params.dtype)
    tb = tflat.reshape((B_max, C))
    # views made once: creating array views inside the step loop costs reference counting
    Ws = [params[layout[i, 0]:layout[i, 0] + layout[i, 1] * layout[i, 2]].reshape(
        (layout[i, 1], layout[i, 2])) for i in range(n_layers)]
    bs = [params[layout[i, 3]:layout[i, 3] + layout[i, 2]] for i in range(n_layers)]
    dWs = [grads[layout[i, 0]:layout[i, 0] + layout[i, 1] * layout[i, 2]].reshape(
        (layout[i, 1], layout[i, 2])) for i in range(n_layers)]
    dbs = [grads[layout[i, 3]:layout[i, 3] + layout[i, 2]] for i in range(n_layers)]
    for bi in range(n_batches):
        B = starts[bi + 1] - starts[bi]
        _gather(xflat, lb, tflat, x, labels, targets, order, starts[bi], B, loss_kind)
        if B == B_max:
            _step(xb, lb, tb, hs, ds, Ws, bs, dWs, dbs, partials, act, loss_kind, blas_min,
                  losses, bi)
        else:  # a short last batch of an epoch: the same on row slices
            _step(xb[:B], lb[:B], tb[:B], [h[:B] for h in hs], [d[:B] for d in ds], Ws, bs,
                  dWs, dbs, partials, act, loss_kind, blas_min, losses, bi)
        if not np.isfinite(losses[bi]):
            for rest in range(bi + 1, n_batches):
                losses[rest] = np.nan
            return
        _axpy(params, grads, lr)  # lr arrives in the parameters' dtype


@njit(inline="always", **COMMON)
def _step(xs, lb, tb, hs, ds, Ws, bs, dWs, dbs, partials, act, loss_kind, blas_min, losses,
          bi):
    """Forward and backward of one batch (rows of xs) into dWs/dbs; its loss to losses[bi].

    The update is left to the caller; nothing is computed past a non-finite loss.
    """
    n_layers = len(Ws)
    last = n_layers - 1
    for i in range(n_layers):
        out = hs[i]
        matmul_(xs if i == 0 else hs[i - 1], Ws[i], out, blas_min)
        _bias_act(out, bs[i], act if i < last else IDENTITY, False)
    if loss_kind == SOFTMAX_LABELS:
        loss = _xent_labels(ds[last], hs[last], lb)
    elif loss_kind == SOFTMAX_ROWS:
        loss = _xent_rows(ds[last], hs[last], tb)
    else:
        loss = _squared_error(ds[last], hs[last], tb)
    losses[bi] = loss
    if not np.isfinite(loss):
        return
    for i in range(last, -1, -1):
        dz = ds[i]
        if i == last:
            _colsum(dbs[i], dz, partials[i])
        else:
            _act_grad_colsum(dz, hs[i], dbs[i], act, partials[i])
        matmul_((xs if i == 0 else hs[i - 1]).T, dz, dWs[i], blas_min)
        if i > 0:
            matmul_(dz, Ws[i].T, ds[i - 1], blas_min)


train_batches = compile_serial(_train_batches)


def _train_batches_small(params, layout, x, labels, targets, order, starts, lr, act,
                         loss_kind, losses):
    """``train_batches`` for networks whose every product is small: flat buffers only.

    The same computation in the same order (each product accumulates over its inner
    dimension from zero, then the bias is added; the same activation, loss-row and
    update formulas), on flat buffers addressed by offsets. Without array views in the
    step loop there is no reference counting per step: a 1-3-1 step takes ~0.05 us.
    """
    n_layers = layout.shape[0]
    n_batches = starts.shape[0] - 1
    B_max = _max_batch(starts)
    D = x.shape[1]
    C = layout[n_layers - 1, 2]
    last = n_layers - 1
    a_off = np.zeros(n_layers + 1, np.int64)  # layer i's outputs: acts[a_off[i]:a_off[i+1]]
    for i in range(n_layers):
        a_off[i + 1] = a_off[i] + B_max * layout[i, 2]
    acts = np.empty(a_off[n_layers], params.dtype)
    dacts = np.empty(a_off[n_layers], params.dtype)
    xb = np.empty(B_max * D, params.dtype)
    tb = np.empty(B_max * C, params.dtype)
    lb = np.empty(B_max, np.int64)
    grads = np.zeros_like(params)
    zero = grads[0]
    for bi in range(n_batches):
        B = starts[bi + 1] - starts[bi]
        _gather(xb, lb, tb, x, labels, targets, order, starts[bi], B, loss_kind)
        # forward: acts_i = act(inp @ W + b)
        for i in range(n_layers):
            w, fan_in, fan_out, b = layout[i, 0], layout[i, 1], layout[i, 2], layout[i, 3]
            code = act if i < last else IDENTITY
            for r in range(B):
                for o in range(fan_out):
                    acc = zero
                    for k in range(fan_in):  # (a loop-invariant branch: LLVM unswitches it)
                        v = xb[r * D + k] if i == 0 else acts[a_off[i - 1] + r * fan_in + k]
                        acc += v * params[w + k * fan_out + o]
                    acts[a_off[i] + r * fan_out + o] = act_value(acc + params[b + o], code)
        inv_n = 1.0 / B
        total = 0.0
        so = a_off[last]
        for r in range(B):
            if loss_kind == SOFTMAX_LABELS:
                total += xent_labels_row(dacts, acts, so + r * C, C, lb[r], inv_n)
            elif loss_kind == SOFTMAX_ROWS:
                total += xent_rows_row(dacts, acts, tb, so + r * C, r * C, C, inv_n)
            else:
                total += squared_error_row(dacts, acts, tb, so + r * C, r * C, C, inv_n)
        loss = total * inv_n if loss_kind != MSE else 0.5 * total * inv_n
        losses[bi] = loss
        if not np.isfinite(loss):
            for rest in range(bi + 1, n_batches):
                losses[rest] = np.nan
            return
        # backward into grads (the layout of params), then one update
        for i in range(last, -1, -1):
            w, fan_in, fan_out, b = layout[i, 0], layout[i, 1], layout[i, 2], layout[i, 3]
            dz = a_off[i]
            code = act if i < last else IDENTITY
            for o in range(fan_out):
                db = 0.0  # float64, as the column sums of the step path
                for r in range(B):
                    g = act_grad_value(dacts[dz + r * fan_out + o], acts[dz + r * fan_out + o],
                                       code)
                    dacts[dz + r * fan_out + o] = g
                    db += g
                grads[b + o] = db
            for k in range(fan_in):
                for o in range(fan_out):
                    acc = zero
                    for r in range(B):
                        v = xb[r * D + k] if i == 0 else acts[a_off[i - 1] + r * fan_in + k]
                        acc += v * dacts[dz + r * fan_out + o]
                    grads[w + k * fan_out + o] = acc
            if i > 0:
                for r in range(B):
                    for k in range(fan_in):
                        acc = zero
                        for o in range(fan_out):
                            acc += dacts[dz + r * fan_out + o] * params[w + k * fan_out + o]
                        dacts[a_off[i - 1] + r * fan_in + k] = acc
        for j in range(params.shape[0]):
            params[j] -= lr * grads[j]


train_batches_small = compile_serial(_train_batches_small)

"""The one network loop: every path that runs a whole network runs this code.

A network is described by flat buffers: ``params`` holds W1, b1, W2, b2, ... back to
back (row-major), then any BatchNorm gamma1, beta1, ...; ``layout`` is an (L, 8) int64
array with one row per affine layer: (offset of W, fan-in, fan-out, offset of b, offset
of the layer's outputs per row, offsets of gamma and beta (-1: none), offset of the
running statistics in ``state``).
``acts`` and ``dacts`` hold each layer's outputs and their gradients for a batch of N
rows: layer i's block is ``buf[N * a : N * (a + fan_out)]`` viewed as (N, fan_out), a
being the last layout column. (``fastnn.params.layout_of`` writes layouts.)

The bodies, inlined where they are used (layer i's W, b and blocks are views made where
they are needed, ``layer_params_`` and ``layer_block_``: borrowed views, ``_views``):

* ``forward_``: each layer's ``affine_act_forward_`` (the last one's activation is the
  identity); the first layer counts non-finite pre-activations (NaN/Inf in x or W1, or an
  overflow): then the pass's result is not used and nothing is updated;
* ``loss_`` (``losses.py``): the output loss and its gradient into the last dacts block;
* ``backward_``: from that gradient down, each layer's ``affine_act_backward_``: into a
  gradient buffer of the params' layout, or, for SGD, fused with its step (the weight
  GEMM accumulates into W with beta = 1, then ``sgd_bias_``).

Without biases (``bias=False``: layout's b offsets are -1) each b is an empty view: the
forward pass adds a vector of -0.0 instead (scratch: adding -0.0 changes no value, and
``bias_act_`` has no branch on the bias), the backward pass's column sums go to scratch
and SGD's bias step has nothing to do; the same compiled code serves both.

``_network_of(ext, sources)`` is the loop that composes them, and the one kernel (compiled
once per dtype; the loss kind and the activation are arguments, so every configuration of
a plain network shares one compilation). Its ``mode`` says what a pass does: FORWARD
(prediction), EVALUATE (the mean loss and correct rows of a whole set, in passes of
``rows`` rows), GRADIENT, SGD_STEP (one step on the given batch, what
``Sequential.train_step`` runs) or TRAIN (the compiled path of ``fit``: for each batch of
a schedule, gather its rows, then the SGD step; and at the end of each evaluation period,
the same evaluation as EVALUATE's of the training and test sets). Every pass, a batch or
a chunk of an evaluated set, goes through the one ``forward_`` / ``loss_`` call of the
loop, so the step path and the compiled path run the same instructions on the same
batches and give the same bits, evaluations included. Its arguments come in four groups
(the network, its work buffers, the data and batches, the evaluations) and its result is
read by name: ``entry.py`` builds them, and is where Python calls in.

Threads: each layer's passes run on fixed blocks (``affine_act``, ``_blocks``). The kernel
has two forms, ``_kernel(ext, parallel)``: the serial one runs the blocks in turn, the
parallel one on numba's threads; both cut the same blocks and give the same bits. The
parallel form is compiled only when a call runs on more than one thread, in the
background (``run``, ``_blocks.when_compiled``); the other passes (the loss rows, the
bias steps, BatchNorm, Dropout, the batch gather) stay serial.

Kernels return status, never raise: ``n_bad`` (the first layer's non-finite count: then
nothing changed and the loss is NaN) and ``bad_label`` (the index of the first class
index outside [0, C), or -1: then nothing was computed). ``fastnn`` raises the messages.

Compile-time rules (numba's compile time grows with the kernel's IR; docs/internals.md):
a math body is ``@inline`` (copied into the one kernel where it is called) and called
from one place only: the loop has one ``forward_`` and one ``loss_`` call site, so each
body is compiled once whatever the mode. Code that only some networks need (BatchNorm,
Dropout) is ``@compiled`` (a call, compiled on its own) behind the constant ``ext``, so
the plain kernel prunes it before anything is inlined. A layer pass's block work
(``affine_act``'s ``forward_block_`` ...) is a compiled call too, shared with the parallel
form's runner. One kernel, not one per mode
(numba compiles inlined bodies anew in each kernel). Arrays are ``borrow``ed on entry
(no reference counting inside the loop) and buffers allocated inside are ``hold``-ed to
the end.

Hidden layers with BatchNorm and/or Dropout (``batchnorm.py``'s bodies) run in
``hidden_forward_`` / ``hidden_backward_``, which the loop calls (not inlines) only in the
kernel compiled with ``ext`` True (inlined, they doubled the plain kernel's compile time).
Weight decay is a runtime argument of both (the loss term, ``dW += decay * W``, or in
SGD's fused step the GEMM's beta = 1 - lr * decay).

Adding a layer kind: its forward/backward bodies in a module of their own, its columns
in ``layout``, a branch in ``hidden_forward_`` and ``hidden_backward_``; every mode picks
it up. Adding an optimizer: see ``optim.py``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba.core import config as numba_config

from ._blocks import deferred, when_compiled
from ._cache import sources_digest as _sources_digest
from ._config import callee, compiled, inline
from ._views import borrow, hold, view1d, view2d, view_rows
from .affine_act import (
    IDENTITY,
    affine_act_backward_,
    affine_act_forward_,
    blocks_for,
)
from .batchnorm import (
    batchnorm_act_backward_,
    batchnorm_act_forward_,
    dropout_backward_,
    dropout_forward_,
)
from .losses import SOFTMAX_LABELS, correct_, loss_
from .optim import sgd_bias_

# --- views of the flat buffers ----------------------------------------------------------


@inline
def layer_params_(params, layout, i):
    """Layer i's W (fan_in, fan_out) and b (fan_out,): views of the flat buffer. Without
    biases (layout's b offset -1) b is empty, and the bodies leave the bias out."""
    w, fan_in, fan_out, b = layout[i, 0], layout[i, 1], layout[i, 2], layout[i, 3]
    has = b >= 0  # (arithmetic, not a branch: no new blocks in each inlined copy)
    return view2d(params, w, fan_in, fan_out), view1d(params, b * has, fan_out * has)


@inline
def layer_block_(buf, layout, i, N):
    """Layer i's (N, fan_out) block of a flat acts/dacts buffer."""
    return view2d(buf, N * layout[i, 4], N, layout[i, 2])


@callee
def scratch_(layout, params, rows):
    """Work space as wide as the widest layer: four vectors of the dtype back to back
    (the fused step's db, dgamma, dbeta, then -0.0s: the bias of a layer without one,
    ``forward_``), float64 accumulators (4 rows) and the blocks' float64 partial sums
    for passes of up to ``rows`` rows (``blocks_for``)."""
    widest = 1
    for i in range(layout.shape[0]):
        widest = max(widest, layout[i, 2])
    dbias = np.empty(4 * widest, params.dtype)
    dbias[3 * widest:] = -0.0
    return dbias, np.empty((4, widest)), \
        np.empty((blocks_for(rows), widest))


@inline
def layer_vector_(buf, offset, H):
    """A length-H slice of a flat buffer (gamma, beta, running statistics, std)."""
    return view1d(buf, offset, H)


@inline
def weight_decay_(params, layout, decay):
    """The book's weight-decay term: the sum over layers of 0.5 * decay * sum(W ** 2)."""
    total = 0.0
    for i in range(layout.shape[0]):
        w, size = layout[i, 0], layout[i, 1] * layout[i, 2]
        s = 0.0
        for k in range(w, w + size):
            s += params[k] * params[k]
        total += 0.5 * decay * s
    return total


@compiled
def first_bad_label_(labels, C):
    """Index of the first class index outside [0, C), or -1."""
    for n in range(labels.shape[0]):
        if labels[n] < 0 or labels[n] >= C:
            return n
    return -1


# --- hidden layers with BatchNorm or Dropout (compiled once, called: see forward_) ----------


@callee
def hidden_forward_(out, z, params, layout, i, stds, state, masks, act, train, keep,
                    scratch):
    """Hidden layer i after its affine part: out = Dropout(act(BatchNorm(z))).

    With BatchNorm, z (the affine output, in the layer's ``norm`` block) becomes
    x - mean; without, z is out itself, already activated, and only Dropout is left.
    """
    N, H = out.shape
    dropout = masks.shape[0] > 0
    mask = layer_block_(masks, layout, i, N) if dropout else out
    if layout[i, 5] < 0:
        if dropout:
            dropout_forward_(out, mask, train, keep)
        return
    s = layout[i, 7]
    batchnorm_act_forward_(out, z, layer_vector_(stds, layout[i, 4], H),
                           layer_vector_(params, layout[i, 5], H),
                           layer_vector_(params, layout[i, 6], H), layer_vector_(state, s, H),
                           layer_vector_(state, s + H, H), mask, act, train, dropout, keep,
                           scratch)


@callee
def hidden_backward_(dz, out, params, grads, dbias, layout, i, norm, stds, masks, act,
                     scratch, lr, fused):
    """The first half of hidden layer i's backward pass (see ``backward_``): dz holds the
    output's gradient on entry. With BatchNorm it becomes the gradient at the affine
    output, gamma and beta get their gradients (or, fused, SGD's step), and the
    activation's code for the affine part is IDENTITY (its gradient is applied here);
    without, only the dropout mask is applied and ``act`` is returned."""
    N, H = dz.shape
    dropout = masks.shape[0] > 0
    mask = layer_block_(masks, layout, i, N) if dropout else out
    if layout[i, 5] < 0:
        if dropout:
            dropout_backward_(dz, mask)
        return act
    gamma = layer_vector_(params, layout[i, 5], H)
    if fused:
        widest = dbias.shape[0] // 4
        dgamma, dbeta = view1d(dbias, widest, H), view1d(dbias, 2 * widest, H)
    else:
        dgamma, dbeta = layer_vector_(grads, layout[i, 5], H), \
            layer_vector_(grads, layout[i, 6], H)
    batchnorm_act_backward_(dz, dgamma, dbeta, out, layer_block_(norm, layout, i, N),
                            layer_vector_(stds, layout[i, 4], H), gamma, mask, act, dropout,
                            scratch)
    if fused:
        sgd_bias_(gamma, dgamma, lr)
        sgd_bias_(layer_vector_(params, layout[i, 6], H), dbeta, lr)
    return IDENTITY


@callee
def norm_block_(norm, layout, i, N):
    """Layer i's (N, H) block of the ``norm`` buffer (a call, not inlined: see forward_)."""
    return layer_block_(norm, layout, i, N)


@inline
def forward_(acts, x, params, layout, act, ext, norm, stds, state, masks, train, keep,
             scratch, parallel, partial, dbias):
    """acts = every layer's output for x (N, D); returns the first layer's non-finite count.

    ``ext`` (a constant of the kernel) enables the hidden layers' BatchNorm (layers whose
    layout has a gamma offset >= 0) and Dropout (when ``masks`` is not empty): ``train``
    picks batch statistics and the masks, else the running statistics and ``keep``.
    Every layer's affine part is the one ``affine_act_forward_`` call below; the ``ext``
    branches hold only calls of compiled functions, which the plain kernel prunes before
    compiling them (inlined code in them would be inlined before the pruning).
    """
    N = x.shape[0]
    last = layout.shape[0] - 1
    dropout = masks.shape[0] > 0 if ext else False
    bad = 0
    inp = x
    for i in range(last + 1):
        W, b = layer_params_(params, layout, i)
        if layout[i, 3] < 0:  # no bias: add -0.0s (the last quarter of dbias, scratch_)
            b = view1d(dbias, 3 * (dbias.shape[0] // 4), layout[i, 2])
        out = layer_block_(acts, layout, i, N)
        code = act if i < last else IDENTITY
        z = out
        if ext and i < last and layout[i, 5] >= 0:  # BatchNorm comes before the activation
            z = norm_block_(norm, layout, i, N)
            code = IDENTITY
        bad += affine_act_forward_(z, inp, W, b, code, i == 0, parallel, partial)
        if ext and i < last and (layout[i, 5] >= 0 or dropout):
            hidden_forward_(out, z, params, layout, i, stds, state, masks, act, train, keep,
                            scratch)
        inp = out
    return bad


@inline
def backward_(grads, dacts, acts, x, params, layout, act, dbias, lr, fused, ext, norm,
              stds, masks, scratch, decay, parallel, partial):
    """Backpropagate the scores' gradient (the last block of dacts) through every layer.

    ``fused`` False: gradients into ``grads`` (a flat buffer of the params' layout). True:
    SGD's step fused in (W -= lr * (x.T @ dz + decay * W) inside the GEMM, after dx used
    the old W, then b, gamma, beta -= lr * their gradients); ``grads`` is unused. dz is
    left in dacts; the first layer's dx is never computed. ``decay`` adds decay * W to
    each weight gradient (the book's weight decay; biases, gamma, beta are not decayed).
    """
    N = x.shape[0]
    last = layout.shape[0] - 1
    for i in range(last, -1, -1):
        W, b = layer_params_(params, layout, i)
        H = layout[i, 2]
        dz = layer_block_(dacts, layout, i, N)
        out = layer_block_(acts, layout, i, N)
        code = act if i < last else IDENTITY
        inp = x if i == 0 else layer_block_(acts, layout, i - 1, N)
        dx = dz if i == 0 else layer_block_(dacts, layout, i - 1, N)  # (unused if i == 0)
        if fused:  # the weight GEMM is W's step; db goes to scratch, then b's step
            dW, db, alpha, beta = W, view1d(dbias, 0, H), -lr, 1.0 - lr * decay
        else:
            dW, db = layer_params_(grads, layout, i)
            alpha, beta = 1.0, 0.0
            if layout[i, 3] < 0:  # no bias: the column sums go to scratch, unused
                db = view1d(dbias, 0, H)
        if ext and i < last:  # BatchNorm's / Dropout's part first
            code = hidden_backward_(dz, out, params, grads, dbias, layout, i, norm, stds,
                                    masks, act, scratch, lr, fused)
        affine_act_backward_(dx, dW, db, dz, inp, W, out, code, i > 0, True, alpha, beta,
                             parallel, partial)
        if fused:
            sgd_bias_(b, db, lr)
        elif decay != 0:
            for r in range(dW.shape[0]):
                for c in range(dW.shape[1]):
                    dW[r, c] = dW[r, c] + decay * W[r, c]


FORWARD, EVALUATE, GRADIENT, SGD_STEP, TRAIN = 0, 1, 2, 3, 4


@inline
def all_finite_(a):
    """True when every value of the 1-D array a is finite."""
    for k in range(a.shape[0]):
        if not math.isfinite(a[k]):
            return False
    return True


def _network_of(ext, parallel, sources):
    """The network loop for ``ext`` (BatchNorm/Dropout compiled in, a constant): the one
    kernel's body. (Its body is this closure itself, not an inlined function called by
    it: numba deep-copies an inlined function's whole IR block by block, and for this
    loop that copying was a third of the compile time; docs/performance.md.)

    ``sources`` (``_sources_digest()``) is part of the closure only so that it is part of
    numba's cache key: numba checks the kernel's own file for changes, not the files of
    the bodies it inlines, and after an edit of one of those it loaded the stale
    compiled code.
    """

    def network(mode, kind, train, lr, net, work, data, evals):
        """The loop: (loss, correct rows, n_bad, bad_label, stop, periods, not_finite),
        read by name through ``kernels.entry.Status``.

        The arguments, grouped (``kernels.entry`` builds the groups):

        * ``net``: what the network is: (params, layout, state, act, decay, keep);
        * ``work``: its work buffers: (acts, dacts, grads, norm, stds, masks);
        * ``data``: the inputs and batches: (x, labels, targets, order, starts, losses);
        * ``evals``: TRAIN's evaluations, and EVALUATE's pass size: (ends, x2, labels2,
          targets2, rows, records).

        TRAIN: SGD steps on the batches ``order[starts[i]:starts[i + 1]]`` of x and labels
        or targets in turn, each loss to ``losses[i]``; at the first batch not applied it
        stops (later losses NaN). After batch ``ends[k] - 1`` (period k ends) it
        evaluates: first, when a parameter (or running statistic) is not finite, it
        stops there (the last flag); else ``records[k]`` = (mean loss on x, correct rows
        of x, mean loss on x2, correct rows of x2), the hidden layers in prediction mode.
        EVALUATE: the mean loss and correct rows of the whole of x, the same evaluation
        (also with ``train``; first bad label or non-finite pass reported). Evaluations
        make passes of ``rows`` rows. The other modes make one pass over the whole of x.
        FORWARD and EVALUATE run the hidden layers in training (``train``) or prediction
        mode; the others always in training mode. The loss includes the weight-decay
        term when ``decay`` is not 0. acts and dacts hold the largest batch or pass.

        Every pass, a training batch or a chunk of an evaluated set, runs through the
        one ``forward_`` and ``loss_`` below (one copy of each in the compiled code).
        """
        if False:  # (in the closure, never in the compiled code: see _network_of)
            sources  # noqa: B018
        params, layout, state, act, decay, keep = net
        acts, dacts, grads, norm, stds, masks = work
        x, labels, targets, order, starts, losses = data
        ends, x2, labels2, targets2, rows, records = evals
        # Every array is used through a borrowed view (no reference counting inside the
        # loop: see _views); the work buffers allocated here stay alive to the hold().
        losses, grads, acts, dacts = borrow(losses), borrow(grads), borrow(acts), borrow(dacts)
        x, labels, targets = borrow(x), borrow(labels), borrow(targets)
        order, starts, params, layout = borrow(order), borrow(starts), borrow(params), \
            borrow(layout)
        norm, stds, state, masks = borrow(norm), borrow(stds), borrow(state), borrow(masks)
        ends, x2, labels2, targets2 = borrow(ends), borrow(x2), borrow(labels2), \
            borrow(targets2)
        records = borrow(records)
        last = layout.shape[0] - 1
        D, C = x.shape[1], layout[last, 2]
        n_batches = starts.shape[0] - 1 if mode == TRAIN else 1
        n_periods = ends.shape[0] if mode == TRAIN else 0
        train = train or mode >= GRADIENT
        B_max = 0
        if mode == TRAIN:  # gather buffers for the largest batch
            for i in range(n_batches):
                B_max = max(B_max, starts[i + 1] - starts[i])
        owned_x = np.empty(B_max * D, params.dtype)
        owned_t = np.empty(B_max * C, params.dtype)
        owned_l = np.empty(B_max, np.intp)
        owned_dbias, owned_scratch, owned_partial = scratch_(
            layout, params, max(B_max, x.shape[0], x2.shape[0]))
        xflat, tflat, lflat = borrow(owned_x), borrow(owned_t), borrow(owned_l)
        dbias, scratch, partial = borrow(owned_dbias), borrow(owned_scratch), \
            borrow(owned_partial)
        loss, correct, bad, at, value = math.nan, 0, 0, -1, math.nan
        i, k = 0, 0  # the next batch, the next period
        # 0: training; 1, 2: evaluating x, x2 (from that row); EVALUATE is x's evaluation
        phase, row = (1, 0) if mode == EVALUATE else (0, 0)
        set_loss, set_correct = 0.0, 0
        while True:
            if phase == 0:
                if k < n_periods and i == ends[k]:  # period k ends: evaluate
                    if not (all_finite_(params) and all_finite_(state)):
                        return loss, 0, 0, -1, i, k, True
                    phase, row, set_loss, set_correct = 1, 0, 0.0, 0
                    continue
                if i == n_batches:
                    break
                if mode == TRAIN:
                    first, N = starts[i], starts[i + 1] - starts[i]
                    xb, tb = view2d(xflat, 0, N, D), view2d(tflat, 0, N, C)
                    lb = view1d(lflat, 0, N)
                    for r in range(N):  # gather the batch's rows
                        src = order[first + r]
                        for d in range(D):
                            xb[r, d] = x[src, d]
                        if kind == SOFTMAX_LABELS:
                            lb[r] = labels[src]
                        else:
                            for c in range(C):
                                tb[r, c] = targets[src, c]
                else:
                    N, xb, tb, lb = x.shape[0], x, targets, labels
                if mode != FORWARD and kind == SOFTMAX_LABELS:
                    at = first_bad_label_(lb, C)
                    if at >= 0:
                        losses[i] = math.nan  # (TRAIN: the batch's loss; else scratch)
                        return loss, 0, 0, at, i, k, False
            else:
                n_set = x.shape[0] if phase == 1 else x2.shape[0]
                if row == n_set:  # the set is done: its mean loss and correct rows
                    # (one pass: its own mean, exactly)
                    mean = value if n_set and rows >= n_set else \
                        (set_loss / n_set if n_set else math.nan)
                    if mode == EVALUATE:
                        return mean, set_correct, 0, -1, -1, 0, False
                    records[k, 2 * phase - 2] = mean
                    records[k, 2 * phase - 1] = set_correct
                    if phase == 1 and x2.shape[0] > 0:
                        phase, row, set_loss, set_correct = 2, 0, 0.0, 0
                        continue
                    phase, k = 0, k + 1
                    continue
                N = min(rows, n_set - row)
                if phase == 1:
                    xb, tb = view_rows(x, row, N), view_rows(targets, row, N)
                    lb = view1d(labels, row, N) if kind == SOFTMAX_LABELS else labels
                else:
                    xb, tb = view_rows(x2, row, N), view_rows(targets2, row, N)
                    lb = view1d(labels2, row, N) if kind == SOFTMAX_LABELS else labels2
                if mode == EVALUATE and kind == SOFTMAX_LABELS:  # (TRAIN's sets are checked)
                    at = first_bad_label_(lb, C)
                    if at >= 0:
                        return loss, 0, 0, row + at, -1, 0, False
                row += N
            evaluating = phase > 0
            bad = forward_(acts, xb, params, layout, act, ext, norm, stds, state, masks,
                           train and (mode == EVALUATE or not evaluating), keep, scratch,
                           parallel, partial, dbias)
            if mode == FORWARD:
                return loss, 0, bad, -1, -1, 0, False
            if bad and mode == EVALUATE:
                return loss, 0, bad, -1, -1, 0, False
            scores = layer_block_(acts, layout, last, N)
            dscores = layer_block_(dacts, layout, last, N)
            value = math.nan
            if not bad:
                value = loss_(dscores, scores, lb, tb, kind)
                if decay != 0:
                    value = value + weight_decay_(params, layout, decay)
            right = 0
            if evaluating and not bad:
                right = correct_(scores, lb, tb, kind)
            if evaluating:  # (the one evaluation's sums: whole sets, in pass order)
                set_loss += value * N
                set_correct += right
                continue
            if bad:
                losses[i] = math.nan
                return loss, 0, bad, -1, i, k, False
            loss = value
            if mode == GRADIENT or math.isfinite(loss):  # SGD_STEP, TRAIN: fused step
                backward_(grads, dacts, acts, xb, params, layout, act, dbias, lr,
                          mode != GRADIENT, ext, norm, stds, masks, scratch, decay, parallel,
                          partial)
            if mode == TRAIN:
                losses[i] = loss
                if not math.isfinite(loss):
                    for rest in range(i + 1, n_batches):
                        losses[rest] = math.nan
                    return loss, 0, 0, -1, i, k, False
            i += 1
        hold((owned_x, owned_t, owned_l, owned_dbias, owned_scratch, owned_partial))
        return loss, correct, 0, -1, -1, k, False

    return network


_SOURCES = _sources_digest()


@functools.cache
def _kernel(ext: bool, parallel: bool = False):
    """The kernel for ``ext`` (BatchNorm/Dropout compiled in) and ``parallel`` (the
    layers' blocks on numba's threads, else in turn: the same blocks, the same bits),
    compiled on first use (per dtype); the loss kind and the activation are arguments.
    The parallel form compiles only when a call wants it (``run``), never on a call's
    path."""
    kernel = compiled(_network_of(ext, parallel, _SOURCES))
    return deferred(kernel) if parallel else kernel


def run(ext: bool, parallel: bool, args):
    """The kernel's result for ``args``: the parallel form where ``parallel`` and it is
    compiled for their types, else the serial one, the parallel form's compilation then
    started (``_blocks.when_compiled``: in the background unless
    FASTNN_BACKGROUND_COMPILE=0)."""
    serial = _kernel(ext)
    if not parallel or numba_config.DISABLE_JIT:
        return serial(*args)
    return when_compiled(_kernel(ext, True), args, lambda: serial(*args))

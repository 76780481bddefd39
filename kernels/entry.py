"""The whole-network kernels' Python entry points, with ``fastnn.reference``'s names and
signatures: each builds the one network loop's argument groups (``network.py``) and
reads its result by name (``Status``).

The inputs are already validated (``fastnn.Engine`` calls these with its own buffers):
x is C-contiguous (N, D) of the params' dtype, t class indices (intp) or (N, C) rows.
Nothing here raises for bad input; the loop returns status (``n_bad``, ``bad_label``)
and ``fastnn`` turns it into errors.

``extras`` (or None: a plain network) has the attributes ``norm``, ``stds``, ``state``,
``masks`` (flat buffers; ``masks`` empty: no Dropout), ``train``, ``keep`` and ``decay``
(see ``fastnn.params.Extras``).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ._threads import block_threads
from .affine_act import ACTIVATIONS
from .losses import SOFTMAX_LABELS, kind_of
from .network import EVALUATE, FORWARD, GRADIENT, SGD_STEP, TRAIN, _kernel, run

# The loop's result, by name (the loop returns it as a plain tuple: numba dispatches
# plain tuples much faster than named ones).
Status = namedtuple("Status", "loss correct n_bad bad_label stop periods not_finite")

_NO_LABELS = np.empty(0, np.intp)
_NO_BATCHES = np.zeros(2, np.int64)  # (order, starts) outside TRAIN: unused
_NO_LOSSES = np.empty(1)
_NO_ENDS = np.empty(0, np.int64)
_NO_RECORDS = np.empty((0, 4))
_EMPTY = {np.dtype(np.float32): np.empty(0, np.float32),
          np.dtype(np.float64): np.empty(0, np.float64)}


def _c(a):
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _targets(loss, t, x):
    """(kind, labels, targets) for the loop: the unused one is an empty array."""
    if t is None:  # a forward pass
        return SOFTMAX_LABELS, _NO_LABELS, x[:0]
    kind = kind_of(loss, t)
    if kind == SOFTMAX_LABELS:
        return kind, _c(t), x[:0]
    return kind, _NO_LABELS, _c(t)


def _run(mode, x, t, params, layout, acts, dacts, grads, activation, loss, lr, extras,
         order=_NO_BATCHES, starts=_NO_BATCHES, losses=_NO_LOSSES, evals=None,
         rows=1) -> Status:
    """One call of the loop. ``evals``: None, or (ends, x2, t2, records) for TRAIN's
    evaluations; ``rows``: the evaluations' pass size."""
    x = _c(x)
    kind, labels, targets = _targets(loss, t, x)
    dtype = params.dtype.type
    empty = _EMPTY[params.dtype]
    if evals is None:
        ends, x2, labels2, targets2, records = _NO_ENDS, x[:0], labels[:0], targets[:0], \
            _NO_RECORDS
    else:
        ends, x2, t2, records = evals
        if x2 is None:
            x2, labels2, targets2 = x[:0], labels[:0], targets[:0]
        else:
            x2 = _c(x2)
            _, labels2, targets2 = _targets(loss, t2, x2)
    if extras is None:
        ext, train, state, keep, decay = False, False, empty, 1.0, 0.0
        norm = stds = masks = empty
    else:
        ext = bool(extras.masks.shape[0] > 0 or (layout[:, 5] >= 0).any())
        train, state, keep, decay = bool(extras.train), extras.state, extras.keep, extras.decay
        norm, stds, masks = extras.norm, extras.stds, extras.masks
    net = (params, layout, state, ACTIVATIONS[activation], dtype(decay), dtype(keep))
    work = (acts, dacts, grads, norm, stds, masks)
    data = (x, labels, targets, order, starts, losses)
    evaluations = (ends, x2, labels2, targets2, int(rows), records)
    args = (mode, kind, train, dtype(lr), net, work, data, evaluations)
    if block_threads() > 1:  # the parallel form, where it is compiled (network.run)
        return Status._make(run(ext, True, args))
    return Status._make(_kernel(ext)(*args))


def forward(x, params, layout, acts, activation, extras=None):
    """Every layer's output for x into acts; returns the first layer's non-finite count.

    The scores are the last (N, C) block of acts. See ``network.py`` for the buffers'
    layout.
    """
    return int(_run(FORWARD, x, None, params, layout, acts, acts, params, activation,
                    "softmax", 0.0, extras).n_bad)


def evaluate(x, t, params, layout, acts, dacts, activation, loss, extras=None, rows=None):
    """(mean loss, number of correct rows, n_bad, bad_label) of the network on x, t.

    Passes of ``rows`` rows (default: one pass), summed in pass order: the evaluation
    ``train_periods`` runs inside its loop. Correct rows: the highest score is the class
    (0 for ``loss="mse"``). acts and dacts (work buffers here) hold ``rows`` rows.
    """
    rows = x.shape[0] if rows is None else min(int(rows), x.shape[0])
    s = _run(EVALUATE, x, t, params, layout, acts, dacts, params, activation, loss, 0.0,
             extras, rows=max(rows, 1))
    return float(s.loss), int(s.correct), int(s.n_bad), int(s.bad_label)


def gradient(x, t, params, layout, acts, dacts, grads, activation, loss, extras=None):
    """(mean loss, n_bad, bad_label); the loss's gradient of every parameter into grads.

    ``grads`` is a flat buffer of the params' layout; it is unchanged when n_bad or
    bad_label says the pass stopped. The hidden layers run in training mode.
    """
    s = _run(GRADIENT, x, t, params, layout, acts, dacts, grads, activation, loss, 0.0, extras)
    return float(s.loss), int(s.n_bad), int(s.bad_label)


def sgd_step(x, t, params, layout, acts, dacts, activation, loss, lr, extras=None):
    """One SGD step of the network on the batch x, t: (loss, n_bad, bad_label).

    ``params`` is updated in place by lr times the gradient of the mean loss; nothing is
    changed when a label is out of range (bad_label >= 0), the first layer's
    pre-activations are not finite (n_bad > 0, loss NaN) or the loss is NaN/Inf.
    """
    s = _run(SGD_STEP, x, t, params, layout, acts, dacts, params, activation, loss, lr, extras)
    return float(s.loss), int(s.n_bad), int(s.bad_label)


def _width(layout) -> int:
    return int(layout[-1, 4] + layout[-1, 2])


def train_batches(x, t, order, starts, params, layout, activation, loss, lr, losses,
                  extras=None):
    """SGD steps on the batches ``order[starts[i]:starts[i + 1]]`` of x, t, in turn.

    Each batch's loss goes to ``losses[i]``. Returns -1, or the index of the first batch
    that was not applied (its loss NaN/Inf, its first layer non-finite, or a label out of
    range): later batches are not run and their losses are NaN. ``extras`` may have
    BatchNorm (its ``norm``, ``stds`` for the largest batch) but not Dropout.
    """
    B = int(np.max(np.diff(starts))) if starts.shape[0] > 1 else 1
    acts = np.empty(B * _width(layout), params.dtype)
    stop = _run(TRAIN, x, t, params, layout, acts, np.empty_like(acts), params, activation,
                loss, lr, extras, order, starts, losses).stop
    if stop >= 0:
        losses[stop + 1:] = np.nan
    return int(stop)


def train_periods(x, t, x2, t2, order, starts, ends, params, layout, activation, loss, lr,
                  losses, records, rows, extras=None):
    """``train_batches``, evaluating after batch ``ends[k] - 1`` for each k (a period).

    At each period's end: when a parameter or running statistic (``extras.state``) is
    not finite it stops there; else ``records[k]`` (float64, (len(ends), 4)) = (mean loss
    on x, t; correct rows of x; mean loss on x2, t2; correct rows of x2), as ``evaluate``
    computes them over passes of ``rows`` rows (x2 None: NaN, 0). x2, t2 are like x, t
    (features, kind of targets).

    Returns (stop, periods, not_finite): stop is -1 or the first batch not applied (as
    ``train_batches``), periods how many were evaluated, not_finite whether it stopped at
    a period's end for non-finite parameters (then stop is that period's end; the losses
    from there on are NaN). ``extras`` (BatchNorm, no Dropout) needs ``norm`` and
    ``stds`` for max(largest batch, rows) rows.
    """
    B = int(np.max(np.diff(starts))) if starts.shape[0] > 1 else 1
    n_eval = max(x.shape[0], 0 if x2 is None else x2.shape[0])
    acts = np.empty(max(B, min(rows, n_eval)) * _width(layout), params.dtype)
    if x2 is None:
        records[:, 2:] = (np.nan, 0)
    s = _run(TRAIN, x, t, params, layout, acts, np.empty_like(acts), params, activation,
             loss, lr, extras, order, starts, losses,
             (np.ascontiguousarray(ends, np.int64), x2, t2, records), rows)
    stop, done, not_finite = int(s.stop), int(s.periods), bool(s.not_finite)
    if stop >= 0:
        losses[stop + (0 if not_finite else 1):] = np.nan
    return stop, done, not_finite

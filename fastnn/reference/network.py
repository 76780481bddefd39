"""Whole networks on flat buffers, with their own plain loop over the per-layer functions
(the NumPy twin of ``kernels/network.py`` and ``kernels/entry.py``)."""

from __future__ import annotations

import numpy as np

from .affine_act import ACTIVATIONS, affine_backward, affine_forward
from .batchnorm import batchnorm_backward, batchnorm_forward, dropout_backward, dropout_forward
from .losses import softmax_cross_entropy, squared_error, sum_squared_error
from .optim import sgd_update

# --- whole networks ------------------------------------------------------------------

def _layers(flat, layout):
    """[(W, b), ...]: each layer's parameters, sliced from the flat buffer as layout says
    (b None: no bias)."""
    out = []
    for w, fan_in, fan_out, b, *_ in layout.tolist():
        out.append((flat[w:w + fan_in * fan_out].reshape(fan_in, fan_out),
                    flat[b:b + fan_out] if b >= 0 else None))
    return out


def _blocks(buf, layout, N):
    """[(N, fan_out), ...]: each layer's block of an activation buffer (None if empty)."""
    if buf is None or buf.shape[0] == 0:
        return [None] * layout.shape[0]
    return [buf[N * a:N * (a + fan_out)].reshape(N, fan_out)
            for _, _, fan_out, _, a, *_ in layout.tolist()]


def _bn(flat, layout, i):
    """Layer i's (gamma, beta) views, or None without BatchNorm."""
    g, be, H = int(layout[i, 5]), int(layout[i, 6]), int(layout[i, 2])
    return None if g < 0 else (flat[g:g + H], flat[be:be + H])


def _first_bad_label(t, loss, C):
    if loss != "softmax" or t.ndim != 1:
        return -1
    bad = np.flatnonzero((t < 0) | (t >= C))
    return int(bad[0]) if bad.size else -1


class _Plain:
    """The extras of a network without BatchNorm, Dropout or weight decay."""

    norm = stds = state = masks = None
    train, keep, decay = False, 1.0, 0.0


def _forward_pass(x, params, layout, acts, activation, ex, train):
    """Each layer's output into its block of acts; the first layer's non-finite count.

    Hidden layer: Affine -> BatchNorm (when the layout has one) -> activation -> Dropout
    (when ``ex.masks`` is not empty): the book's MultiLayerNetExtend.
    """
    N = x.shape[0]
    layers, h = _layers(params, layout), _blocks(acts, layout, N)
    xcs, masks = _blocks(ex.norm, layout, N), _blocks(ex.masks, layout, N)
    last = len(layers) - 1
    n_bad = 0
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf are results here
        inp = x
        for i in range(last + 1):
            z = affine_forward(inp, *layers[i])
            if i == 0:
                n_bad = int(np.count_nonzero(~np.isfinite(z)))
            if i == last:
                h[i][...] = z
                break
            bn = _bn(params, layout, i)
            if bn is not None:
                a, H = int(layout[i, 4]), int(layout[i, 2])
                s = int(layout[i, 7])
                z, xc, std = batchnorm_forward(z, *bn, ex.state[s:s + H],
                                               ex.state[s + H:s + 2 * H], train)
                xcs[i][...] = xc
                ex.stds[a:a + H] = std
            y = ACTIVATIONS[activation][0](z)
            if masks[i] is not None:
                y = dropout_forward(y, masks[i], train, 1.0 - ex.keep)
            h[i][...] = y
            inp = h[i]
    return n_bad


_LOSSES = {"softmax": softmax_cross_entropy, "mse": squared_error, "sse": sum_squared_error}


def _weight_decay(params, layout, decay):
    """The book's weight-decay term of the loss."""
    total = 0.0
    for W, _ in _layers(params, layout):
        total += 0.5 * decay * np.sum(W.astype(np.float64) ** 2)
    return total


def _scores_loss(x, t, params, layout, acts, dacts, activation, loss, ex, train):
    """Forward and the loss: (loss, n_bad, bad_label), the loss's gradient in dacts."""
    at = _first_bad_label(t, loss, int(layout[-1, 2]))
    if at >= 0:
        return float("nan"), 0, at
    n_bad = _forward_pass(x, params, layout, acts, activation, ex, train)
    if n_bad:
        return float("nan"), n_bad, -1
    N = x.shape[0]
    scores, dscores = _blocks(acts, layout, N)[-1], _blocks(dacts, layout, N)[-1]
    with np.errstate(invalid="ignore", over="ignore"):
        if loss not in _LOSSES:
            raise ValueError(f"loss: expected one of {', '.join(map(repr, _LOSSES))}, got "
                             f"{loss!r}")
        value = _LOSSES[loss](scores, t, dscores)[0]
        if ex.decay != 0:
            value = value + _weight_decay(params, layout, ex.decay)
    return value, 0, -1


def _backward_pass(x, params, layout, acts, dacts, activation, lr, grads, ex):
    """Backpropagate dacts' last block; gradients into grads, or (grads None) SGD steps."""
    N = x.shape[0]
    layers, h, dh = _layers(params, layout), _blocks(acts, layout, N), _blocks(dacts, layout, N)
    xcs, masks = _blocks(ex.norm, layout, N), _blocks(ex.masks, layout, N)
    sinks = None if grads is None else _layers(grads, layout)
    last = len(layers) - 1
    for i in range(last, -1, -1):
        W, b = layers[i]
        inp = x if i == 0 else h[i - 1]
        bn = _bn(params, layout, i)
        if i == last:
            dz = dh[i]
        else:
            dy = dh[i] if masks[i] is None else dropout_backward(dh[i], masks[i])
            dz = ACTIVATIONS[activation][1](dy, h[i])
            if bn is not None:
                a, H = int(layout[i, 4]), int(layout[i, 2])
                dz, dgamma, dbeta = batchnorm_backward(dz, xcs[i], ex.stds[a:a + H], bn[0])
        dh[i][...] = dz
        dx, dW, db = affine_backward(dz, inp, W, need_dx=i > 0, need_dW=True)
        if ex.decay != 0:
            dW = dW + ex.decay * W
        if i > 0:
            dh[i - 1][...] = dx  # computed with the old W
        if grads is None:
            sgd_update(W, dW, lr)
            if b is not None:
                sgd_update(b, db, lr)
            if bn is not None:
                sgd_update(bn[0], dgamma, lr)
                sgd_update(bn[1], dbeta, lr)
        else:
            sinks[i][0][...] = dW
            if b is not None:
                sinks[i][1][...] = db
            if bn is not None:
                gamma, beta = _bn(grads, layout, i)
                gamma[...], beta[...] = dgamma, dbeta


def forward(x, params, layout, acts, activation, extras=None):
    """Every layer's output for x into acts; returns the first layer's non-finite count.

    The network: (affine -> ``activation``) per hidden layer, then affine; the scores are
    the last (N, C) block of acts (NaN where the count is not zero, usually).
    ``extras`` (``fastnn.params.Extras``, or None for a plain network) adds BatchNorm,
    Dropout and weight decay, and says whether hidden layers run in training mode.
    """
    ex = extras or _Plain
    return _forward_pass(x, params, layout, acts, activation, ex, ex.train)


def evaluate(x, t, params, layout, acts, dacts, activation, loss, extras=None, rows=None):
    """(mean loss, number of correct rows, n_bad, bad_label) of the network on x, t.

    A row is correct when its highest score is its class (the label, or the argmax of
    its target row); always 0 for ``loss="mse"`` and ``"sse"``. The loss includes the
    weight-decay term. Passes of ``rows`` rows (default: one pass; acts and dacts hold
    that many), their losses weighted by their rows and summed in order: the evaluation
    ``train_periods`` runs after each period. A bad label or non-finite pass stops it.
    """
    ex = extras or _Plain
    N = x.shape[0]
    rows = N if rows is None else max(min(int(rows), N), 1)
    total, correct = 0.0, 0
    for start in range(0, N, rows):
        xs, ts = x[start:start + rows], t[start:start + rows]
        value, n_bad, at = _scores_loss(xs, ts, params, layout, acts, dacts, activation, loss,
                                        ex, ex.train)
        if n_bad or at >= 0:
            return np.nan, 0, n_bad, (start + at if at >= 0 else -1)
        if loss == "softmax":
            scores = _blocks(acts, layout, xs.shape[0])[-1]
            labels = ts if ts.ndim == 1 else np.argmax(ts, axis=1)
            correct += int(np.count_nonzero(np.argmax(scores, axis=1) == labels))
        total += float(value) * xs.shape[0]
    if rows >= N > 0:  # one pass: its own mean, exactly
        return value, correct, 0, -1
    return (total / N if N else np.nan), correct, 0, -1


def gradient(x, t, params, layout, acts, dacts, grads, activation, loss, extras=None):
    """(mean loss, n_bad, bad_label); every parameter's gradient into the flat ``grads``.

    ``loss`` is "softmax" (t: class indices (N,) or rows (N, C)), "mse" or "sse" (t: (N, C)).
    dz, the gradient at each layer's affine output, is left in dacts. Nothing is written
    to grads when the pass stopped (n_bad > 0 or bad_label >= 0). Training mode.
    """
    ex = extras or _Plain
    value, n_bad, at = _scores_loss(x, t, params, layout, acts, dacts, activation, loss, ex,
                                    True)
    if not n_bad and at < 0:
        _backward_pass(x, params, layout, acts, dacts, activation, None, grads, ex)
    return value, n_bad, at


def sgd_step(x, t, params, layout, acts, dacts, activation, loss, lr, extras=None):
    """One SGD step of the network on the batch x, t: (loss, n_bad, bad_label).

    ``params`` is updated in place by lr times the gradient of the mean loss (the
    numbers of ``gradient`` followed by ``params -= lr * grads``). Nothing changes when
    a label is out of range (bad_label >= 0), the first layer's pre-activations are not
    finite (n_bad > 0; the loss is NaN) or the loss is NaN or infinite.
    """
    ex = extras or _Plain
    value, n_bad, at = _scores_loss(x, t, params, layout, acts, dacts, activation, loss, ex,
                                    True)
    if n_bad or at >= 0 or not np.isfinite(value):
        return value, n_bad, at
    _backward_pass(x, params, layout, acts, dacts, activation, lr, None, ex)
    return value, 0, -1


def train_batches(x, t, order, starts, params, layout, activation, loss, lr, losses,
                  extras=None):
    """``sgd_step`` on the batches ``order[starts[i]:starts[i + 1]]`` in turn.

    Each batch's loss goes to ``losses[i]``. Returns -1, or the index of the first batch
    that was not applied (the step changed nothing); later ones are not run and their
    losses are NaN. Labels must be in range. ``extras`` may have BatchNorm, not Dropout.
    """
    width = int(layout[-1, 4] + layout[-1, 2])
    for i in range(starts.shape[0] - 1):
        idx = order[starts[i]:starts[i + 1]]
        acts = np.empty(idx.shape[0] * width, params.dtype)
        value, n_bad, at = sgd_step(x[idx], t[idx], params, layout, acts, np.empty_like(acts),
                                    activation, loss, lr, extras)
        losses[i] = value
        if n_bad or at >= 0 or not np.isfinite(value):
            losses[i + 1:] = np.nan
            return i
    return -1


class _Predicting:
    """``extras`` as they are, in prediction mode (running statistics)."""

    def __init__(self, ex):
        self.norm, self.stds, self.state, self.masks = ex.norm, ex.stds, ex.state, ex.masks
        self.keep, self.decay, self.train = ex.keep, ex.decay, False


def train_periods(x, t, x2, t2, order, starts, ends, params, layout, activation, loss, lr,
                  losses, records, rows, extras=None):
    """``train_batches`` period by period, evaluating after batch ``ends[k] - 1``.

    At each period's end: parameters (or running statistics) that are not finite stop
    it; else ``records[k]`` = (mean loss on x, correct rows of x, mean loss on x2,
    correct rows of x2; NaN and 0 without x2): ``evaluate`` in passes of ``rows`` rows,
    in prediction mode. Returns (stop, periods evaluated, stopped for non-finite
    parameters).
    """
    state = np.empty(0) if extras is None or extras.state is None else extras.state
    predicting = _Plain if extras is None else _Predicting(extras)
    width = int(layout[-1, 4] + layout[-1, 2])
    n_eval = max(x.shape[0], 0 if x2 is None else x2.shape[0])
    acts = np.empty(min(rows, n_eval) * width, params.dtype)
    done = 0
    for k, end in enumerate(ends):
        begin = 0 if k == 0 else int(ends[k - 1])
        stop = train_batches(x, t, order, starts[begin:end + 1], params, layout, activation,
                             loss, lr, losses[begin:end], extras)
        if stop >= 0:
            losses[end:] = np.nan
            return begin + stop, done, False
        if not (np.all(np.isfinite(params)) and np.all(np.isfinite(state))):
            losses[end:] = np.nan
            return int(end), done, True
        for j, (xs, ts) in enumerate(((x, t), (x2, t2))):
            records[k, 2 * j:2 * j + 2] = (np.nan, 0) if xs is None else evaluate(
                xs, ts, params, layout, acts, np.empty_like(acts), activation, loss,
                predicting, rows)[:2]
        done += 1
    last = int(ends[-1]) if len(ends) else 0
    stop = train_batches(x, t, order, starts[last:], params, layout, activation, loss, lr,
                         losses[last:], extras)
    return (last + stop if stop >= 0 else -1), done, False

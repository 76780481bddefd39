"""Output losses and their gradients, written once: softmax cross-entropy, squared error.

One pass per row computes the loss and the gradient: for softmax the stable
log-sum-exp and ``(softmax - onehot) / N``, for squared error ``(y - t) / N`` (the
book's mean, "mse") or ``2 * (y - t)`` (the plain sum of squares, "sse"; one row body
serves both, with its scale). Row losses are summed in float64, row after row.
``loss_`` is the one place that dispatches on the loss kind; every path calls it. The
row functions are inlined too (as calls they cost a small network's step measurably).

Adding a loss: a kind code and its row function here, a branch in ``loss_`` (and in
``correct_`` if it has an accuracy), ``kind_of`` for its name, and its NumPy twin in
``fastnn.reference``.

The Python functions at the bottom are the per-op API (``fastnn.reference``'s names).
"""

from __future__ import annotations

import math

import numpy as np

from ._config import inline

SOFTMAX_LABELS, SOFTMAX_ROWS, SQUARED_ERROR, SUM_SQUARED_ERROR = 0, 1, 2, 3


def kind_of(loss: str, t) -> int:
    """The kind code for a loss name ("softmax", "mse", "sse") and its targets (class
    indices are 1-D)."""
    if loss == "mse":
        return SQUARED_ERROR
    if loss == "sse":
        return SUM_SQUARED_ERROR
    if loss != "softmax":
        raise ValueError(f"loss: expected one of 'softmax', 'mse', 'sse', got {loss!r}")
    return SOFTMAX_LABELS if t.ndim == 1 else SOFTMAX_ROWS


@inline
def softmax_row_(d, s, n):
    """d[n] = exp(s[n] - max(s[n])) for a row of s (N, C); returns (max, sum) of it."""
    C = s.shape[1]
    m = s[n, 0]
    for c in range(1, C):
        m = max(m, s[n, c])
    total = 0.0  # float64 for either dtype
    for c in range(C):
        e = math.exp(s[n, c] - m)
        d[n, c] = e
        total += e
    return m, total


@inline
def xent_label_row(d, s, n, y, inv_n):
    """Row n: d[n] = (softmax(s[n]) - onehot(y)) * inv_n; returns the row's loss."""
    m, total = softmax_row_(d, s, n)
    scale = inv_n / total
    for c in range(s.shape[1]):
        d[n, c] = d[n, c] * scale
    d[n, y] -= inv_n
    return math.log(total) - (s[n, y] - m)  # logsumexp - z_y, both shifted by m


@inline
def xent_target_row(d, s, t, n, inv_n):
    """Row n with one-hot (or probability) targets t (N, C); returns the row's loss."""
    m, total = softmax_row_(d, s, n)
    log_total = math.log(total)
    row = 0.0
    C = s.shape[1]
    for c in range(C):
        tc = t[n, c]
        if tc != 0:  # 0 * (a finite log-probability) adds nothing
            row += tc * (log_total - (s[n, c] - m))
    scale = inv_n / total
    for c in range(C):
        d[n, c] = d[n, c] * scale - t[n, c] * inv_n
    return row


@inline
def squared_error_row(d, y, t, n, scale):
    """Row n: d[n] = (y[n] - t[n]) * scale; returns sum_c (y - t)**2 (the mean squared
    error's 1 / N, the sum of squares' 2 as ``scale``; loss_ scales the sum)."""
    row = 0.0
    for c in range(y.shape[1]):
        diff = y[n, c] - t[n, c]
        wide = float(diff)  # squared in float64 (as the reference): float32's overflows
        row += wide * wide
        d[n, c] = diff * scale
    return row


@inline
def loss_(dscores, scores, labels, targets, kind):
    """The loss of scores (N, C); writes its gradient to dscores (N, C).

    The mean over the rows, except SUM_SQUARED_ERROR: sum_n sum_c (y - t)**2, gradient
    2 * (y - t). ``labels`` (N,) class indices for SOFTMAX_LABELS, ``targets`` (N, C)
    otherwise (the unused one may be any array of its type).
    """
    N = scores.shape[0]
    inv_n = 1.0 / N
    total = 0.0
    if kind >= SQUARED_ERROR:
        scale = inv_n if kind == SQUARED_ERROR else 2.0
        for n in range(N):
            total += squared_error_row(dscores, scores, targets, n, scale)
        return 0.5 * total * inv_n if kind == SQUARED_ERROR else total
    for n in range(N):
        if kind == SOFTMAX_LABELS:
            total += xent_label_row(dscores, scores, n, labels[n], inv_n)
        else:
            total += xent_target_row(dscores, scores, targets, n, inv_n)
    return total * inv_n


@inline
def correct_(scores, labels, targets, kind):
    """How many rows' highest score is their class (the label, or the target's argmax);
    0 for the squared errors."""
    if kind >= SQUARED_ERROR:
        return 0
    N, C = scores.shape
    count = 0
    for n in range(N):
        best = 0
        for c in range(1, C):
            if scores[n, c] > scores[n, best]:
                best = c
        if kind == SOFTMAX_LABELS:
            y = labels[n]
        else:
            y = 0
            for c in range(1, C):
                if targets[n, c] > targets[n, y]:
                    y = c
        count += 1 if best == y else 0
    return count


@inline
def softmax_(probs, scores):
    """probs = softmax of each row of scores; both (N, C)."""
    N, C = scores.shape
    for n in range(N):
        _, total = softmax_row_(probs, scores, n)
        inv = 1.0 / total
        for c in range(C):
            probs[n, c] = probs[n, c] * inv


_NO_LABELS = np.empty(0, np.intp)


def _loss(kind, scores, labels, targets, dscores):
    buf = dscores if dscores is not None and dscores.flags.c_contiguous \
        and dscores.dtype == scores.dtype else np.empty_like(scores)
    loss = loss_(buf, scores, labels, targets, kind)
    if dscores is not None and dscores is not buf:
        dscores[...] = buf
        buf = dscores
    return float(loss), buf


def softmax(scores):
    """Row-wise softmax of scores (N, C)."""
    scores = np.ascontiguousarray(scores)
    probs = np.empty_like(scores)
    softmax_(probs, scores)
    return probs


def softmax_cross_entropy(scores, labels, dscores=None):
    """Mean softmax cross-entropy and its gradient; labels (N,) ints or (N, C) rows."""
    scores = np.ascontiguousarray(scores)
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float64)
    labels = np.asarray(labels)
    if labels.ndim == 1:
        return _loss(SOFTMAX_LABELS, scores, np.ascontiguousarray(labels, np.intp),
                     scores[:0], dscores)
    return _loss(SOFTMAX_ROWS, scores, _NO_LABELS,
                 np.ascontiguousarray(labels, dtype=scores.dtype), dscores)


def _squared(kind, y, t, dy):
    y = np.ascontiguousarray(y)
    if y.dtype not in (np.float32, np.float64):
        y = y.astype(np.float64)
    return _loss(kind, y, _NO_LABELS, np.ascontiguousarray(t, dtype=y.dtype), dy)


def squared_error(y, t, dy=None):
    """Mean squared error mean_n(0.5 * sum_c (y - t)**2) and its gradient (y - t) / N."""
    return _squared(SQUARED_ERROR, y, t, dy)


def sum_squared_error(y, t, dy=None):
    """The sum of squared errors sum_n sum_c (y - t)**2 and its gradient 2 * (y - t)."""
    return _squared(SUM_SQUARED_ERROR, y, t, dy)

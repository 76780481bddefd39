"""Fused output losses: softmax + cross-entropy, and identity + squared error.

One pass per row computes the stable log-sum-exp, the row's loss and the gradient
``(softmax - onehot) / N``; sums accumulate in float64 for either dtype. Same names and
signatures as ``fastnn.reference``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ._config import kernel


@kernel
def softmax_xent_labels(dscores, scores, labels):
    """Mean cross-entropy for class indices; writes (softmax - onehot) / N to dscores.

    scores, dscores are (N, C); labels is (N,) with values in [0, C).
    """
    N, C = scores.shape
    inv_n = 1.0 / N
    total = 0.0
    for n in prange(N):
        m = scores[n, 0]
        for c in range(1, C):
            m = max(m, scores[n, c])
        s = 0.0
        for c in range(C):
            e = math.exp(scores[n, c] - m)
            dscores[n, c] = e
            s += e
        y = labels[n]
        total += math.log(s) - (scores[n, y] - m)  # logsumexp - z_y, shifted by m
        scale = inv_n / s
        for c in range(C):
            dscores[n, c] = dscores[n, c] * scale
        dscores[n, y] -= inv_n
    return total * inv_n


@kernel
def softmax_xent_onehot(dscores, scores, targets):
    """Mean cross-entropy for one-hot (or probability) rows targets (N, C)."""
    N, C = scores.shape
    inv_n = 1.0 / N
    total = 0.0
    for n in prange(N):
        m = scores[n, 0]
        for c in range(1, C):
            m = max(m, scores[n, c])
        s = 0.0
        for c in range(C):
            e = math.exp(scores[n, c] - m)
            dscores[n, c] = e
            s += e
        log_s = math.log(s)
        row = 0.0
        for c in range(C):
            t = targets[n, c]
            if t != 0:  # 0 * (a finite log-probability) adds nothing
                row += t * (log_s - (scores[n, c] - m))
        total += row
        scale = inv_n / s
        for c in range(C):
            dscores[n, c] = dscores[n, c] * scale - targets[n, c] * inv_n
    return total * inv_n


@kernel
def softmax_(probs, scores):
    """probs = softmax of each row of scores; both (N, C)."""
    N, C = scores.shape
    for n in prange(N):
        m = scores[n, 0]
        for c in range(1, C):
            m = max(m, scores[n, c])
        s = 0.0
        for c in range(C):
            e = math.exp(scores[n, c] - m)
            probs[n, c] = e
            s += e
        inv = 1.0 / s
        for c in range(C):
            probs[n, c] = probs[n, c] * inv


@kernel
def squared_error_(dy, y, t):
    """mean_n(0.5 * sum_c (y - t)**2); writes (y - t) / N to dy. All arrays (N, C)."""
    N, C = y.shape
    inv_n = 1.0 / N
    total = 0.0
    for n in prange(N):
        row = 0.0
        for c in range(C):
            d = y[n, c] - t[n, c]
            row += d * d
            dy[n, c] = d * inv_n
        total += row
    return 0.5 * total * inv_n


def softmax(scores):
    """Row-wise softmax of scores (N, C)."""
    scores = np.ascontiguousarray(scores)
    probs = np.empty_like(scores)
    softmax_.pick(scores.size)(probs, scores)
    return probs


def softmax_cross_entropy(scores, labels, dscores=None):
    """Mean softmax cross-entropy and its gradient; labels (N,) ints or (N, C) rows."""
    scores, labels = np.ascontiguousarray(scores), np.ascontiguousarray(labels)
    if dscores is None:
        dscores = np.empty_like(scores)
    if labels.ndim == 1:
        loss = softmax_xent_labels.pick(scores.size)(dscores, scores, labels)
    else:
        loss = softmax_xent_onehot.pick(scores.size)(dscores, scores, labels)
    return float(loss), dscores


def squared_error(y, t, dy=None):
    """Mean squared error mean_n(0.5 * sum_c (y - t)**2) and its gradient (y - t) / N."""
    y, t = np.ascontiguousarray(y), np.ascontiguousarray(t)
    if dy is None:
        dy = np.empty_like(y)
    return float(squared_error_.pick(y.size)(dy, y, t)), dy

"""Softmax cross-entropy and the squared errors, each returning (loss, gradient) (NumPy
twins of ``kernels/losses.py``)."""

from __future__ import annotations

import numpy as np

from ._into import _into

# --- losses -----------------------------------------------------------------------


def softmax(scores):
    """Row-wise softmax of scores (N, C), shifted by the row maximum."""
    shifted = scores - np.max(scores, axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=1, keepdims=True)


def softmax_cross_entropy(scores, labels, dscores=None):
    """Mean softmax cross-entropy and its gradient with respect to ``scores``.

    scores is (N, C); labels is either (N,) integer class indices or (N, C) rows of
    one-hot (or probability) targets. Returns ``(loss, dscores)`` with
    ``loss = mean_n(logsumexp(scores[n]) - <labels[n], scores[n]>)`` and
    ``dscores = (softmax(scores) - onehot) / N``. The log-sum-exp is shifted by the row
    maximum, so logits of any magnitude give finite results.
    """
    N = scores.shape[0]
    shifted = scores - np.max(scores, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    if labels.ndim == 1:
        onehot = np.zeros_like(scores)
        onehot[np.arange(N), labels] = 1
    else:
        onehot = labels
    loss = -np.sum(onehot * log_probs, dtype=np.float64) / N
    grad = (np.exp(log_probs) - onehot) / N
    return float(loss), _into(dscores, grad.astype(scores.dtype, copy=False))


def squared_error(y, t, dy=None):
    """Mean squared error ``mean_n(0.5 * sum_c (y - t)**2)`` and its gradient ``(y - t) / N``.

    y and t are (N, C). The 0.5 and the mean over the batch are the book's convention;
    a plain sum of squares (as in PyTorch's NumPy warm-up) is ``2 * N`` times this loss.
    """
    N = y.shape[0]
    diff = y - t
    loss = 0.5 * np.sum(diff.astype(np.float64) ** 2) / N
    return float(loss), _into(dy, (diff / N).astype(y.dtype, copy=False))


def sum_squared_error(y, t, dy=None):
    """The sum of squared errors ``sum_n sum_c (y - t)**2`` and its gradient ``2 * (y - t)``.

    y and t are (N, C). Not a mean: the loss of PyTorch's NumPy warm-up (seed 004),
    ``np.square(y - t).sum()``, whose gradient it writes as ``2.0 * (y - t)``.
    """
    diff = y - t
    loss = np.sum(diff.astype(np.float64) ** 2)
    return float(loss), _into(dy, (2.0 * diff).astype(y.dtype, copy=False))

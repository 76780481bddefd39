"""The book's ``common/functions.py``: activation, output and loss functions on arrays.

Names and conventions are the book's (``cross_entropy_error`` takes probabilities and
adds 1e-7 inside its log, as the book does). Where fastnn computes the same thing the
function calls fastnn's NumPy reference; the networks themselves do not use these.
"""

import numpy as np

from .. import reference as _ref


def identity_function(x):
    return x


def step_function(x):
    """1 where x > 0, else 0 (integers)."""
    return np.array(x > 0, dtype=int)


def sigmoid(x):
    return _ref.sigmoid_forward(np.asarray(x))


def sigmoid_grad(x):
    """The sigmoid's derivative at x: ``(1 - s) * s`` with ``s = sigmoid(x)``."""
    s = sigmoid(x)
    return _ref.sigmoid_backward(np.ones_like(s), s)


def relu(x):
    return np.maximum(0, x)


def relu_grad(x):
    """1 where x >= 0, else 0 (the book's convention at 0), in x's dtype."""
    grad = np.zeros_like(x)
    grad[x >= 0] = 1
    return grad


def softmax(x):
    """Softmax over the last axis (a vector, or each row of a batch)."""
    x = np.asarray(x)
    return _ref.softmax(x.reshape(-1, x.shape[-1])).reshape(x.shape)


def sum_squared_error(y, t):
    """``0.5 * sum((y - t)**2)`` over every element (no mean over the batch)."""
    return 0.5 * np.sum((y - t) ** 2)


def cross_entropy_error(y, t):
    """Mean over the batch of ``-log(y[n, label_n] + 1e-7)``; y holds probabilities, t
    labels or one-hot rows. A single sample may be given as vectors."""
    if y.ndim == 1:
        t = t.reshape(1, t.size)
        y = y.reshape(1, y.size)
    if t.size == y.size:  # one-hot rows -> labels
        t = t.argmax(axis=1)
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + 1e-7)) / batch_size


def softmax_loss(X, t):
    return cross_entropy_error(softmax(X), t)

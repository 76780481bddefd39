"""The book's ``common/gradient.py``: central differences of a function of an array."""

import numpy as np


def numerical_gradient(f, x, h: float = 1e-4):
    """Central differences of ``f`` with respect to each element of the array ``x``.

    ``x`` is changed in place, one element at a time, to ``x[i] + h`` and ``x[i] - h``
    (then restored), and ``f(x)`` is called each time: ``(f(x+) - f(x-)) / (2h)``. The
    book's ``common/gradient.py`` function (its ``h = 1e-4``), and the one loop behind
    ``fastnn.Sequential.numerical_gradient``. Returns an array of x's shape and dtype.
    """
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        idx = it.multi_index
        saved = x[idx]
        try:
            x[idx] = float(saved) + h
            f_plus = f(x)
            x[idx] = saved - h
            f_minus = f(x)
        finally:
            x[idx] = saved
        grad[idx] = (f_plus - f_minus) / (2 * h)
        it.iternext()
    return grad


def _numerical_gradient_1d(f, x):
    return numerical_gradient(f, x)


def numerical_gradient_2d(f, X):
    """Row by row: ``f`` is called with each row of ``X`` (a vector: with ``X``)."""
    if X.ndim == 1:
        return numerical_gradient(f, X)
    grad = np.zeros_like(X)
    for i, row in enumerate(X):
        grad[i] = numerical_gradient(f, row)
    return grad


__all__ = ["np", "numerical_gradient", "numerical_gradient_2d"]

"""Data sets: the bundled digits (always offline), MNIST-style IDX loaders, toy problems.

* ``load_digits``: the UCI 8x8 handwritten digits that scikit-learn ships (1,797 images).
* ``load_mnist`` / ``load_fashion_mnist``: the four IDX files, from ``data_dir``, the
  cache (``$FASTNN_DATA`` or ``~/.cache/fastnn``) or the public mirrors (SHA-256 checked).
* ``make_sine``: the 63-point sine curve of the 1-3-1 sigmoid network article.
* ``make_regression``: random regression data like PyTorch's NumPy warm-up.

Every loader returns ``(x_train, t_train), (x_test, t_test)`` as the book's
``load_mnist`` does; ``make_*`` return ``(x, t)``.
"""

from __future__ import annotations

import numpy as np

from . import _validation as V


def _one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((labels.size, n_classes), dtype=np.float64)
    out[np.arange(labels.size), labels] = 1
    return out


def _split(n: int, test_fraction: float, seed: int):
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(n * test_fraction))
    return order[n_test:], order[:n_test]


def load_digits(one_hot_label: bool = False, normalize: bool = True,
                test_fraction: float = 0.2, seed: int = 0):
    """The 8x8 handwritten digits bundled with scikit-learn, split into train and test.

    Parameters
    ----------
    one_hot_label : bool
        Labels as one-hot rows (N, 10) instead of integers (N,).
    normalize : bool
        Pixels scaled from 0..16 to [0, 1] (float64); otherwise the raw float values.
    test_fraction : float
        Share of the 1,797 images held out for testing.
    seed : int
        Seed of the shuffle that makes the split (the same seed, the same split).

    Returns
    -------
    (x_train, t_train), (x_test, t_test)
        x has 64 features per image.
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    seed = int(seed)
    data = _sk_load_digits()
    x = data.data.astype(np.float64)
    if normalize:
        x /= 16.0
    t = data.target.astype(np.int64)
    if one_hot_label:
        t = _one_hot(t, 10)
    train, test = _split(x.shape[0], float(test_fraction), seed)
    return (x[train], t[train]), (x[test], t[test])


def make_sine():
    """The sine-fitting data of the 1-3-1 network article: (x, t), each of shape (63, 1).

    x is ``arange(0, 2*pi, 0.1)`` mapped to [-1, 1) by ``(x - pi) / pi``; t is the sine
    of the unscaled points.
    """
    angles = np.arange(0, 2 * np.pi, 0.1)
    return ((angles - np.pi) / np.pi).reshape(-1, 1), np.sin(angles).reshape(-1, 1)


def make_regression(n: int = 64, d_in: int = 1000, d_out: int = 10, seed: int | None = 0):
    """Random regression data as in PyTorch's NumPy warm-up: x (n, d_in), t (n, d_out).

    Both are standard normal; the warm-up's network is 1000 -> 100 -> 10 with ReLU.
    """
    n = V.check_positive_int(n, "n")
    d_in = V.check_positive_int(d_in, "d_in")
    d_out = V.check_positive_int(d_out, "d_out")
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d_in)), rng.standard_normal((n, d_out))

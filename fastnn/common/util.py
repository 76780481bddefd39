"""The book's ``common/util.py``: ``smooth_curve``, ``shuffle_dataset``,
``conv_output_size``, and chapter 7's ``im2col`` / ``col2im`` (``fastnn.im2col`` /
``fastnn.col2im``: validated, then the NumPy reference's op; ``backend="numba"`` for the
kernel's).
"""

import numpy as np

from ..conv import col2im, im2col  # noqa: F401


def smooth_curve(x):
    """A loss curve smoothed for plotting, as the book's figures are: a Kaiser window
    (length 11, beta 2) slid over the curve mirrored at both ends; same length as x."""
    window_len = 11
    x = np.asarray(x, dtype=np.float64)
    padded = np.r_[x[window_len - 1:0:-1], x, x[-1:-window_len:-1]]
    w = np.kaiser(window_len, 2)
    y = np.convolve(w / w.sum(), padded, mode="valid")
    return y[5:len(y) - 5]


def shuffle_dataset(x, t):
    """x and t in one random order, drawn with ``np.random.permutation`` (NumPy's global
    state, as the book's is); x may be (N, D) or (N, C, H, W)."""
    permutation = np.random.permutation(x.shape[0])
    x = x[permutation, :] if x.ndim == 2 else x[permutation, :, :, :]
    return x, t[permutation]


def conv_output_size(input_size, filter_size, stride=1, pad=0):
    return (input_size + 2 * pad - filter_size) / stride + 1

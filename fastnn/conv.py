"""Convolution's geometry checks, and the book's ``im2col`` / ``col2im`` validated.

Windows of ``filter_h x filter_w`` slide over an image (N, C, H, W) zero-padded by
``pad`` on each side, ``stride`` apart: ``OH = 1 + (H + 2 * pad - filter_h) // stride``
(likewise OW), the book's output size. The checks here say, naming the argument, when a
window does not fit, before any backend op runs; the ops themselves
(``fastnn.reference`` / ``fastnn.kernels``: ``im2col``, ``col2im``, ``conv_forward`` ...)
assume valid input. ``Convolution``, ``Pooling`` (``fastnn.layers``) and the networks
(``fastnn.convnet``) check through these functions.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from . import _validation as V
from ._backends import get_backend


def out_size(size: int, window: int, stride: int, pad: int) -> int:
    """Windows along one axis: ``1 + (size + 2 * pad - window) // stride``."""
    return (size + 2 * pad - window) // stride + 1


def float_dtype(a: np.ndarray, dtype=None) -> np.dtype:
    """The floating dtype to compute ``a`` in: ``dtype`` when given, else a's own
    float32/float64, else float64 (integers, bool, float16)."""
    if dtype is not None:
        return np.dtype(dtype)
    return a.dtype if a.dtype in (np.float32, np.float64) else np.dtype(np.float64)


def check_images(value, name: str, channels: int | None = None, dtype=None) -> np.ndarray:
    """A batch of images (N, C, H, W) as a C-contiguous float array (``dtype``, or its
    own float32/float64; integers become float64); the caller's array is not changed.
    ``channels``: the C that is expected."""
    a = V.as_real_array(value, name)
    if a.ndim != 4:
        raise V.BadValue(name, f"expected a 4-D array (batch, channels, height, width), got "
                         f"a {a.ndim}-D array of shape {a.shape}"
                         + ("; reshape it, e.g. x.reshape(-1, 1, 28, 28)" if a.ndim == 2
                            else ""))
    if 0 in a.shape:
        raise V.BadValue(name, f"expected a non-empty batch of images, got shape {a.shape}")
    if channels is not None and a.shape[1] != channels:
        raise V.BadValue(name, f"has {a.shape[1]} channel(s) (shape {a.shape}), but the "
                         f"layer expects {channels}")
    return np.ascontiguousarray(a, dtype=float_dtype(a, dtype))


def check_window(shape, filter_h: int, filter_w: int, stride: int, pad: int, name: str,
                 what: str = "filter") -> tuple[int, int]:
    """(OH, OW) of ``filter_h x filter_w`` windows over images of ``shape`` (..., H, W);
    a ValueError naming ``name`` when a window is larger than the padded image."""
    H, W = shape[-2], shape[-1]
    if filter_h > H + 2 * pad or filter_w > W + 2 * pad:
        raise V.BadValue(name, f"the {what} ({filter_h}x{filter_w}) is larger than the padded "
                         f"input ({H}x{W} with pad {pad}: {H + 2 * pad}x{W + 2 * pad}); "
                         "the output would be empty")
    return out_size(H, filter_h, stride, pad), out_size(W, filter_w, stride, pad)


def check_weights(W, b) -> np.ndarray:
    """A convolution's W (FN, C, FH, FW), a float32/float64 array, and b: (FN,) floats,
    or one number for every filter (the book's ``apply_filter.py`` passes ``b = 0``).
    Returns b as an (FN,) array of W's dtype."""
    if isinstance(b, (numbers.Real, np.floating, np.integer)) and not isinstance(
            b, (bool, np.bool_)) and isinstance(W, np.ndarray) and W.ndim == 4:
        b = np.full(W.shape[0], b, W.dtype if W.dtype.kind == "f" else np.float64)
    for name, value, ndim in (("W", W, 4), ("b", b, 1)):
        if not isinstance(value, np.ndarray) or value.dtype not in (np.float32, np.float64):
            got = type(value).__name__ + (f" of dtype {value.dtype}"
                                          if isinstance(value, np.ndarray) else "")
            raise V.BadType(name, f"expected a float32 or float64 ndarray, got {got}")
        if value.ndim != ndim or 0 in value.shape:
            want = "(filters, channels, filter_h, filter_w)" if ndim == 4 else "(filters,)"
            raise V.BadValue(name, f"expected a non-empty array of shape {want}, got "
                             f"{value.shape}")
    if b.shape[0] != W.shape[0]:
        raise V.BadValue("b", f"expected one bias per filter ({W.shape[0]}), got shape {b.shape}")
    return b.astype(W.dtype, copy=False)  # (the output's dtype is W's, on either backend)


def check_sizes(filter_h, filter_w, stride, pad, names=("filter_h", "filter_w")):
    """Window sizes and stride positive integers, pad a non-negative one."""
    return (V.check_positive_int(filter_h, names[0]), V.check_positive_int(filter_w, names[1]),
            V.check_positive_int(stride, "stride"), V.check_non_negative_int(pad, "pad"))


def im2col(input_data, filter_h, filter_w, stride=1, pad=0, *, backend="numpy"):
    """The book's ``im2col``: every window of ``input_data`` (N, C, H, W) as a row.

    Returns ``col`` of shape (N * OH * OW, C * filter_h * filter_w): rows ordered
    (n, out_y, out_x), columns (c, fh, fw); padding is zeros. float32 input stays
    float32 (the book's is always float64). ``backend`` "numba" runs the kernel.
    """
    filter_h, filter_w, stride, pad = check_sizes(filter_h, filter_w, stride, pad)
    be = get_backend(backend)
    x = check_images(input_data, "input_data")
    check_window(x.shape, filter_h, filter_w, stride, pad, "input_data")
    return be.im2col(x, filter_h, filter_w, stride, pad)


def col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0, *, backend="numpy"):
    """The book's ``col2im``: ``im2col``'s adjoint; windows that overlap add up.

    ``col`` is (N * OH * OW, C * filter_h * filter_w) for images of ``input_shape``
    (N, C, H, W); returns (N, C, H, W) in col's float dtype.
    """
    filter_h, filter_w, stride, pad = check_sizes(filter_h, filter_w, stride, pad)
    be = get_backend(backend)
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 4:
        raise V.BadValue("input_shape", f"expected (N, C, H, W), got {input_shape!r}")
    shape = tuple(V.check_positive_int(n, f"input_shape[{i}]")
                  for i, n in enumerate(input_shape))
    OH, OW = check_window(shape, filter_h, filter_w, stride, pad, "input_shape")
    a = V.as_real_array(col, "col")
    want = (shape[0] * OH * OW, shape[1] * filter_h * filter_w)
    if a.shape != want:
        raise V.BadValue("col", f"expected shape {want} for input_shape {shape} and "
                         f"{filter_h}x{filter_w} windows (stride {stride}, pad {pad}), got "
                         f"{a.shape}")
    a = np.ascontiguousarray(a, dtype=float_dtype(a))
    return be.col2im(a, shape, filter_h, filter_w, stride, pad)


def conv_work(C: int, FN: int, FH: int, FW: int, OH: int, OW: int) -> int:
    """Multiply-adds per image of a convolution's forward GEMM (the thread policy's size)."""
    return math.prod((OH, OW, FN, C, FH, FW))

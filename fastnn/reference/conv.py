"""Convolution and max pooling, forward and backward: the book's chapter-7 math (NumPy
twins of ``kernels/conv.py``).

Plain and obvious on purpose: ``im2col`` lays every filter window out as a row, the
convolution is one matrix product with the filters, ``col2im`` adds the window gradients
back onto the image, and max pooling takes each window's first maximum (``np.argmax``),
which alone gets the gradient in the backward pass.

Layouts (the book's ``common/util.py`` and ``common/layers.py``):

* ``x`` is (N, C, H, W); ``W`` is (FN, C, FH, FW), ``b`` is (FN,); the output is
  (N, FN, OH, OW) with ``OH = 1 + (H + 2 * pad - FH) // stride`` (likewise OW).
* ``col`` is (N * OH * OW, C * FH * FW): rows ordered (n, oy, ox), columns (c, fh, fw).
* Pooling works on each channel alone: out is (N, C, OH, OW).

Outputs keep the input's dtype; inputs are never modified; inputs are assumed valid
(the layer classes validate). The caches are opaque: what the backward pass of the same
module needs (the reference's and the kernels' caches differ).
"""

from __future__ import annotations

import numpy as np

from .affine_act import relu_backward, relu_forward


def _out_size(size, filter_size, stride, pad):
    return 1 + (size + 2 * pad - filter_size) // stride


# --- im2col / col2im --------------------------------------------------------------


def im2col(input_data, filter_h, filter_w, stride=1, pad=0):
    """Every (filter_h, filter_w) window of the zero-padded input as one row.

    input_data is (N, C, H, W); returns col (N * OH * OW, C * filter_h * filter_w), rows
    ordered (n, oy, ox), columns (c, fh, fw).
    """
    N, C, H, W = input_data.shape
    OH = _out_size(H, filter_h, stride, pad)
    OW = _out_size(W, filter_w, stride, pad)
    img = np.pad(input_data, [(0, 0), (0, 0), (pad, pad), (pad, pad)], "constant")
    col = np.zeros((N, C, filter_h, filter_w, OH, OW), dtype=input_data.dtype)
    for fy in range(filter_h):
        y_max = fy + stride * OH
        for fx in range(filter_w):
            x_max = fx + stride * OW
            col[:, :, fy, fx, :, :] = img[:, :, fy:y_max:stride, fx:x_max:stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(N * OH * OW, -1)


def col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0):
    """The adjoint of ``im2col``: each row's entries added back onto its window.

    col is (N * OH * OW, C * filter_h * filter_w); returns x of ``input_shape``
    (N, C, H, W), where the windows overlap their values add up.
    """
    N, C, H, W = input_shape
    OH = _out_size(H, filter_h, stride, pad)
    OW = _out_size(W, filter_w, stride, pad)
    col = col.reshape(N, OH, OW, C, filter_h, filter_w).transpose(0, 3, 4, 5, 1, 2)
    # room for windows that reach past the padded input's end (the book's stride - 1)
    img = np.zeros((N, C, H + 2 * pad + stride - 1, W + 2 * pad + stride - 1),
                   dtype=col.dtype)
    for fy in range(filter_h):
        y_max = fy + stride * OH
        for fx in range(filter_w):
            x_max = fx + stride * OW
            img[:, :, fy:y_max:stride, fx:x_max:stride] += col[:, :, fy, fx, :, :]
    return img[:, :, pad:H + pad, pad:W + pad].copy()


# --- convolution ------------------------------------------------------------------


def conv_forward(x, W, b, stride=1, pad=0):
    """out = the convolution of x with the filters W, plus b: (out, cache).

    x is (N, C, H, W), W is (FN, C, FH, FW), b is (FN,); out is (N, FN, OH, OW). The
    product is col (N*OH*OW, C*FH*FW) @ W's rows (C*FH*FW, FN); ``cache`` keeps what
    ``conv_backward`` needs (x's shape and col).
    """
    FN, C, FH, FW = W.shape
    N, _, H, Wd = x.shape
    OH = _out_size(H, FH, stride, pad)
    OW = _out_size(Wd, FW, stride, pad)
    col = im2col(x, FH, FW, stride, pad)
    col_W = W.reshape(FN, -1).T
    out = np.dot(col, col_W) + b
    out = out.reshape(N, OH, OW, FN).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out), (x.shape, col)


def conv_backward(dout, cache, W, stride=1, pad=0):
    """Gradients of ``conv_forward``: (dx, dW, db), dW shaped like W, db like b.

    dout is (N, FN, OH, OW); ``cache`` is what ``conv_forward`` returned.
    """
    x_shape, col = cache
    FN, C, FH, FW = W.shape
    dout = dout.transpose(0, 2, 3, 1).reshape(-1, FN)  # rows (n, oy, ox)
    db = np.sum(dout, axis=0)
    dW = np.dot(col.T, dout).T.reshape(FN, C, FH, FW)
    dcol = np.dot(dout, W.reshape(FN, -1))
    dx = col2im(dcol, x_shape, FH, FW, stride, pad)
    return dx, np.ascontiguousarray(dW), db


# --- max pooling ------------------------------------------------------------------


def pool_forward(x, pool_h, pool_w, stride=2, pad=0):
    """Max pooling: each (pool_h, pool_w) window's maximum, channel by channel.

    x is (N, C, H, W); out is (N, C, OH, OW). Padding is with zeros, as the book's
    ``im2col`` pads. ``cache`` keeps x's shape and each window's first maximum's index
    (``np.argmax``).
    """
    N, C, H, W = x.shape
    OH = _out_size(H, pool_h, stride, pad)
    OW = _out_size(W, pool_w, stride, pad)
    col = im2col(x, pool_h, pool_w, stride, pad).reshape(-1, pool_h * pool_w)
    arg_max = np.argmax(col, axis=1)
    out = np.max(col, axis=1)
    out = out.reshape(N, OH, OW, C).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out), (x.shape, arg_max)


def pool_backward(dout, cache, pool_h, pool_w, stride=2, pad=0):
    """Gradient of ``pool_forward``: each window's first maximum gets the window's dout,
    the rest of the window nothing (overlapping windows add). Returns dx like x."""
    x_shape, arg_max = cache
    pool_size = pool_h * pool_w
    dout = dout.transpose(0, 2, 3, 1).ravel()  # (n, oy, ox, c): the order of arg_max
    dmax = np.zeros((dout.size, pool_size), dtype=dout.dtype)
    dmax[np.arange(arg_max.size), arg_max] = dout
    dcol = dmax.reshape(-1, x_shape[1] * pool_size)
    return col2im(dcol, x_shape, pool_h, pool_w, stride, pad)


# --- a Convolution, a Relu and a Pooling in a row -----------------------------------


def conv_relu_forward(x, W, b, stride=1, pad=0, pool=None):
    """``pool_forward(relu_forward(conv_forward(x, W, b)))``, ``pool`` (pool_h, pool_w,
    stride, pad), or None: no pooling. (out, cache): the last op's output, and each op's
    cache (the relu's output, the pooling's cache or None)."""
    out, conv_cache = conv_forward(x, W, b, stride, pad)
    y = relu_forward(out)
    if pool is None:
        return y, (conv_cache, y, None)
    pout, pool_cache = pool_forward(y, *pool)
    return pout, (conv_cache, y, pool_cache)


def conv_relu_backward(dout, cache, W, stride=1, pad=0, pool=None, need_dx=True):
    """Gradients of ``conv_relu_forward``: each op's backward in turn, (dx, dW, db); dx
    None where not ``need_dx``."""
    conv_cache, y, pool_cache = cache
    dy = dout if pool is None else pool_backward(dout, pool_cache, *pool)
    dx, dW, db = conv_backward(relu_backward(dy, y), conv_cache, W, stride, pad)
    return (dx if need_dx else None), dW, db

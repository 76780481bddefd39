"""Convolution and max pooling, forward and backward, on fixed blocks of images.

The book's chapter-7 math (``fastnn.reference.conv`` is its NumPy twin, with the same
names and signatures): a convolution is a matrix product of every filter window (a row
of ``im2col``'s layout) with the filters, its gradient with respect to the input a
product scattered back onto the image (``col2im``); max pooling takes the first maximum
of each window, which alone gets the gradient.

How it runs: a batch is cut into fixed blocks of images (``_blocks``: the cut depends
on the shapes only) handed out to numba's threads dynamically; a block runs its
images one after another, each image's windows gathered into the block's own buffer
(``im2col_image_``) and multiplied on one BLAS thread (``_blas.gemm``) while they are in
cache; the full ``col`` matrix of the batch is never built. Per image:

* forward: out[n] (FN, OH*OW) = W (FN, K) @ col_n.T + b, straight into the (N, FN, OH,
  OW) layout (no transpose pass), with K = C*FH*FW and col_n (OH*OW, K);
* backward: db and dW summed over the block's images (dW by GEMMs with beta = 1), the
  blocks' sums then added in block order; dcol_n (OH*OW, K) = dout[n].T @ W, scattered
  onto dx[n] (``col2im_image_``). The windows are gathered again from x rather than kept
  from the forward pass (the cache is x itself; a DeepConvNet layer's ``col`` would be
  90 MB in float64).
* pooling: each window's first maximum (the book's ``np.argmax`` rule, NaN counting as
  the maximum as there) and its position, -1 for a zero of the padding; the backward
  pass adds each window's gradient at that position.

Every image's arithmetic is the same whichever thread runs its block, and the only sums
across blocks run in block order, so results do not depend on the thread count or the
load. Each piece of math is written once: ``im2col_image_`` and ``col2im_image_`` serve
both the public ``im2col``/``col2im`` and the convolution.
"""

from __future__ import annotations

import numba
import numpy as np

from ._blas import gemm
from ._blocks import block_of, grain, n_blocks, runner, sum_blocks_
from ._config import compiled, inline
from ._threads import for_work, policy, usable_cores
from ._views import view1d


def _out_size(size, filter_size, stride, pad):
    return 1 + (size + 2 * pad - filter_size) // stride


# --- one image: the window gather and its adjoint ----------------------------------------
# The windows are gathered transposed, colT (C*FH*FW, OH*OW): row (c, fh, fw) holds that
# filter tap's input for every output position, so the inner loops run along an image
# row (contiguous for stride 1), not over a window's few columns. colT is col_n.T, col_n
# being the image's block of rows of the book's ``col``.


@inline
def _inside(n_out, offset, stride, size):
    """(lo, hi): the outputs o in [lo, hi) whose input o * stride + offset is in [0, size)."""
    lo = 0 if offset >= 0 else (stride - 1 - offset) // stride
    hi = 0 if size - 1 - offset < 0 else (size - 1 - offset) // stride + 1
    lo = min(lo, n_out)
    return lo, max(lo, min(hi, n_out))


@inline
def _copy_(dst, src, n, stride):
    """dst[j] = src[j * stride] for j < n (views: indices from 0, so that LLVM sees the
    addresses are affine and copies with vector loads and stores, not gathers)."""
    if stride == 1:
        for j in range(n):
            dst[j] = src[j]
    else:
        for j in range(n):
            dst[j] = src[j * stride]


@inline
def im2col_image_(colT, x, FH, FW, stride, pad, OH, OW):
    """colT (C*FH*FW, OH*OW): column oy*OW + ox is the window at (oy, ox) of the
    zero-padded image x (C, H, W), rows (c, fh, fw).

    Writes the entries that come from x only: those from the padding must be zero on
    entry (the same entries for every image of a shape: a buffer from ``np.zeros``,
    reused, stays right).
    """
    C, H, W = x.shape
    P = OH * OW
    cols, xs = colT.reshape(colT.size), x.reshape(x.size)
    k = 0
    for c in range(C):
        for fy in range(FH):
            y_lo, y_hi = _inside(OH, fy - pad, stride, H)
            for fx in range(FW):
                x_lo, x_hi = _inside(OW, fx - pad, stride, W)
                for oy in range(y_lo, y_hi):
                    _copy_(view1d(cols, k * P + oy * OW + x_lo, x_hi - x_lo),
                           view1d(xs, (c * H + oy * stride + fy - pad) * W + x_lo * stride
                                  + fx - pad, W), x_hi - x_lo, stride)
                k += 1


@inline
def col2im_image_(x, colT, FH, FW, stride, pad, OH, OW):
    """x (C, H, W) = the sum of colT's columns (see ``im2col_image_``) placed on their
    windows; what falls on the padding is dropped."""
    C, H, W = x.shape
    P = OH * OW
    cols, xs = colT.reshape(colT.size), x.reshape(x.size)
    xs[:] = 0
    k = 0
    for c in range(C):
        for fy in range(FH):
            y_lo, y_hi = _inside(OH, fy - pad, stride, H)
            for fx in range(FW):
                x_lo, x_hi = _inside(OW, fx - pad, stride, W)
                n = x_hi - x_lo
                for oy in range(y_lo, y_hi):
                    tap = view1d(cols, k * P + oy * OW + x_lo, n)
                    dst = view1d(xs, (c * H + oy * stride + fy - pad) * W + x_lo * stride
                                 + fx - pad, W)
                    if stride == 1:
                        for j in range(n):
                            dst[j] += tap[j]
                    else:
                        for j in range(n):
                            dst[j * stride] += tap[j]
                k += 1


# --- the block bodies: images start .. stop - 1 of block blk (``_blocks.block_of``) ------
# Compiled calls (``_blocks.runner``), each allocating its own work buffers.


@compiled
def _im2col_(col, x, FH, FW, stride, pad, OH, OW):
    """col (N*OH*OW, K): every image's rows (gathered transposed, then turned). Serial:
    the book's ``im2col`` is an API of its own, outside the layers' passes, and a
    parallel form costs more compile time than it could save."""
    P, K = OH * OW, col.shape[1]
    colT = np.zeros((K, P), x.dtype)
    for n in range(x.shape[0]):
        im2col_image_(colT, x[n], FH, FW, stride, pad, OH, OW)
        for p in range(P):
            for k in range(K):
                col[n * P + p, k] = colT[k, p]


@compiled
def _col2im_(x, col, FH, FW, stride, pad, OH, OW):
    """x (N, C, H, W) from col's rows (serial, as ``_im2col_``)."""
    P, K = OH * OW, col.shape[1]
    colT = np.empty((K, P), x.dtype)
    for n in range(x.shape[0]):
        for p in range(P):
            for k in range(K):
                colT[k, p] = col[n * P + p, k]
        col2im_image_(x[n], colT, FH, FW, stride, pad, OH, OW)


@compiled
def _conv_forward_block(blk, g, out, x, Wmat, b, FH, FW, stride, pad):
    """out[n] (FN, OH*OW) = Wmat (FN, K) @ colT (K, OH*OW) + b, for the block's images."""
    N, FN, OH, OW = out.shape
    start, stop = block_of(blk, N, g)
    colT = np.zeros((Wmat.shape[1], OH * OW), x.dtype)  # (zeros: see im2col_image_)
    for n in range(start, stop):
        im2col_image_(colT, x[n], FH, FW, stride, pad, OH, OW)
        out_n = out[n].reshape(FN, OH * OW)
        gemm(False, False, 1.0, Wmat, colT, 0.0, out_n)
        for f in range(FN):
            bf = b[f]
            for p in range(OH * OW):
                out_n[f, p] += bf


@compiled
def _conv_backward_block(blk, g, dx, dW_parts, db_parts, dout, x, Wmat, FH, FW, stride,
                         pad):
    """dx for the block's images; row blk of dW_parts (nb, FN*K) and db_parts (nb, FN),
    float64: the block's sums of dW = dout_n @ colT.T and of db."""
    N, FN, OH, OW = dout.shape
    start, stop = block_of(blk, N, g)
    P, K = OH * OW, Wmat.shape[1]
    colT, dcolT = np.zeros((K, P), x.dtype), np.empty((K, P), x.dtype)
    dW = np.empty((FN, K), x.dtype)  # the block's sum, by GEMMs with beta = 1
    db = db_parts[blk]
    db[:] = 0.0
    for n in range(start, stop):
        dout_n = dout[n].reshape(FN, P)
        for f in range(FN):
            s = 0.0
            for p in range(P):
                s += dout_n[f, p]
            db[f] += s
        im2col_image_(colT, x[n], FH, FW, stride, pad, OH, OW)
        gemm(False, True, 1.0, dout_n, colT, 0.0 if n == start else 1.0, dW)
        gemm(True, False, 1.0, Wmat, dout_n, 0.0, dcolT)
        col2im_image_(dx[n], dcolT, FH, FW, stride, pad, OH, OW)
    dW_parts[blk] = dW.reshape(FN * K)


@compiled
def _pool_forward_block(blk, g, out, arg, x, PH, PW, stride, pad):
    """out, arg (N, C, OH, OW) for the block's images: each window's first maximum and
    its position iy * W + ix (-1: a zero of the padding)."""
    N, C, OH, OW = out.shape
    H, W = x.shape[2], x.shape[3]
    start, stop = block_of(blk, N, g)
    for n in range(start, stop):
        for c in range(C):
            for oy in range(OH):
                for ox in range(OW):
                    best, at = 0.0, -1
                    first = True
                    for py in range(PH):
                        iy = oy * stride + py - pad
                        for px in range(PW):
                            ix = ox * stride + px - pad
                            if 0 <= iy < H and 0 <= ix < W:
                                v, i = np.float64(x[n, c, iy, ix]), iy * W + ix
                            else:  # the padding's zero, a candidate as in the book
                                v, i = 0.0, -1
                            # a later value wins only if greater, or NaN after none was
                            if first or (not (v <= best) and best == best):
                                best, at, first = v, i, False
                    out[n, c, oy, ox] = best
                    arg[n, c, oy, ox] = at


@compiled
def _pool_backward_block(blk, g, dx, dout, arg):
    """dx (N, C, H, W) for the block's images: dout added at each window's maximum."""
    N, C, OH, OW = dout.shape
    W = dx.shape[3]
    start, stop = block_of(blk, N, g)
    for n in range(start, stop):
        dx[n] = 0
        for c in range(C):
            for oy in range(OH):
                for ox in range(OW):
                    i = arg[n, c, oy, ox]
                    if i >= 0:
                        dx[n, c, i // W, i % W] += dout[n, c, oy, ox]


_RUN = {body: runner(body) for body in (_conv_forward_block, _conv_backward_block,
                                         _pool_forward_block, _pool_backward_block)}


class _block_threads:
    """``with _block_threads():`` one kernel call: numba's threads per fastnn's policy
    (the forced count, else the usable cores), one BLAS thread for each block's
    products; both put back afterwards."""

    __slots__ = ("_blas", "_before")

    def __enter__(self):
        forced = policy()
        self._before = numba.get_num_threads()
        numba.set_num_threads(usable_cores() if forced == "auto"
                              else min(forced, usable_cores()))
        self._blas = for_work(0)  # (the work of a block: its BLAS calls on one thread)
        self._blas.n = 1
        self._blas.__enter__()
        return self

    def __exit__(self, *exc):
        self._blas.__exit__(*exc)
        numba.set_num_threads(self._before)
        return False


def _run(body, N, work_per_image, args):
    """``body`` over the batch's fixed blocks (``_blocks.grain``: at least a block's
    worth of work each, the cut a function of the shapes only); args after (blk, g)."""
    g = grain(N, work_per_image, 1)
    with _block_threads():
        _RUN[body](n_blocks(N, g), (g,) + args)


# --- the per-op API (fastnn.reference's names and signatures) -----------------------------


def _c(a, dtype=None):
    return np.ascontiguousarray(a, dtype=dtype)


def im2col(input_data, filter_h, filter_w, stride=1, pad=0):
    """Every (filter_h, filter_w) window of the zero-padded input as one row.

    input_data is (N, C, H, W); returns col (N * OH * OW, C * filter_h * filter_w), rows
    ordered (n, oy, ox), columns (c, fh, fw).
    """
    x = _c(input_data)
    N, C, H, W = x.shape
    OH, OW = _out_size(H, filter_h, stride, pad), _out_size(W, filter_w, stride, pad)
    col = np.empty((N * OH * OW, C * filter_h * filter_w), x.dtype)
    _im2col_(col, x, filter_h, filter_w, stride, pad, OH, OW)
    return col


def col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0):
    """The adjoint of ``im2col``: each row's entries added back onto its window.

    col is (N * OH * OW, C * filter_h * filter_w); returns x of ``input_shape``
    (N, C, H, W), where the windows overlap their values add up.
    """
    col = _c(col)
    N, C, H, W = (int(s) for s in input_shape)
    OH, OW = _out_size(H, filter_h, stride, pad), _out_size(W, filter_w, stride, pad)
    x = np.empty((N, C, H, W), col.dtype)
    _col2im_(x, col, filter_h, filter_w, stride, pad, OH, OW)
    return x


def conv_forward(x, W, b, stride=1, pad=0):
    """out = the convolution of x with the filters W, plus b: (out, cache).

    x is (N, C, H, W), W is (FN, C, FH, FW), b is (FN,); out is (N, FN, OH, OW).
    ``cache`` (x's C-contiguous form) is what ``conv_backward`` needs.
    """
    x = _c(x)
    W, b = _c(W, x.dtype), _c(b, x.dtype)
    FN, C, FH, FW = W.shape
    N, _, H, Wd = x.shape
    OH, OW = _out_size(H, FH, stride, pad), _out_size(Wd, FW, stride, pad)
    out = np.empty((N, FN, OH, OW), x.dtype)
    Wmat = W.reshape(FN, C * FH * FW)
    _run(_conv_forward_block, N, OH * OW * Wmat.size, (out, x, Wmat, b, FH, FW, stride, pad))
    return out, x


def conv_backward(dout, cache, W, stride=1, pad=0):
    """Gradients of ``conv_forward``: (dx, dW, db), dW shaped like W, db like b.

    dout is (N, FN, OH, OW); ``cache`` is what ``conv_forward`` returned.
    """
    x = cache
    dtype = x.dtype
    dout, W = _c(dout, dtype), _c(W, dtype)
    FN, C, FH, FW = W.shape
    N, _, OH, OW = dout.shape
    Wmat = W.reshape(FN, C * FH * FW)
    work = 3 * OH * OW * Wmat.size
    nb = n_blocks(N, grain(N, work, 1))
    dW_parts, db_parts = np.empty((nb, Wmat.size)), np.empty((nb, FN))
    dx = np.empty(x.shape, dtype)
    _run(_conv_backward_block, N, work,
         (dx, dW_parts, db_parts, dout, x, Wmat, FH, FW, stride, pad))
    dW, db = np.empty(Wmat.size, dtype), np.empty(FN, dtype)
    sum_blocks_(dW, dW_parts, nb)
    sum_blocks_(db, db_parts, nb)
    return dx, dW.reshape(W.shape), db


def pool_forward(x, pool_h, pool_w, stride=2, pad=0):
    """Max pooling: each (pool_h, pool_w) window's maximum, channel by channel.

    x is (N, C, H, W); out is (N, C, OH, OW). The padding is zeros, as the book's
    ``im2col`` pads. ``cache`` keeps x's shape and the position of each window's first
    maximum.
    """
    x = _c(x)
    N, C, H, W = x.shape
    OH, OW = _out_size(H, pool_h, stride, pad), _out_size(W, pool_w, stride, pad)
    out = np.empty((N, C, OH, OW), x.dtype)
    arg = np.empty((N, C, OH, OW), np.int64)
    _run(_pool_forward_block, N, out.size // N * pool_h * pool_w,
         (out, arg, x, pool_h, pool_w, stride, pad))
    return out, (x.shape, arg)


def pool_backward(dout, cache, pool_h, pool_w, stride=2, pad=0):
    """Gradient of ``pool_forward``: each window's first maximum gets the window's dout,
    the rest of the window nothing (overlapping windows add). Returns dx like x."""
    x_shape, arg = cache
    dout = _c(dout)
    dx = np.empty(x_shape, dout.dtype)
    N = x_shape[0]
    _run(_pool_backward_block, N, (dout.size + dx.size) // N, (dx, dout, arg))
    return dx

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
* fused (``conv_relu_forward`` / ``conv_relu_backward``): a Convolution, the Relu after it
  and optionally a max Pooling after that, per image: bias + ReLU in the GEMM's epilogue
  and the image's pooling right after; backward the ReLU mask, the unpooling and the
  convolution's GEMMs. The convnets' engine runs each such run of layers this way.

Every image's arithmetic is the same whichever thread runs its block, and the only sums
across blocks run in block order, so results do not depend on the thread count or the
load. The passes run through ``_blocks.blocks``: on the thread count the policy gave
the call, the parallel forms compiled only when a call first wants threads. Each piece
of math is written once: ``im2col_image_`` and ``col2im_image_`` serve both the public
``im2col``/``col2im`` and the convolution; ``pool_image_`` / ``unpool_image_`` both the
pooling ops and the fused passes; the ReLU is ``affine_act``'s ``act_value`` /
``act_grad_value``.
"""

from __future__ import annotations

import numpy as np

from ._blas import gemm
from ._blocks import block_of, blocks, grain, n_blocks, sum_blocks_
from ._config import compiled, inline
from ._threads import block_threads, for_work
from ._views import view1d
from .affine_act import IDENTITY, RELU, act_backward_, act_value


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
def _taps_(colT, x, FH, FW, stride, pad, OH, OW, scatter):
    """Between colT (C*FH*FW, OH*OW) and the image x (C, H, W), for every filter tap and
    output row, the run of outputs whose input lies inside x (the rest is padding):
    gather (``scatter`` False) colT[tap, row's run] = x[the inputs], or scatter
    x[the inputs] += colT[tap, row's run]. The runs are views indexed from 0, so that
    LLVM sees affine addresses and moves them with vector loads and stores."""
    C, H, W = x.shape
    P = OH * OW
    cols, xs = colT.reshape(colT.size), x.reshape(x.size)
    k = 0
    for c in range(C):
        for fy in range(FH):
            y_lo, y_hi = _inside(OH, fy - pad, stride, H)
            for fx in range(FW):
                x_lo, x_hi = _inside(OW, fx - pad, stride, W)
                n = x_hi - x_lo
                for oy in range(y_lo, y_hi):
                    tap = view1d(cols, k * P + oy * OW + x_lo, n)
                    img = view1d(xs, (c * H + oy * stride + fy - pad) * W + x_lo * stride
                                 + fx - pad, W)
                    if scatter and stride == 1:
                        for j in range(n):
                            img[j] += tap[j]
                    elif scatter:
                        for j in range(n):
                            img[j * stride] += tap[j]
                    elif stride == 1:
                        for j in range(n):
                            tap[j] = img[j]
                    else:
                        for j in range(n):
                            tap[j] = img[j * stride]
                k += 1


@inline
def im2col_image_(colT, x, FH, FW, stride, pad, OH, OW):
    """colT (C*FH*FW, OH*OW): column oy*OW + ox is the window at (oy, ox) of the
    zero-padded image x (C, H, W), rows (c, fh, fw).

    Writes the entries that come from x only: those from the padding must be zero on
    entry (the same entries for every image of a shape: a buffer from ``np.zeros``,
    reused, stays right).
    """
    _taps_(colT, x, FH, FW, stride, pad, OH, OW, False)


@inline
def col2im_image_(x, colT, FH, FW, stride, pad, OH, OW):
    """x (C, H, W) = the sum of colT's columns (see ``im2col_image_``) placed on their
    windows; what falls on the padding is dropped."""
    x[...] = 0
    _taps_(colT, x, FH, FW, stride, pad, OH, OW, True)


# --- the block bodies: images start .. stop - 1 of block blk (``_blocks.block_of``) ------
# Compiled calls (``_blocks.blocks``), each allocating its own work buffers.


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


# --- one image: max pooling and its adjoint -------------------------------------------


@inline
def pool_image_(out, arg, x, PH, PW, stride, pad):
    """out, arg (C, OH, OW) of the image x (C, H, W): each window's first maximum and its
    position iy * W + ix (-1: a zero of the padding). A later value wins only if greater,
    or NaN after none was (``np.argmax``'s rule); the padding's zeros are candidates."""
    C, OH, OW = out.shape
    H, W = x.shape[1], x.shape[2]
    for c in range(C):
        xc = x[c]
        for oy in range(OH):
            y0 = oy * stride - pad
            rows_in = y0 >= 0 and y0 + PH <= H
            for ox in range(OW):
                x0 = ox * stride - pad
                if rows_in and x0 >= 0 and x0 + PW <= W:
                    # the whole window on x (every window without padding): no tests per
                    # element, x's own dtype (the comparisons are exact either way)
                    m, i_m = xc[y0, x0], y0 * W + x0
                    for py in range(PH):
                        for px in range(PW):
                            v = xc[y0 + py, x0 + px]
                            if not (v <= m) and m == m:
                                m, i_m = v, (y0 + py) * W + x0 + px
                    out[c, oy, ox] = m
                    arg[c, oy, ox] = i_m
                    continue
                best, at = 0.0, -1
                first = True
                for py in range(PH):
                    iy = y0 + py
                    for px in range(PW):
                        ix = x0 + px
                        if 0 <= iy < H and 0 <= ix < W:
                            v, i = np.float64(xc[iy, ix]), iy * W + ix
                        else:  # the padding's zero, a candidate as in the book
                            v, i = 0.0, -1
                        if first or (not (v <= best) and best == best):
                            best, at, first = v, i, False
                out[c, oy, ox] = best
                arg[c, oy, ox] = at


@inline
def unpool_image_(dx, dout, arg):
    """dx (C, H, W) = 0, then each window's dout (C, OH, OW) added at its maximum
    (``arg``, from ``pool_image_``; overlapping windows add, in window order)."""
    C, OH, OW = dout.shape
    W = dx.shape[2]
    dx[...] = 0
    for c in range(C):
        dxc = dx[c]
        for oy in range(OH):
            for ox in range(OW):
                i = arg[c, oy, ox]
                if i >= 0:
                    dxc[i // W, i % W] += dout[c, oy, ox]


# --- the layers' block bodies ----------------------------------------------------------
# A convolution's bodies carry an activation (``act``: IDENTITY, or RELU for a Relu
# layer after it) and an optional max pooling after that (PH > 0), run per image while
# the image's output is in cache: the (Convolution, Relu[, Pooling]) runs of the
# convnets are one pass forward and one backward (``conv_relu_forward``). The
# activation's math is ``act_value`` / ``act_grad_value`` (``affine_act``), the
# pooling's ``pool_image_`` / ``unpool_image_``: the unfused ops call the same bodies.
# With pooling the activation's output stays in the block's buffer: the backward pass
# masks the pooling's gradient by the pooling's output instead, which is the
# activation's output at each window's maximum, the only place a gradient reaches
# (the same values, so the same bits as the unfused layers).


@inline
def bias_rows_act_(out, b, act):
    """In place: out[f, p] = act(out[f, p] + b[f]); out is (FN, P), b is (FN,)."""
    FN, P = out.shape
    for f in range(FN):
        bf = b[f]
        for p in range(P):
            out[f, p] = act_value(out[f, p] + bf, act)


@compiled
def _conv_forward_block(blk, g, out, x, Wmat, b, FH, FW, stride, pad, OH, OW, act, pout,
                        parg, PH, PW, pstride, ppad):
    """act(Wmat (FN, K) @ colT (K, OH*OW) + b) for the block's images: into out[n]
    (FN, OH, OW) where out is not empty, and with PH > 0 pooled into pout[n], parg[n]
    (FN, POH, POW) (``pool_image_``)."""
    N, FN = x.shape[0], Wmat.shape[0]
    start, stop = block_of(blk, N, g)
    colT = np.zeros((Wmat.shape[1], OH * OW), x.dtype)  # (zeros: see im2col_image_)
    y = np.empty((FN, OH, OW), x.dtype)  # (the image's output where out is empty)
    for n in range(start, stop):
        im2col_image_(colT, x[n], FH, FW, stride, pad, OH, OW)
        y_n = out[n] if out.shape[0] > 0 else y
        flat = y_n.reshape(FN, OH * OW)
        gemm(False, False, 1.0, Wmat, colT, 0.0, flat)
        if act == RELU:  # (the branch outside the loops: each loop's act a constant)
            bias_rows_act_(flat, b, RELU)
        else:
            bias_rows_act_(flat, b, IDENTITY)
        if PH > 0:
            pool_image_(pout[n], parg[n], y_n, PH, PW, pstride, ppad)


@compiled
def _conv_backward_block(blk, g, dx, dW_parts, db_parts, dout, x, Wmat, FH, FW, stride,
                         pad, OH, OW, act, y, arg):
    """Row blk of dW_parts (nb, FN*K) and db_parts (nb, FN), float64: the block's sums
    of dW = dy_n @ colT.T and of db = dy_n's row sums, and (dx not empty) dx[n] for its
    images. dy_n (FN, OH*OW), the gradient at the convolution's output: dout[n] through
    the activation (``act`` RELU: ``y`` is its output where dout is, the activation's
    or the pooling's), then unpooled (``arg`` not empty: dout is the pooling's)."""
    N, FN = x.shape[0], Wmat.shape[0]
    start, stop = block_of(blk, N, g)
    P, K = OH * OW, Wmat.shape[1]
    colT, dcolT = np.zeros((K, P), x.dtype), np.empty((K, P), x.dtype)
    dW = np.empty((FN, K), x.dtype)  # the block's sum, by GEMMs with beta = 1
    dy = np.empty((FN, OH, OW), x.dtype)  # (the unpooled gradient)
    dm = np.empty(dout.shape[1:], x.dtype)  # (the gradient through the activation)
    DP = dout.shape[2] * dout.shape[3]
    db = db_parts[blk]
    db[:] = 0.0
    for n in range(start, stop):
        src = dout[n]
        if act == RELU:
            act_backward_(dm.reshape(FN, DP), src.reshape(FN, DP), y[n].reshape(FN, DP),
                          RELU)
            src = dm
        if arg.shape[0] > 0:
            unpool_image_(dy, src, arg[n])
            src = dy
        dy_n = src.reshape(FN, P)
        for f in range(FN):
            s = 0.0
            for p in range(P):
                s += dy_n[f, p]
            db[f] += s
        im2col_image_(colT, x[n], FH, FW, stride, pad, OH, OW)
        gemm(False, True, 1.0, dy_n, colT, 0.0 if n == start else 1.0, dW)
        if dx.shape[0] > 0:
            gemm(True, False, 1.0, Wmat, dy_n, 0.0, dcolT)
            col2im_image_(dx[n], dcolT, FH, FW, stride, pad, OH, OW)
    dW_parts[blk] = dW.reshape(FN * K)


@compiled
def _pool_forward_block(blk, g, out, arg, x, PH, PW, stride, pad):
    """out, arg (N, C, OH, OW) for the block's images (``pool_image_``)."""
    start, stop = block_of(blk, out.shape[0], g)
    for n in range(start, stop):
        pool_image_(out[n], arg[n], x[n], PH, PW, stride, pad)


@compiled
def _pool_backward_block(blk, g, dx, dout, arg):
    """dx (N, C, H, W) for the block's images: dout added at each window's maximum."""
    start, stop = block_of(blk, dout.shape[0], g)
    for n in range(start, stop):
        unpool_image_(dx[n], dout[n], arg[n])


_RUN = {body: blocks(body) for body in (_conv_forward_block, _conv_backward_block,
                                         _pool_forward_block, _pool_backward_block)}


def _run(body, N, work_per_image, args):
    """``body`` over the batch's fixed blocks (``_blocks.grain``: at least a block's
    worth of work each, the cut a function of the shapes only), on the thread policy's
    numba threads for that much work, one BLAS thread in each (``_threads.for_work``);
    args after (blk, g)."""
    g = grain(N, work_per_image, 1)
    with for_work(N * work_per_image):
        _RUN[body](n_blocks(N, g), block_threads(), (g,) + args)


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


_NO_POOL = (0, 0, 1, 0)  # (pool_h, pool_w, stride, pad) of "no pooling"


def _conv_forward(x, W, b, stride, pad, act, pool):
    """(x, out, pout, parg): x C-contiguous, the convolution's output through ``act``
    (N, FN, OH, OW; empty with ``pool``) and with ``pool`` its max pooling (else empty
    arrays)."""
    x = _c(x)
    W, b = _c(W, x.dtype), _c(b, x.dtype)
    FN, C, FH, FW = W.shape
    N, _, H, Wd = x.shape
    OH, OW = _out_size(H, FH, stride, pad), _out_size(Wd, FW, stride, pad)
    PH, PW, pstride, ppad = pool or _NO_POOL
    if pool:
        shape = (N, FN, _out_size(OH, PH, pstride, ppad), _out_size(OW, PW, pstride, ppad))
        out = _EMPTY4[x.dtype]
    else:
        shape = (0, 0, 0, 0)
        out = np.empty((N, FN, OH, OW), x.dtype)
    pout, parg = np.empty(shape, x.dtype), np.empty(shape, np.int64)
    Wmat = W.reshape(FN, C * FH * FW)
    _run(_conv_forward_block, N, OH * OW * Wmat.size,
         (out, x, Wmat, b, FH, FW, stride, pad, OH, OW, act, pout, parg, PH, PW, pstride,
          ppad))
    return x, out, pout, parg


def _conv_backward(dout, x, W, stride, pad, OH, OW, act, y, arg, need_dx):
    """(dx or None, dW, db) of ``_conv_forward``; dout is the gradient at its last
    output (the pooling's where ``arg`` is not empty), ``y`` the activation's output
    there."""
    dtype = x.dtype
    dout, W = _c(dout, dtype), _c(W, dtype)
    FN, C, FH, FW = W.shape
    N = x.shape[0]
    Wmat = W.reshape(FN, C * FH * FW)
    work = (3 if need_dx else 2) * OH * OW * Wmat.size
    nb = n_blocks(N, grain(N, work, 1))
    dW_parts, db_parts = np.empty((nb, Wmat.size)), np.empty((nb, FN))
    dx = np.empty(x.shape if need_dx else (0,) + x.shape[1:], dtype)
    _run(_conv_backward_block, N, work,
         (dx, dW_parts, db_parts, dout, x, Wmat, FH, FW, stride, pad, OH, OW, act, y, arg))
    dW, db = np.empty(Wmat.size, dtype), np.empty(FN, dtype)
    sum_blocks_(dW, dW_parts, nb)
    sum_blocks_(db, db_parts, nb)
    return (dx if need_dx else None), dW.reshape(W.shape), db


def conv_forward(x, W, b, stride=1, pad=0):
    """out = the convolution of x with the filters W, plus b: (out, cache).

    x is (N, C, H, W), W is (FN, C, FH, FW), b is (FN,); out is (N, FN, OH, OW).
    ``cache`` (x's C-contiguous form: x itself when it is one, so x must not change
    before the backward pass, as the book's layer keeps x) is what ``conv_backward``
    needs.
    """
    x, out, _, _ = _conv_forward(x, W, b, stride, pad, IDENTITY, None)
    return out, x


def conv_backward(dout, cache, W, stride=1, pad=0):
    """Gradients of ``conv_forward``: (dx, dW, db), dW shaped like W, db like b.

    dout is (N, FN, OH, OW); ``cache`` is what ``conv_forward`` returned.
    """
    x = cache
    OH, OW = dout.shape[2], dout.shape[3]
    return _conv_backward(dout, x, W, stride, pad, OH, OW, IDENTITY, _EMPTY4[x.dtype],
                          _EMPTY_ARG, True)


def conv_relu_forward(x, W, b, stride=1, pad=0, pool=None):
    """A Convolution, a Relu and optionally a max Pooling in one pass over the images:
    (out, cache).

    x, W, b as ``conv_forward``; ``pool`` None or (pool_h, pool_w, stride, pad). out is
    the last layer's output: ``pool_forward(relu_forward(conv_forward(x, W, b)))`` (or
    without the pooling), the same bits. ``cache`` is what ``conv_relu_backward`` needs:
    (x, the output out, its geometry): with pooling the Relu's output is not kept (the
    backward pass needs only its values at the windows' maxima: out).
    """
    x, out, pout, parg = _conv_forward(x, W, b, stride, pad, RELU, pool)
    FN, _, FH, FW = W.shape
    OH = _out_size(x.shape[2], FH, stride, pad)
    OW = _out_size(x.shape[3], FW, stride, pad)
    if pool:
        return pout, (x, pout, (OH, OW, parg))
    return out, (x, out, (OH, OW, _EMPTY_ARG))


def conv_relu_backward(dout, cache, W, stride=1, pad=0, pool=None, need_dx=True):
    """Gradients of ``conv_relu_forward``: (dx, dW, db), the same bits as the three
    layers' backward passes in turn; dx None where not ``need_dx`` (a network's first
    layer: its col2im and GEMM are skipped)."""
    x, y, (OH, OW, arg) = cache
    return _conv_backward(dout, x, W, stride, pad, OH, OW, RELU, y, arg, need_dx)


_EMPTY4 = {np.dtype(t): np.empty((0, 0, 0, 0), t) for t in (np.float32, np.float64)}
_EMPTY_ARG = np.empty((0, 0, 0, 0), np.int64)


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

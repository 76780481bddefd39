"""An affine layer with any activation: its forward and backward math, written once.

The bodies (``affine_act_forward_``, ``affine_act_backward_`` and the passes they run)
are compiled functions that every path calls: the per-op API below, the network loop
and through it the whole-step kernels and the compiled training loop (``network.py``).
Argument order follows llm.c: outputs first, then inputs, then options.

* forward: ``out = act(x @ W + b)``, by fixed row blocks (``_blocks``): each block's
  GEMM, then bias + activation in one pass in place while the block is in cache (that
  pass can count non-finite pre-activations: the network's first layer validates x
  that way, without a pass of its own);
* backward: by row blocks, ``dz = dout * act'(out)`` with the block's column sums in one
  pass (in place: dz holds dout on entry), then the block's ``dx = dz @ W.T``; ``db``
  adds the blocks' sums in block order; then by blocks of dW's rows (input features)
  ``dW = alpha * x.T @ dz + beta * dW``, each a GEMM over the whole batch. With
  ``dW = W, alpha = -lr, beta = 1`` the weight "gradient" GEMM is SGD's weight step
  itself (``network.py`` uses that; every dx is computed first, from the old W);
* a small batch (one row block) with a large layer: x @ W by blocks of W's columns
  before the bias + activation pass, and the weight pass by smaller blocks of dW's
  rows (``small_batch_grains``), so that two cores share a batch of 32.

A block's work (``forward_block_``, ``backward_rows_``, ``weight_rows_``) is a compiled
function, called (not inlined): compiled once per argument types, it serves the serial
loops below and the parallel form's ``layer_block_`` alike, and keeps the network
kernel's own IR small (cold compile of the plain network: about 0.6 s of CPU less than
inlined, docs/performance.md; the 1-3-1 step's six calls cost nothing measurable).
The blocks run in turn, or (``parallel``, in the network kernel's parallel form) on
numba's threads through one runner over one compiled body, ``layer_block_``; the cut
(``layer_grain``: at least sqrt(n * MIN_ROWS) items a block, since each block's product
packs the other operand again) depends on the shapes only, so both give the same bits.

Activations are integer codes (``ACTIVATIONS``) so one body serves all; the branch is
loop-invariant (LLVM unswitches the loops on it).

Adding an activation: give it a code here, its value in ``act_value`` and its gradient
(from the output y) in ``act_grad_value``; its NumPy twin goes in ``fastnn.reference``
and its registration (layer class, default init) in ``fastnn.layers.ACTIVATIONS``;
every path picks it up.

The Python functions at the bottom are the per-op API, with the names and signatures of
``fastnn.reference``: they allocate missing outputs, copy inputs that are not
C-contiguous of one float dtype once, and call the bodies.
"""

from __future__ import annotations

import math

import numpy as np

from ._blas import gemm, gemm_cols
from ._blocks import MIN_ROWS, block_of, grain, n_blocks, runner, sum_blocks_
from ._config import callee, inline
from ._views import view_cols, view_row, view_rows
from .optim import sgd_bias_

IDENTITY, RELU, SIGMOID, TANH = 0, 1, 2, 3
ACTIVATIONS = {"identity": IDENTITY, "relu": RELU, "sigmoid": SIGMOID, "tanh": TANH}


@inline
def act_value(v, act):
    """act(v) for one pre-activation: ReLU keeps NaN (as np.maximum), sigmoid never overflows.

    The sigmoid is 1 / (1 + e) or e / (1 + e) with e = exp(-|v|) <= 1, as the reference
    computes it: one exp, the numerator a conditional expression (branching first on
    the sign of v into exp(-v) or exp(v) was slower).
    """
    if act == RELU:
        return 0 if v < 0 else v
    if act == SIGMOID:
        e = math.exp(-abs(v))
        return (1.0 if v >= 0 else e) / (1.0 + e)
    if act == TANH:
        return math.tanh(v)
    return v


@inline
def act_grad_value(g, y, act):
    """g * act'(.) given the activation's output y: ReLU passes where y > 0."""
    if act == RELU:
        return g if y > 0 else 0
    if act == SIGMOID:
        return g * y * (1 - y)
    if act == TANH:
        return g * (1 - y * y)
    return g


# --- forward ------------------------------------------------------------------------


@inline
def bias_act_(out, b, act, count):
    """In place: out = act(out + b); out is (N, H), b is (H,). A layer without a bias
    passes b = -0.0 everywhere: v + -0.0 is v for every v, -0.0 and NaN included (+0.0
    would turn -0.0 into 0.0).

    With ``count``, returns how many pre-activations (out + b) were NaN or +-Inf, else 0.
    (No branch on the bias or on ``count`` inside the loop: LLVM copied the loop for
    each, and for each activation, 16 copies to optimise twice, in this body's module
    and in every kernel that calls it; about 0.25 s of the plain network's cold compile.
    The count always runs, a vectorised compare and add.)
    """
    N, H = out.shape
    bad = 0
    for n in range(N):
        for h in range(H):
            v = out[n, h] + b[h]
            bad += not math.isfinite(v)
            out[n, h] = act_value(v, act)
    return bad if count else 0


# Multiply-adds a layer's block holds at least: a million, a quarter of ``BLOCK_WORK``.
# With 4 M, a 784-128-128-10 step at batch 100 ran its second layer (1.6 M) on one core
# and at batch 1000 its third (1.3 M): the step / GEMM-only bound went 1.20 -> 1.08
# (float64, batch 100) and 1.10 -> 1.03 (float32, batch 1000) with a million
# (docs/performance.md, session 6). The square root below still keeps a large pass's
# blocks few.
LAYER_WORK = 1 << 20


@inline
def layer_grain(n, per):
    """Items per block of a layer's pass over ``n`` items (rows of the batch, or dW's
    input features) of ``per`` multiply-adds each: ``grain``'s (at least ``LAYER_WORK``
    multiply-adds and ``MIN_ROWS`` items), and at least sqrt(n * MIN_ROWS) items, then
    evened out over the blocks. A function of the shapes only.

    Why the square root: every block's product packs the other operand again (W for a
    row block, the whole of dz for a block of dW), a cost of about 1 / g of the block's
    own (measured on 784x128 float32 at batch 1000, one thread: 64-row blocks 19 % over
    the whole product, 40-feature dW blocks 32 %); the pass's parallel slack is n / g
    blocks. g = sqrt(n * MIN_ROWS) lets both grow as sqrt(n): 2 blocks at 100 rows, 4 at
    1,000 (256 rows), 13 at 10,000; dW of 784 features 4 blocks of 200, not 20 of 40.
    """
    g = grain(n, per, MIN_ROWS, LAYER_WORK)
    if g >= n:  # one block (no square root: a small network's step has six passes)
        return g
    g = max(g, int(math.sqrt(n * MIN_ROWS)))
    nb = n_blocks(n, g)
    g = ((n + nb - 1) // nb + 7) // 8 * 8  # the same count of blocks, evened out
    return min(g, n)


# A pass of one row block (a small batch) is cut by its output columns instead, from
# 2 * COL_WORK multiply-adds, into blocks of at least MIN_COLS columns and COL_WORK
# multiply-adds (``small_batch_grains``). Counted as float64 ones: a float32 one is
# half of one (float32 products run about twice as fast).
MIN_COLS = 64
COL_WORK = 1 << 20


@inline
def small_batch_grains(N, D, H, itemsize):
    """(columns per block of x @ W, features per block of the weight pass) of a layer
    over N rows, D inputs and H outputs whose row pass is one block: (H, D), no cut,
    below 2 * COL_WORK multiply-adds (float64-equivalent) or 2 * MIN_COLS columns. A
    function of the shapes and the dtype only.

    Why: a batch of 32 rows is one row block, so x @ W1 (784 x 128) and the weight pass
    ran on one core. The forward product is cut by W's columns into blocks of at least
    COL_WORK; the weight pass (dW = x.T @ dz, or SGD's W += -lr x.T @ dz) by dW's rows
    into blocks of COL_WORK / 2, a few per thread, so that a thread slowed down by
    fetching the other core's half of W does not hold up the pass (measured,
    float64, batch 32: six blocks of dW's rows 1.11x the GEMM-only bound, two 1.19x,
    two column blocks of dW 1.16x; docs/performance.md).
    """
    work = N * D * H * itemsize // 8
    if H < 2 * MIN_COLS or work < 2 * COL_WORK:
        return H, D
    per = max(N * D * itemsize // 8, 1)
    nc = max(H // max((COL_WORK + per - 1) // per, MIN_COLS), 1)  # (blocks of >= both)
    gc = min(((H + nc - 1) // nc + 7) // 8 * 8, H)
    per = max(N * H * itemsize // 8, 1)
    nf = max(D // max((COL_WORK // 2 + per - 1) // per, 8), 1)
    return gc, min(((D + nf - 1) // nf + 7) // 8 * 8, D)


@inline
def blocks_for(N):
    """The most row blocks a layer's pass over N rows makes (grains of at least
    MIN_ROWS rows): the rows of its ``partial`` scratch."""
    return max(-(-N // MIN_ROWS), 1)


# What a forward block does (``forward_block_``'s ``part``)
WHOLE, BIAS_ACT, COLS = 0, 1, 2


@callee
def layer_cuts_(N, D, H, itemsize):
    """A layer's blocks over N rows, D inputs and H outputs: (rows per block, row
    blocks, columns per block of x @ W, its column blocks, features per block of the
    weight pass, its blocks). Row blocks by ``layer_grain``; one row block of a large
    layer: the small-batch cut (``small_batch_grains``). A function of the shapes and
    the item size only. (A call: inlined in the forward and the backward body, and with
    the forward's second call site, it cost the network's cold compile about 1 s;
    docs/performance.md, session 6.)"""
    g = layer_grain(N, D * H)
    nb = n_blocks(N, g)
    gc, gw = H, layer_grain(D, N * H)
    if nb == 1:
        cut_c, cut_w = small_batch_grains(N, D, H, itemsize)
        if cut_c < H:
            gc, gw = cut_c, cut_w
    return g, nb, gc, n_blocks(H, gc), gw, n_blocks(D, gw)


@callee
def forward_block_(blk, g, out, x, W, b, act, count, partial, part):
    """Block ``blk`` of out = act(x @ W + b). ``part`` WHOLE: g rows, their GEMM, then
    bias and activation while they are in cache, partial[blk, 0] = their non-finite
    count; BIAS_ACT: the same without the GEMM (out holds x @ W); COLS: g columns of
    the product only (out[:, cols] = x @ W[:, cols]; ``small_batch_grains``). (One
    body for the three: a compiled function costs about 0.3 s of cold compile.)"""
    if part == COLS:
        start, stop = block_of(blk, out.shape[1], g)
        gemm_cols(x, W, out, start, stop - start)
        return
    start, stop = block_of(blk, x.shape[0], g)
    rows = view_rows(out, start, stop - start)
    if part == WHOLE:
        gemm(False, False, 1.0, view_rows(x, start, stop - start), W, 0.0, rows)
    partial[blk, 0] = bias_act_(rows, b, act, count)


@inline
def affine_act_forward_(out, x, W, b, act, count, parallel, partial):
    """out = act(x @ W + b); the non-finite count of ``bias_act_``.

    out is (N, H), x is (N, D), W is (D, H), b is (H,); C-contiguous, one dtype. Row
    blocks (``_blocks``: cut by the shapes only), each ``forward_block_``; their counts
    added up. One row block of a large layer (``small_batch_grains``): the product by
    column blocks first, then the rows' bias and activation. ``parallel`` (a constant
    of the compiled caller): on numba's threads, else in turn in this thread (the same
    blocks, the same bits). ``partial`` is float64 scratch of at least
    ``blocks_for(N)`` rows (``blocks_for``).
    """
    N, D = x.shape
    g, nb, gc, nc, _, _ = layer_cuts_(N, D, W.shape[1], x.itemsize)
    ncols = nc if nc > 1 else 0  # one row block: the product by column blocks first
    if parallel:
        if ncols > 0:
            run_layer_(nc, (np.int64(FORWARD), gc, out, x, W, b, out, out, W, partial, act,
                            count, float(COLS), 0.0))
        run_layer_(nb, (np.int64(FORWARD), g, out, x, W, b, out, out, W, partial, act, count,
                        float(BIAS_ACT if ncols > 0 else WHOLE), 0.0))
    else:
        for k in range(ncols + nb):  # (one call: the serial form's compile is smaller)
            cols = k < ncols
            forward_block_(k if cols else k - ncols, gc if cols else g, out, x, W, b, act,
                           count, partial, COLS if cols else BIAS_ACT if ncols > 0 else WHOLE)
    bad = 0
    for blk in range(nb):
        bad += int(partial[blk, 0])
    return bad


# --- backward -----------------------------------------------------------------------


@inline
def act_grad_colsum_(dz, sums, out, act):
    """In place: dz = dz * act'(out), and sums = the column sums of the result.

    dz (the upstream gradient on entry) and out are (N, H), sums is float64 (H,); out is
    unused for IDENTITY. The sums accumulate in float64 for either dtype, row after row;
    one row (SGD on single samples) is its own sum, written directly (through the
    accumulator it was a third of a 1-3-1 step's backward pass).
    (In place, one array goes in: two arguments that alias make LLVM's runtime overlap
    check pick its scalar loop, 4x slower.)
    """
    N, H = dz.shape
    if N == 1:  # one row (SGD on single samples): the sums are the row itself
        for h in range(H):
            g = act_grad_value(dz[0, h], out[0, h], act)
            dz[0, h] = g
            sums[h] = g
        return
    for h in range(H):
        sums[h] = 0.0
    for n in range(N):
        for h in range(H):
            g = act_grad_value(dz[n, h], out[n, h], act)
            dz[n, h] = g
            sums[h] += g


@callee
def backward_rows_(blk, g, dz, dx, W, out, act, need_dx, partial):
    """Block ``blk`` (g rows) of the backward pass's row part: dz *= act'(out), the
    rows' column sums to partial[blk], and (``need_dx``) their dx = dz @ W.T."""
    start, stop = block_of(blk, dz.shape[0], g)
    rows = view_rows(dz, start, stop - start)
    act_grad_colsum_(rows, view_row(partial, blk), view_rows(out, start, stop - start), act)
    if need_dx:
        gemm(False, True, 1.0, rows, W, 0.0, view_rows(dx, start, stop - start))


@callee
def weight_rows_(blk, g, dW, x, dz, alpha, beta):
    """Block ``blk`` (g input features) of dW = alpha * x.T @ dz + beta * dW: its rows,
    one GEMM of x's columns with the whole of dz."""
    start, stop = block_of(blk, dW.shape[0], g)
    gemm(True, False, alpha, view_cols(x, start, stop - start), dz, beta,
         view_rows(dW, start, stop - start))


@inline
def affine_act_backward_(dx, dW, db, dz, x, W, out, act, need_dx, need_dW, alpha, beta,
                         parallel, partial):
    """The backward pass of out = act(x @ W + b), in one body.

    dz (N, H) holds dout on entry and dz = dout * act'(out) after; db (H,) = sum_n dz;
    dx (N, D) = dz @ W.T when ``need_dx`` (with W as it is on entry); dW (D, H) =
    alpha * x.T @ dz + beta * dW when ``need_dW``. Gradients: alpha 1, beta 0. SGD's
    weight step: dW is W, alpha = -lr, beta = 1. Unused arrays may be any of the type.

    Two passes of fixed blocks (``_blocks``): row blocks of the batch
    (``backward_rows_``), then, once every dx has used the old W, blocks of dW's rows
    (``weight_rows_``: input features), each a GEMM over the whole batch. db adds the
    row blocks' sums in block order. ``parallel`` as in ``affine_act_forward_``;
    ``partial`` float64 scratch of at least (``blocks_for(N)``, H).
    """
    N, H = dz.shape
    g, nb, _, _, gw, nw = layer_cuts_(N, W.shape[0], H, x.itemsize)
    nw = nw if need_dW else 0
    if parallel:
        run_layer_(nb, (np.int64(BACKWARD_ROWS), g, out, x, W, db, dz, dx, dW, partial, act,
                        need_dx, 0.0, 0.0))
        run_layer_(nw, (np.int64(WEIGHT_ROWS), gw, out, x, W, db, dz, dx, dW, partial, act, need_dx,
                        float(alpha), float(beta)))
    else:
        for blk in range(nb):
            backward_rows_(blk, g, dz, dx, W, out, act, need_dx, partial)
        for blk in range(nw):
            weight_rows_(blk, gw, dW, x, dz, alpha, beta)
    sum_blocks_(db, partial, nb)


# (passed to ``run_layer_`` as np.int64(...): a global constant is a literal type, and
# numba compiled the runner, parallel=True form included, once per literal)
FORWARD, BACKWARD_ROWS, WEIGHT_ROWS = 0, 1, 2


@callee
def layer_block_(blk, op, g, out, x, W, b, dz, dx, dW, partial, act, flag, alpha, beta):
    """Block ``blk`` of one of a layer's passes, for the parallel runner (one compiled
    body and one runner for all three; each thread's GEMMs run in that thread, the
    caller holding BLAS at one thread): ``op`` FORWARD (``forward_block_``, flag:
    count, alpha: its part), BACKWARD_ROWS (``backward_rows_``, flag: need_dx),
    WEIGHT_ROWS (``weight_rows_``)."""
    if op == FORWARD:  # (alpha: forward_block_'s part)
        forward_block_(blk, g, out, x, W, b, act, flag, partial, np.int64(alpha))
    elif op == BACKWARD_ROWS:
        backward_rows_(blk, g, dz, dx, W, out, act, flag, partial)
    elif op == WEIGHT_ROWS:
        weight_rows_(blk, g, dW, x, dz, alpha, beta)



run_layer_ = runner(layer_block_)


# --- standalone activation layers ----------------------------------------------------


@inline
def act_forward_(out, x, act):
    """out = act(x); both (N, H)."""
    N, H = x.shape
    for n in range(N):
        for h in range(H):
            out[n, h] = act_value(x[n, h], act)


@inline
def act_backward_(dx, dout, out, act):
    """dx = dout * act'(out); all (N, H)."""
    N, H = dout.shape
    for n in range(N):
        for h in range(H):
            dx[n, h] = act_grad_value(dout[n, h], out[n, h], act)


@inline
def sgd_backward_(dx, db, dz, x, W, b, out, act, need_dx, lr):
    """``affine_act_backward_`` with SGD's step: W -= lr * x.T @ dz (in the GEMM), then
    b -= lr * db; dx uses the old W. ``db`` (H,) is scratch of the dtype."""
    affine_act_backward_(dx, W, db, dz, x, W, out, act, need_dx, True, -lr, 1.0, False,
                         np.empty((blocks_for(x.shape[0]), db.shape[0])))
    sgd_bias_(b, db, lr)


# --- the per-op API (fastnn.reference's names and signatures) ---------------------------


def _dtype(*arrays) -> np.dtype:
    dtype = np.result_type(*arrays)
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _c(a, dtype):
    """``a`` as a C-contiguous array of ``dtype`` (copied only when it is not one)."""
    return np.ascontiguousarray(a, dtype=dtype)


def _buffer(dest, shape, dtype):
    """A C-contiguous buffer to compute into: ``dest`` itself when it is one, else new."""
    if dest is not None and dest.flags.c_contiguous and dest.dtype == dtype:
        return dest
    return np.empty(shape, dtype)


def _deliver(dest, buf):
    """The result in ``dest`` when one was given (copying if ``buf`` is not it), else buf."""
    if dest is None or dest is buf:
        return buf
    dest[...] = buf
    return dest


def _forward(x, W, b, out, act, count=False):
    dtype = _dtype(x, W) if b is None else _dtype(x, W, b)
    x, W = _c(x, dtype), _c(W, dtype)
    # (no bias: -0.0, which adds nothing, see bias_act_)
    b = np.full(W.shape[1], -0.0, dtype) if b is None else _c(b, dtype)
    buf = _buffer(out, (x.shape[0], W.shape[1]), dtype)
    bad = affine_act_forward_(buf, x, W, b, act, count, False,
                              np.empty((blocks_for(x.shape[0]), 1)))
    return _deliver(out, buf), bad


def _backward(dout, x, W, out, act, dx, dW, db, need_dx, need_dW, overwrite_dout):
    dtype = _dtype(dout, x, W)
    N, H = dout.shape
    caller_dout = dout
    if overwrite_dout:
        dz = _buffer(dout, (N, H), dtype)
        if dz is not dout:
            dz[...] = dout
    else:
        dz = np.array(dout, dtype=dtype, order="C")
    x, W = _c(x, dtype), _c(W, dtype)
    out = dz if act == IDENTITY else _c(out, dtype)
    dx_buf = _buffer(dx, (N, W.shape[0]), dtype) if need_dx else dz
    dW_buf = _buffer(dW, W.shape, dtype) if need_dW else W
    db_buf = _buffer(db, (H,), dtype)
    affine_act_backward_(dx_buf, dW_buf, db_buf, dz, x, W, out, act, need_dx, need_dW, 1.0,
                         0.0, False, np.empty((blocks_for(N), H)))
    if overwrite_dout:
        _deliver(caller_dout, dz)  # dz is left in dout, whatever its layout
    return (_deliver(dx, dx_buf) if need_dx else None,
            _deliver(dW, dW_buf) if need_dW else None,
            _deliver(db, db_buf))


def affine_forward(x, W, b, out=None):
    """out = x @ W + b. x is (N, D), W is (D, H), b is (H,) or None (out = x @ W)."""
    return _forward(x, W, b, out, IDENTITY)[0]


def affine_relu_forward(x, W, b, out=None):
    """out = max(x @ W + b, 0): GEMM, then bias and ReLU in one pass in place."""
    return _forward(x, W, b, out, RELU)[0]


def affine_sigmoid_forward(x, W, b, out=None):
    """out = sigmoid(x @ W + b): GEMM, then bias and sigmoid in one pass in place."""
    return _forward(x, W, b, out, SIGMOID)[0]


def affine_act_forward_checked(x, W, b, activation, out=None):
    """(act(x @ W + b), number of non-finite pre-activations), in one pass after the GEMM.

    ``activation`` is a name in ``ACTIVATIONS``; b may be None (no bias). A non-zero
    count means x, W or b held NaN/Inf (or the product overflowed).
    """
    out, bad = _forward(x, W, b, out, ACTIVATIONS[activation], count=True)
    return out, int(bad)


def affine_backward(dout, x, W, dx=None, dW=None, db=None, need_dx=True, need_dW=True):
    """Gradients (dx, dW, db) of out = x @ W + b; dx / dW are None unless needed."""
    return _backward(dout, x, W, None, IDENTITY, dx, dW, db, need_dx, need_dW, False)


def affine_relu_backward(dout, x, W, out, dx=None, dW=None, db=None, need_dx=True,
                         overwrite_dout=False, need_dW=True):
    """Gradients of out = max(x @ W + b, 0): mask and db in one pass, then two GEMMs."""
    return _backward(dout, x, W, out, RELU, dx, dW, db, need_dx, need_dW, overwrite_dout)


def affine_sigmoid_backward(dout, x, W, out, dx=None, dW=None, db=None, need_dx=True,
                            overwrite_dout=False, need_dW=True):
    """Gradients of out = sigmoid(x @ W + b), given the forward ``out``."""
    return _backward(dout, x, W, out, SIGMOID, dx, dW, db, need_dx, need_dW, overwrite_dout)


def affine_act_backward_sgd(dout, x, W, b, out, activation, lr, dx=None, need_dx=True):
    """Backward of out = act(x @ W + b), then the SGD step of W and b; returns dx.

    dz = dout * act'(out) is left in ``dout``; dx = dz @ W.T uses the old W (None unless
    ``need_dx``); then W -= lr * x.T @ dz (the GEMM itself, beta = 1: dW is never
    stored) and b -= lr * sum_n dz (b None: no bias, no step). ``activation`` is
    "identity" (``out`` unused, may be None) or another name in ``ACTIVATIONS``.
    """
    act = ACTIVATIONS[activation]
    dtype = W.dtype
    N, H = dout.shape
    if b is None:  # no bias: an empty one, which the step leaves alone
        b = np.empty(0, dtype)
    dz, W_buf, b_buf = (_buffer(a, a.shape, dtype) for a in (dout, W, b))
    for buf, a in ((dz, dout), (W_buf, W), (b_buf, b)):
        if buf is not a:  # odd layouts: computed on a C copy, written back below
            buf[...] = a
    x = _c(x, dtype)
    out = dz if act == IDENTITY else _c(out, dtype)
    dx_buf = _buffer(dx, (N, W.shape[0]), dtype) if need_dx else dz
    db = np.empty(H, dtype)
    lr = dtype.type(lr)  # as NumPy's ``lr * grad`` rounds it for float32 parameters
    sgd_backward_(dx_buf, db, dz, x, W_buf, b_buf, out, act, need_dx, lr)
    for a, buf in ((dout, dz), (W, W_buf), (b, b_buf)):
        _deliver(a, buf)
    return _deliver(dx, dx_buf) if need_dx else None


def _activation(x, out, act):
    x = np.ascontiguousarray(x)
    buf = _buffer(out, x.shape, x.dtype)
    act_forward_(buf.reshape(x.shape[0], -1), x.reshape(x.shape[0], -1), act)
    return _deliver(out, buf)


def _activation_grad(dout, out, dx, act):
    dout, out = np.ascontiguousarray(dout), np.ascontiguousarray(out)
    buf = _buffer(dx, dout.shape, dout.dtype)
    act_backward_(buf.reshape(dout.shape[0], -1), dout.reshape(dout.shape[0], -1),
                  out.reshape(out.shape[0], -1), act)
    return _deliver(dx, buf)


def relu_forward(x, out=None):
    """out = max(x, 0)."""
    return _activation(x, out, RELU)


def relu_backward(dout, out, dx=None):
    """dx = dout where the forward output was positive, else 0."""
    return _activation_grad(dout, out, dx, RELU)


def sigmoid_forward(x, out=None):
    """out = 1 / (1 + exp(-x)), without overflow for large |x|."""
    return _activation(x, out, SIGMOID)


def sigmoid_backward(dout, out, dx=None):
    """dx = dout * y * (1 - y), y = ``out``."""
    return _activation_grad(dout, out, dx, SIGMOID)


def tanh_forward(x, out=None):
    """out = tanh(x)."""
    return _activation(x, out, TANH)


def tanh_backward(dout, out, dx=None):
    """dx = dout * (1 - y^2), y = ``out``."""
    return _activation_grad(dout, out, dx, TANH)

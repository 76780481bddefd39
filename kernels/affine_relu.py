"""Fused affine + activation forward and backward.

The GEMMs stay in BLAS: NumPy's own OpenBLAS, called from inside the kernel (see
``_blas``), so a layer is one compiled call. Everything between the GEMMs is one pass:

* forward: ``out = act(x @ W + b)``: GEMM into ``out``, then bias + activation in place;
* backward: ``dz = dout * act'(out)`` and ``db = sum_n dz`` in one pass, then
  ``dx = dz @ W.T`` (unless the first layer) and ``dW = x.T @ dz`` through BLAS;
* backward with the SGD step (``affine_act_backward_sgd``): as above, but the weights'
  GEMM is ``W -= lr * x.T @ dz`` itself (beta = 1) and ``b -= lr * db`` follows.

Where NumPy's BLAS cannot be bound, or for arrays that are not C-contiguous, the same
passes run as separate kernels with ``np.dot`` called from Python between them.

Activations are coded as integers (IDENTITY, RELU, SIGMOID) so one kernel serves all;
the branch is loop-invariant and LLVM hoists it. Same names and signatures as
``fastnn.reference``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from . import _blas
from ._blas import gemm
from ._config import COMMON, kernel, n_chunks
from .sgd import sgd_update, sgd_update_affine

IDENTITY, RELU, SIGMOID = 0, 1, 2


@njit(inline="always", **COMMON)
def act_value(v, act):
    """act(v) for one pre-activation: ReLU keeps NaN (as np.maximum), sigmoid never overflows."""
    if act == RELU:
        return 0 if v < 0 else v
    if act == SIGMOID:
        if v >= 0:
            return 1.0 / (1.0 + math.exp(-v))
        e = math.exp(v)
        return e / (1.0 + e)
    return v


@njit(inline="always", **COMMON)
def act_grad_value(g, y, act):
    """g * act'(.) given the activation's output y: ReLU passes where y > 0."""
    if act == RELU:
        return g if y > 0 else 0
    if act == SIGMOID:
        return g * y * (1 - y)
    return g


@njit(inline="always", **COMMON)
def _bias_act(out, b, act, count):
    N, H = out.shape
    bad = 0
    for n in prange(N):
        for h in range(H):
            v = out[n, h] + b[h]
            if count:
                bad += not math.isfinite(v)
            out[n, h] = act_value(v, act)
    return bad


@kernel
def bias_act_(out, b, act, count):
    """In place: out = act(out + b). out is (N, H) from x @ W, b is (H,).

    With ``count``, returns how many pre-activations (out + b) were NaN or +-Inf: the
    first layer's count tells the Python layer whether x held any, in the same pass.
    """
    return _bias_act(out, b, act, count)


@kernel
def dense_forward_(x, W, b, out, act, count):
    """out = act(x @ W + b): a BLAS GEMM into out, then ``bias_act_``'s pass; its count.

    x (N, D), W (D, H), b (H,), out (N, H): C-contiguous, one dtype (``_blas.gemm``).
    """
    gemm(False, False, 1.0, x, W, 0.0, out)
    return _bias_act(out, b, act, count)


@kernel
def act_(out, x, act):
    """out = act(x) for a standalone activation layer; x and out are (N, H)."""
    N, H = x.shape
    for n in prange(N):
        for h in range(H):
            out[n, h] = act_value(x[n, h], act)


@njit(inline="always", **COMMON)
def _grad_rows(dz, dout, out, acc, start, stop, act):
    """Rows start..stop: dz = act'(out) * dout, and their column sums added to acc."""
    H = dz.shape[1]
    for n in range(start, stop):
        zrow, drow, orow = dz[n], dout[n], out[n]
        for h in range(H):
            g = act_grad_value(drow[h], orow[h], act)
            zrow[h] = g
            acc[h] += g


@njit(inline="always", **COMMON)
def _grad_colsum(dz, dout, out, db, act, partial):
    N = dz.shape[0]
    chunks = partial.shape[0]
    partial[...] = 0
    for c in prange(chunks):
        _grad_rows(dz, dout, out, partial[c], c * N // chunks, (c + 1) * N // chunks, act)
    _sum_partials(db, partial)


@njit(inline="always", **COMMON)
def _sum_partials(db, partial):
    """db = the column sums of partial (chunks, H), added in chunk order."""
    for h in range(partial.shape[1]):
        total = 0.0
        for c in range(partial.shape[0]):
            total += partial[c, h]
        db[h] = total


@kernel
def act_grad_colsum_(dz, out, db, act, partial):
    """In place: dz = dz * act'(out), and db = sum over n of the result, in one pass.

    dz (the upstream gradient on entry), out are (N, H); db is (H,). ``partial`` is
    float64 scratch of shape (chunks, H): each row block sums into its own row (no two
    iterations write one element), then the rows are added serially. Scratch passed
    in keeps the kernel free of allocations. (In place, one array goes in: two arguments
    that alias make LLVM's runtime overlap check pick its scalar loop, 4x slower.)
    """
    _grad_colsum(dz, dz, out, db, act, partial)


@kernel
def act_grad_colsum_into(dz, dout, out, db, act, partial):
    """``act_grad_colsum_`` from dout into a separate dz (dout is left unchanged)."""
    _grad_colsum(dz, dout, out, db, act, partial)


@njit(inline="always", **COMMON)
def _colsum(db, dout, partial):
    N, H = dout.shape
    chunks = partial.shape[0]
    partial[...] = 0
    for c in prange(chunks):
        for n in range(c * N // chunks, (c + 1) * N // chunks):
            for h in range(H):
                partial[c, h] += dout[n, h]
    _sum_partials(db, partial)


@kernel
def colsum(db, dout, partial):
    """db = sum over n of dout; dout is (N, H), db is (H,); partial as above."""
    _colsum(db, dout, partial)


@kernel
def dense_backward_(dz, x, W, out, act, db, partial, dx, need_dx, C, need_c, alpha, beta,
                    b, lr):
    """A layer's whole backward pass (and optionally its SGD step) in one call.

    In order: dz (the upstream gradient on entry) becomes dz * act'(out) and db its
    column sums (``act_grad_colsum_``, or ``colsum`` for IDENTITY, where out is unused);
    dx = dz @ W.T if ``need_dx``; C = alpha * x.T @ dz + beta * C if ``need_c``; and
    b -= lr * db if lr != 0. Gradients: C = dW, alpha 1, beta 0, lr 0. SGD: C = W,
    alpha -lr, beta 1: W's step is the GEMM itself, after dx has used the old W.
    Arrays are C-contiguous of one dtype; unused ones may be any array of that type.
    """
    if act == IDENTITY:
        _colsum(db, dz, partial)
    else:
        _grad_colsum(dz, dz, out, db, act, partial)
    if need_dx:
        gemm(False, True, 1.0, dz, W, 0.0, dx)
    if need_c:
        gemm(True, False, alpha, x, dz, beta, C)
    if lr != 0:
        for h in range(b.shape[0]):
            b[h] -= lr * db[h]


@kernel
def act_grad(dx, dout, out, act):
    """dx = dout * act'(out) for a standalone activation layer."""
    N, H = dout.shape
    for n in prange(N):
        for h in range(H):
            dx[n, h] = act_grad_value(dout[n, h], out[n, h], act)


def _gemm_act(x, W, b, out, act, count=False):
    # x is (N, D), W is (D, H), b is (H,) -> out (N, H), and the non-finite count
    if out is None:
        out = np.empty((x.shape[0], W.shape[1]), dtype=np.result_type(x, W))
    if _blas.takes(out.dtype, x, W, b, out):
        return out, dense_forward_.pick(out.size)(x, W, b, out, act, count)
    np.dot(x, W, out=out)
    return out, bias_act_.pick(out.size)(out, np.ascontiguousarray(b), act, count)


def _backward(dout, x, W, out, dx, dW, db, need_dx, overwrite_dout, act, need_dW=True):
    # dout, out are (N, H); x is (N, D); W is (D, H)
    N, H = dout.shape
    dtype = dout.dtype
    partial = np.empty((n_chunks(dout.size), H))  # H floats per thread: scratch for db
    if ((act == IDENTITY or overwrite_dout)
            and _blas.takes(dtype, dout, x, W, *(a for a in (out, dx, dW, db) if a is not None))):
        # one compiled call: pass, then the GEMMs (dz stays in dout)
        if db is None:
            db = np.empty(H, dtype)
        if need_dx and dx is None:
            dx = np.empty((N, W.shape[0]), dtype)
        if need_dW and dW is None:
            dW = np.empty(W.shape, dtype)
        dense_backward_.pick(dout.size)(
            dout, x, W, dout if out is None else out, act, db, partial,
            dx if need_dx else dout, need_dx, dW if need_dW else W, need_dW, 1.0, 0.0, db, 0.0)
        return (dx if need_dx else None), (dW if need_dW else None), db
    # separate passes with np.dot between them; the passes read C-contiguous arrays (one
    # compiled layout): copies only for odd inputs
    caller_dout, dout = dout, np.ascontiguousarray(dout)
    if db is None:
        db = np.empty(H, dtype=dtype)
    if act == IDENTITY:  # dz is dout itself: only the bias gradient needs a pass
        dz = dout
        colsum.pick(dout.size)(db, dout, partial)
    elif overwrite_dout:
        dz = dout
        act_grad_colsum_.pick(dout.size)(dz, np.ascontiguousarray(out), db, act, partial)
        if dz is not caller_dout:  # a strided dout was copied: it still gets dz, as promised
            caller_dout[...] = dz
    else:
        dz = np.empty_like(dout)
        act_grad_colsum_into.pick(dout.size)(dz, dout, np.ascontiguousarray(out), db, act,
                                             partial)
    dW = np.dot(x.T, dz, out=dW) if need_dW else None
    dx = np.dot(dz, W.T, out=dx) if need_dx else None
    return dx, dW, db


def affine_forward(x, W, b, out=None):
    """out = x @ W + b. x is (N, D), W is (D, H), b is (H,); out is (N, H)."""
    return _gemm_act(x, W, b, out, IDENTITY)[0]


def affine_backward(dout, x, W, dx=None, dW=None, db=None, need_dx=True, need_dW=True):
    """Gradients (dx, dW, db) of out = x @ W + b; dx / dW are None unless needed."""
    return _backward(dout, x, W, None, dx, dW, db, need_dx, False, IDENTITY, need_dW)


def affine_relu_forward(x, W, b, out=None):
    """out = max(x @ W + b, 0): GEMM, then bias and ReLU in one pass in place."""
    return _gemm_act(x, W, b, out, RELU)[0]


def affine_relu_backward(dout, x, W, out, dx=None, dW=None, db=None, need_dx=True,
                         overwrite_dout=False, need_dW=True):
    """Gradients of out = max(x @ W + b, 0): mask and db in one pass, then two GEMMs."""
    return _backward(dout, x, W, out, dx, dW, db, need_dx, overwrite_dout, RELU, need_dW)


def affine_sigmoid_forward(x, W, b, out=None):
    """out = sigmoid(x @ W + b): GEMM, then bias and sigmoid in one pass in place."""
    return _gemm_act(x, W, b, out, SIGMOID)[0]


_ACTS = {"identity": IDENTITY, "relu": RELU, "sigmoid": SIGMOID}


def affine_act_forward_checked(x, W, b, activation, out=None):
    """(act(x @ W + b), number of non-finite pre-activations), in one pass after the GEMM.

    ``activation`` is "identity", "relu" or "sigmoid". A non-zero count means x, W or b
    held NaN/Inf (or the product overflowed): the network's first layer uses it to
    validate x without a separate pass over it.
    """
    return _gemm_act(x, W, b, out, _ACTS[activation], count=True)


def affine_sigmoid_backward(dout, x, W, out, dx=None, dW=None, db=None, need_dx=True,
                            overwrite_dout=False, need_dW=True):
    """Gradients of out = sigmoid(x @ W + b), given the forward ``out``."""
    return _backward(dout, x, W, out, dx, dW, db, need_dx, overwrite_dout, SIGMOID,
                     need_dW)


def affine_act_backward_sgd(dout, x, W, b, out, activation, lr, dx=None, need_dx=True):
    """Backward of out = act(x @ W + b), then the SGD step of W and b; returns dx.

    dz = dout * act'(out) is left in ``dout``; dx = dz @ W.T uses the old W (None unless
    ``need_dx``); then W -= lr * x.T @ dz and b -= lr * sum_n dz. ``activation`` is
    "identity" (``out`` unused, may be None), "relu" or "sigmoid". With NumPy's BLAS
    bound this is one compiled call and W's step is its GEMM (dW is never stored).
    """
    act = _ACTS[activation]
    N, H = dout.shape
    dtype = W.dtype
    if _blas.takes(dtype, dout, x, W, b, *(a for a in (out, dx) if a is not None)):
        if need_dx and dx is None:
            dx = np.empty((N, W.shape[0]), dtype)
        db = np.empty(H, dtype)
        lr = dtype.type(lr)  # as NumPy's ``lr * grad`` rounds it for float32 parameters
        dense_backward_.pick(dout.size)(
            dout, x, W, dout if out is None else out, act, db, np.empty((n_chunks(dout.size), H)),
            dx if need_dx else dout, need_dx, W, True, -lr, 1.0, b, lr)
        return dx if need_dx else None
    dx, _, db = _backward(dout, x, W, out, dx, None, None, need_dx, True, act, need_dW=False)
    sgd_update_affine(W, x, dout, lr)
    sgd_update(b, db, lr)
    return dx


def _activation(x, out, act):
    x = np.ascontiguousarray(x)
    if out is None:
        out = np.empty(x.shape, dtype=x.dtype)
    x2, out2 = x.reshape(x.shape[0], -1), out.reshape(out.shape[0], -1)
    act_.pick(x.size)(out2, x2, act)
    return out


def _activation_grad(dout, out, dx, act):
    dout, out = np.ascontiguousarray(dout), np.ascontiguousarray(out)
    if dx is None:
        dx = np.empty(dout.shape, dtype=dout.dtype)
    dout2, out2 = dout.reshape(dout.shape[0], -1), out.reshape(out.shape[0], -1)
    act_grad.pick(dout.size)(dx.reshape(dx.shape[0], -1), dout2, out2, act)
    return dx


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

"""Fused affine + activation forward and backward.

The GEMMs stay in BLAS (``np.dot`` with an output buffer, called from Python: NumPy's
OpenBLAS measured faster here than numba's in-kernel ``np.dot``, which goes through
SciPy's). Everything between the GEMMs is one pass:

* forward: ``out = act(x @ W + b)``: GEMM into ``out``, then bias + activation in place;
* backward: ``dz = dout * act'(out)`` and ``db = sum_n dz`` in one pass, then
  ``dW = x.T @ dz`` and (unless the first layer) ``dx = dz @ W.T`` through BLAS.

Activations are coded as integers (IDENTITY, RELU, SIGMOID) so one kernel serves all;
the branch is loop-invariant and LLVM hoists it. Same names and signatures as
``fastnn.reference``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._config import COMMON, kernel, n_chunks

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


@kernel
def bias_act_(out, b, act, count):
    """In place: out = act(out + b). out is (N, H) from x @ W, b is (H,).

    With ``count``, returns how many pre-activations (out + b) were NaN or +-Inf: the
    first layer's count tells the Python layer whether x held any, in the same pass.
    """
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


@kernel
def colsum(db, dout, partial):
    """db = sum over n of dout; dout is (N, H), db is (H,); partial as above."""
    N, H = dout.shape
    chunks = partial.shape[0]
    partial[...] = 0
    for c in prange(chunks):
        for n in range(c * N // chunks, (c + 1) * N // chunks):
            for h in range(H):
                partial[c, h] += dout[n, h]
    _sum_partials(db, partial)


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
    np.dot(x, W, out=out)
    return out, bias_act_.pick(out.size)(out, np.ascontiguousarray(b), act, count)


def _backward(dout, x, W, out, dx, dW, db, need_dx, overwrite_dout, act, need_dW=True):
    # dout, out are (N, H); x is (N, D); W is (D, H)
    # the passes read C-contiguous arrays (one compiled layout); copies only for odd inputs
    caller_dout, dout = dout, np.ascontiguousarray(dout)
    N, H = dout.shape
    if db is None:
        db = np.empty(H, dtype=dout.dtype)
    partial = np.empty((n_chunks(dout.size), H))  # H floats per thread: scratch for db
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

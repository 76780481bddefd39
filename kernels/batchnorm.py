"""Batch normalisation and Dropout of a hidden layer: forward and backward, written once.

A hidden layer of the book's extended network is Affine -> BatchNorm -> activation ->
Dropout. The affine part is ``affine_act``'s; these bodies do the rest, each in as few
passes over the (N, H) block as its reductions allow:

* ``batchnorm_act_forward_``: ``z`` (the affine output, in the ``xc`` block) becomes
  ``xc = z - mean`` (training: the batch mean, and the biased batch variance give
  ``std = sqrt(var + eps)``; prediction: the running statistics), then
  ``out = act(gamma * xc / std + beta)``, then ``out *= drop``, ``drop`` being the dropout
  mask (training) or ``1 - ratio`` (prediction); training also moves the running
  statistics (``running = momentum * running + (1 - momentum) * batch``).
* ``batchnorm_act_backward_``: from ``dy`` (the gradient at the layer's output): the
  dropout mask and the activation's gradient, ``dgamma``, ``dbeta``, and the gradient at
  ``z``, in the same order of operations as the book's ``BatchNormalization.backward``.
* ``dropout_forward_`` / ``dropout_backward_``: Dropout alone (a layer without BatchNorm,
  after its affine + activation pass).

Column sums accumulate in float64, row after row (NumPy's order for ``axis=0``).
``scratch`` is float64 (4, H) work space.
"""

from __future__ import annotations

import math

import numpy as np

from ._config import inline
from .affine_act import IDENTITY, act_grad_value, act_value

EPS = 10e-7  # the book's epsilon (1e-6)
MOMENTUM = 0.9  # the book's running-statistics momentum


@inline
def dropout_forward_(out, mask, train, keep):
    """In place: out *= mask (training) or keep (prediction): the book's Dropout.

    (A pass of its own, not a select inside the activation pass: there LLVM computes both
    products, and the unused mask buffer's garbage can be subnormal, 4x slower.)
    """
    N, H = out.shape
    if train:
        for n in range(N):
            for h in range(H):
                out[n, h] = out[n, h] * mask[n, h]
    else:
        for n in range(N):
            for h in range(H):
                out[n, h] = out[n, h] * keep


@inline
def batchnorm_act_forward_(out, xc, std, gamma, beta, rmean, rvar, mask, act, train,
                           dropout, keep, scratch):
    """out = act(BatchNorm(z)) * drop; z is in ``xc`` on entry, x - mean after.

    out, xc, mask are (N, H); std, gamma, beta, rmean, rvar are (H,). Training uses the
    batch's statistics (std is kept for the backward pass) and updates rmean and rvar;
    prediction uses rmean and rvar. ``dropout`` False: no mask and no scaling.
    """
    N, H = xc.shape
    if train:
        mu, var = scratch[0], scratch[1]
        for h in range(H):
            mu[h] = 0.0
            var[h] = 0.0
        for n in range(N):
            for h in range(H):
                mu[h] += xc[n, h]
        for h in range(H):
            mu[h] = mu[h] / N
        for n in range(N):
            for h in range(H):
                c = xc[n, h] - mu[h]
                xc[n, h] = c
                var[h] += c * c
        for h in range(H):
            var[h] = var[h] / N
            std[h] = math.sqrt(var[h] + EPS)
            rmean[h] = MOMENTUM * rmean[h] + (1 - MOMENTUM) * mu[h]
            rvar[h] = MOMENTUM * rvar[h] + (1 - MOMENTUM) * var[h]
    else:
        for h in range(H):
            std[h] = math.sqrt(rvar[h] + EPS)
        for n in range(N):
            for h in range(H):
                xc[n, h] = xc[n, h] - rmean[h]
    for n in range(N):
        for h in range(H):
            out[n, h] = act_value(gamma[h] * (xc[n, h] / std[h]) + beta[h], act)
    if dropout:
        dropout_forward_(out, mask, train, keep)


@inline
def batchnorm_act_backward_(dz, dgamma, dbeta, out, xc, std, gamma, mask, act, dropout,
                            scratch):
    """In place: dz holds dy (the layer output's gradient) on entry, the gradient at the
    affine output z after; dgamma and dbeta (H,) are written.

    out (the layer's output), xc and std are what ``batchnorm_act_forward_`` kept.
    """
    N, H = dz.shape
    sb, sg, sd, sm = scratch[0], scratch[1], scratch[2], scratch[3]
    for h in range(H):
        sb[h] = 0.0
        sg[h] = 0.0
        sd[h] = 0.0
        sm[h] = 0.0
    for n in range(N):  # dout = drop' * act'; dbeta, dgamma; the std's gradient sum
        for h in range(H):
            g = dz[n, h] * mask[n, h] if dropout else dz[n, h]
            g = act_grad_value(g, out[n, h], act)
            c = xc[n, h]
            sb[h] += g
            sg[h] += (c / std[h]) * g
            dxn = gamma[h] * g
            sd[h] += (dxn * c) / (std[h] * std[h])
            dz[n, h] = dxn
    for h in range(H):
        dbeta[h] = sb[h]
        dgamma[h] = sg[h]
        sd[h] = 0.5 * -sd[h] / std[h]  # dvar
    two_n = 2.0 / N
    for n in range(N):
        for h in range(H):
            d = dz[n, h] / std[h] + (two_n * xc[n, h]) * sd[h]
            dz[n, h] = d
            sm[h] += d
    for n in range(N):
        for h in range(H):
            dz[n, h] = dz[n, h] - sm[h] / N


@inline
def dropout_backward_(dz, mask):
    """In place: dz *= mask (the gradient of the book's non-inverted Dropout)."""
    N, H = dz.shape
    for n in range(N):
        for h in range(H):
            dz[n, h] = dz[n, h] * mask[n, h]


# --- the per-op API (fastnn.reference's names and signatures) ---------------------------


def _float(*arrays):
    dtype = np.result_type(*arrays)
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def batchnorm_forward(x, gamma, beta, running_mean, running_var, train):
    """Batch normalisation of x (N, H): (out, xc, std); training moves the running
    statistics in place (see ``fastnn.reference.batchnorm_forward``)."""
    dtype = _float(x, gamma, beta)
    x2 = np.ascontiguousarray(x, dtype)
    N, H = x2.shape
    xc = x2.copy()
    out, std = np.empty((N, H), dtype), np.empty(H, dtype)
    rm, rv = (np.ascontiguousarray(a, dtype) for a in (running_mean, running_var))
    batchnorm_act_forward_(out, xc, std, np.ascontiguousarray(gamma, dtype),
                           np.ascontiguousarray(beta, dtype), rm, rv, out, IDENTITY,
                           bool(train), False, dtype.type(1.0), np.empty((4, H)))
    for dest, buf in ((running_mean, rm), (running_var, rv)):
        if dest is not buf:
            dest[...] = buf
    return out, xc, std


def batchnorm_backward(dout, xc, std, gamma):
    """Gradients (dx, dgamma, dbeta) of a training-mode ``batchnorm_forward``."""
    dtype = _float(dout, xc, gamma)
    dz = np.array(dout, dtype=dtype, order="C")
    H = dz.shape[1]
    dgamma, dbeta = np.empty(H, dtype), np.empty(H, dtype)
    batchnorm_act_backward_(dz, dgamma, dbeta, dz, np.ascontiguousarray(xc, dtype),
                            np.ascontiguousarray(std, dtype),
                            np.ascontiguousarray(gamma, dtype), dz, IDENTITY, False,
                            np.empty((4, H)))
    return dz, dgamma, dbeta


def dropout_forward(x, mask, train, ratio):
    """The book's (non-inverted) Dropout: x * mask in training, x * (1 - ratio) else."""
    dtype = _float(x)
    out = np.array(x, dtype=dtype, order="C").reshape(x.shape[0], -1)
    m = np.ascontiguousarray(mask, dtype).reshape(out.shape) if train else out
    dropout_forward_(out, m, bool(train), dtype.type(1.0 - ratio))
    return out.reshape(x.shape)


def dropout_backward(dout, mask):
    """dx = dout * mask."""
    dtype = _float(dout)
    dz = np.array(dout, dtype=dtype, order="C").reshape(dout.shape[0], -1)
    dropout_backward_(dz, np.ascontiguousarray(mask, dtype).reshape(dz.shape))
    return dz.reshape(dout.shape)

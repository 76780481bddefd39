"""An affine layer and the activations, forward and backward (NumPy twins of
``kernels/affine_act.py``)."""

from __future__ import annotations

import numpy as np

from ._into import _into
from .optim import sgd_update, sgd_update_affine

# --- affine -----------------------------------------------------------------------


def affine_forward(x, W, b, out=None):
    """out = x @ W + b. x is (N, D), W is (D, H), b is (H,) or None (out = x @ W)."""
    return _into(out, np.dot(x, W) if b is None else np.dot(x, W) + b)


def affine_backward(dout, x, W, dx=None, dW=None, db=None, need_dx=True, need_dW=True):
    """Gradients of out = x @ W + b. dout is (N, H); returns (dx, dW, db).

    ``dx`` is None when ``need_dx`` is False (the first layer never needs it), ``dW`` is
    None when ``need_dW`` is False (``sgd_update_affine`` applies it instead).
    """
    grad_x = np.dot(dout, W.T) if need_dx else None
    grad_W = np.dot(x.T, dout) if need_dW else None
    grad_b = np.sum(dout, axis=0)
    return _into(dx, grad_x), _into(dW, grad_W), _into(db, grad_b)


# --- ReLU -------------------------------------------------------------------------


def relu_forward(x, out=None):
    """out = max(x, 0)."""
    return _into(out, np.maximum(x, 0))


def relu_backward(dout, out, dx=None):
    """dx = dout where the forward output was positive, else 0 (also at exactly 0)."""
    return _into(dx, dout * (out > 0))


def affine_relu_forward(x, W, b, out=None):
    """out = max(x @ W + b, 0): affine then ReLU, unfused."""
    return _into(out, relu_forward(affine_forward(x, W, b)))


def affine_relu_backward(dout, x, W, out, dx=None, dW=None, db=None, need_dx=True,
                         overwrite_dout=False, need_dW=True):
    """Gradients of out = max(x @ W + b, 0), given dout (N, H) and the forward ``out``.

    With ``overwrite_dout`` the masked gradient dz is left in ``dout``.
    """
    dz = relu_backward(dout, out)
    if overwrite_dout:
        dout[...] = dz
    return affine_backward(dz, x, W, dx, dW, db, need_dx, need_dW)


# --- sigmoid ----------------------------------------------------------------------


def sigmoid_forward(x, out=None):
    """out = 1 / (1 + exp(-x)), without overflow for large |x|."""
    e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    return _into(out, np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False))


def sigmoid_backward(dout, out, dx=None):
    """dx = dout * y * (1 - y), where y = ``out`` is the forward output."""
    return _into(dx, dout * out * (1 - out))


def affine_sigmoid_forward(x, W, b, out=None):
    """out = sigmoid(x @ W + b), unfused."""
    return _into(out, sigmoid_forward(affine_forward(x, W, b)))


def affine_sigmoid_backward(dout, x, W, out, dx=None, dW=None, db=None, need_dx=True,
                            overwrite_dout=False, need_dW=True):
    """Gradients of out = sigmoid(x @ W + b), given dout (N, H) and the forward ``out``.

    With ``overwrite_dout`` the gradient dz before the affine layer is left in ``dout``.
    """
    dz = sigmoid_backward(dout, out)
    if overwrite_dout:
        dout[...] = dz
    return affine_backward(dz, x, W, dx, dW, db, need_dx, need_dW)


# --- tanh -------------------------------------------------------------------------


def tanh_forward(x, out=None):
    """out = tanh(x)."""
    return _into(out, np.tanh(x))


def tanh_backward(dout, out, dx=None):
    """dx = dout * (1 - y^2), where y = ``out`` is the forward output."""
    return _into(dx, dout * (1 - out * out))


def _identity(z, out=None):
    return _into(out, z)


# Every activation by name: (forward, backward from the output). The one table the
# reference's layers and whole-network passes read; a new activation is its two
# functions above and a row here.
ACTIVATIONS = {
    "identity": (_identity, lambda dout, out, dx=None: _into(dx, dout)),
    "relu": (relu_forward, relu_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "tanh": (tanh_forward, tanh_backward),
}


def affine_act_forward_checked(x, W, b, activation, out=None):
    """(act(x @ W + b), number of non-finite pre-activations).

    ``activation`` is a name in ``ACTIVATIONS``. A non-zero count means x, W or b held
    NaN/Inf (or the product overflowed); ``Sequential`` validates x with it.
    """
    z = affine_forward(x, W, b)
    n_bad = int(np.count_nonzero(~np.isfinite(z)))
    return _into(out, ACTIVATIONS[activation][0](z)), n_bad


def affine_act_backward_sgd(dout, x, W, b, out, activation, lr, dx=None, need_dx=True):
    """Backward of out = act(x @ W + b), then the SGD step of W and b; returns dx.

    ``activation`` is a name in ``ACTIVATIONS`` ("identity": ``out`` unused, may be None).
    dz = dout * act'(out) is left in ``dout``; dx = dz @ W.T is computed with the old W
    (None unless ``need_dx``); then W -= lr * x.T @ dz and b -= lr * sum_n dz: the same
    numbers as the layer's gradients followed by ``sgd_update`` of each.
    """
    if activation == "identity":
        dz = dout
    else:
        dz = ACTIVATIONS[activation][1](dout, out)
        dout[...] = dz
    grad_x, _, grad_b = affine_backward(dz, x, W, dx, None, None, need_dx, need_dW=False)
    sgd_update_affine(W, x, dz, lr)
    if b is not None:
        sgd_update(b, grad_b, lr)
    return grad_x

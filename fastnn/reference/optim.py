"""The optimizers' updates (NumPy twins of ``kernels/optim.py``)."""

from __future__ import annotations

import numpy as np

# --- optimiser ---------------------------------------------------------


def sgd_update(param, grad, lr):
    """In place: param -= lr * grad."""
    param -= lr * grad


def sgd_update_affine(W, x, dz, lr):
    """In place: W -= lr * (x.T @ dz), the SGD step of an affine layer's weights.

    x is (N, D), dz (N, H) the gradient at the layer's output, W (D, H).
    """
    W -= lr * np.dot(x.T, dz)


def momentum_update(param, grad, v, lr, momentum):
    """In place: v = momentum * v - lr * grad; param += v."""
    v[...] = momentum * v - lr * grad
    param += v


def nesterov_update(param, grad, v, lr, momentum):
    """In place (the book's corrected Nesterov): param += momentum**2 * v, param -=
    (1 + momentum) * lr * grad, then v = momentum * v - lr * grad."""
    param += momentum * momentum * v
    param -= (1 + momentum) * lr * grad
    v *= momentum
    v -= lr * grad


def adagrad_update(param, grad, h, lr):
    """In place: h += grad**2; param -= lr * grad / (sqrt(h) + 1e-7)."""
    h += grad * grad
    param -= lr * grad / (np.sqrt(h) + 1e-7)


def rmsprop_update(param, grad, h, lr, decay_rate):
    """In place: h = decay_rate * h + (1 - decay_rate) * grad**2; param -= lr * grad /
    (sqrt(h) + 1e-7)."""
    h *= decay_rate
    h += (1 - decay_rate) * grad * grad
    param -= lr * grad / (np.sqrt(h) + 1e-7)


def adam_update(param, grad, m, v, lr, beta1, beta2, step):
    """In place, Adam's update number ``step`` (1 for the first): with
    lr_t = lr * sqrt(1 - beta2**step) / (1 - beta1**step), m += (1 - beta1) * (grad - m),
    v += (1 - beta2) * (grad**2 - v), param -= lr_t * m / (sqrt(v) + 1e-7)."""
    lr_t = lr * np.sqrt(1.0 - beta2 ** step) / (1.0 - beta1 ** step)
    m += (1 - beta1) * (grad - m)
    v += (1 - beta2) * (grad ** 2 - v)
    param -= lr_t * m / (np.sqrt(v) + 1e-7)

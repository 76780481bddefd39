"""BatchNorm and Dropout, forward and backward (NumPy twins of ``kernels/batchnorm.py``)."""

from __future__ import annotations

import numpy as np

# --- BatchNorm and Dropout ----------------------------------------------------------

BN_EPS = 10e-7  # the book's epsilon (1e-6)
BN_MOMENTUM = 0.9


def batchnorm_forward(x, gamma, beta, running_mean, running_var, train):
    """Batch normalisation of x (N, H): (out, xc, std).

    Training: the batch mean and biased variance, ``xc = x - mean``,
    ``std = sqrt(var + 1e-6)``, and the running statistics move in place
    (``running = 0.9 * running + 0.1 * batch``). Prediction: xc and std from the running
    statistics. out = gamma * xc / std + beta.
    """
    if train:
        mu = x.mean(axis=0)
        xc = x - mu
        var = np.mean(xc ** 2, axis=0)
        std = np.sqrt(var + BN_EPS)
        running_mean[...] = BN_MOMENTUM * running_mean + (1 - BN_MOMENTUM) * mu
        running_var[...] = BN_MOMENTUM * running_var + (1 - BN_MOMENTUM) * var
    else:
        xc = x - running_mean
        std = np.sqrt(running_var + BN_EPS)
    return gamma * (xc / std) + beta, xc, std


def batchnorm_backward(dout, xc, std, gamma):
    """Gradients (dx, dgamma, dbeta) of a training-mode ``batchnorm_forward``."""
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = np.sum((xc / std) * dout, axis=0)
    dxn = gamma * dout
    dxc = dxn / std
    dstd = -np.sum((dxn * xc) / (std * std), axis=0)
    dvar = 0.5 * dstd / std
    dxc += (2.0 / N) * xc * dvar
    dmu = np.sum(dxc, axis=0)
    return dxc - dmu / N, dgamma, dbeta


def dropout_forward(x, mask, train, ratio):
    """The book's (non-inverted) Dropout: x * mask in training, x * (1 - ratio) else."""
    return x * mask if train else x * (1.0 - ratio)


def dropout_backward(dout, mask):
    """dx = dout * mask."""
    return dout * mask

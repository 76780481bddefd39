"""Gradient checking: backpropagation against central differences."""

from __future__ import annotations

import numpy as np


def gradient_check(net, x, t, h: float = 1e-5) -> dict[str, float]:
    """Largest relative error per parameter between backprop and numerical gradients.

    For each parameter the error is ``max|analytic - numeric| / max(max|analytic|,
    max|numeric|, floor)``: the worst element, relative to the scale of that parameter's
    gradient (an element-wise ratio would blow up on entries that are both ~0); the floor
    is 1e-3 of the largest gradient of the network.
    The numerical side always runs on a float64 copy of ``net`` with the NumPy backend,
    so a float32 network is checked against float64 differences.

    Returns a dict ``{"W1": err, "b1": err, ...}``; values below ~1e-6 in float64 mean
    the backward pass is right. BatchNorm runs in training mode on both sides, and both
    sides use the same dropout masks (drawn once).
    """
    from .convnet import ConvNet
    from .sequential import Sequential

    if not isinstance(net, (Sequential, ConvNet)):
        raise TypeError(f"net: expected a fastnn.Sequential, SimpleConvNet or DeepConvNet, "
                        f"got {type(net).__name__}")
    with net.engine.fixed_masks() as masks:
        analytic = net.gradient(x, t)
    ref = net.copy(backend="numpy", dtype=np.float64)
    with ref.engine.fixed_masks(masks or None):
        numeric = ref.numerical_gradient(x, t, h=h)
    errors = {}
    # a floor for the scale: gradients that are zero in exact arithmetic (a bias before a
    # BatchNorm) compare as rounding noise, not as a 100 % error
    floor = max(max(float(np.max(np.abs(g))) for g in numeric.values()) * 1e-3,
                np.finfo(np.float64).tiny)
    for key, a in analytic.items():
        a = a.astype(np.float64)
        n = numeric[key]
        scale = max(np.max(np.abs(a)), np.max(np.abs(n)), floor)
        errors[key] = float(np.max(np.abs(a - n)) / scale)
    return errors

"""Optimisers: ``update(params, grads)`` changes the parameters in place."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import _validation as V
from . import reference
from .params import Gradients, ParamDict


def _check_pair(params, grads) -> None:
    """Reject a missing, misshapen or non-numeric gradient before anything changes."""
    for name, value in (("params", params), ("grads", grads)):
        if not isinstance(value, Mapping):
            raise TypeError(f"{name}: expected a dict of arrays, got {type(value).__name__}")
    for key, p in params.items():
        if key not in grads:
            raise ValueError(f"grads: missing the gradient for parameter {key!r} "
                             f"(grads has {list(grads)})")
        g = grads[key]
        if not isinstance(g, np.ndarray) or g.dtype.kind not in "biuf":
            got = type(g).__name__ + (f" of dtype {g.dtype}" if hasattr(g, "dtype") else "")
            raise TypeError(f"grads[{key!r}]: expected a real-valued ndarray, got {got}")
        if not isinstance(p, np.ndarray):
            raise TypeError(f"params[{key!r}]: expected an ndarray, got {type(p).__name__}")
        if g.shape != p.shape:
            raise ValueError(f"grads[{key!r}]: expected shape {p.shape} (as params[{key!r}]), "
                             f"got {g.shape}")


def _flat_pair(params, grads):
    """(params.flat, grads.flat) when both are intact flat-buffer dicts of one layout."""
    if not (isinstance(params, ParamDict) and isinstance(grads, Gradients)):
        return None
    pf, gf = params.flat, grads.flat
    if pf.shape != gf.shape or pf.dtype != gf.dtype or list(params) != list(grads):
        return None
    if not np.array_equal(params.layout, getattr(grads, "layout", params.layout)):
        return None
    for key, p in params.items():  # the user may have put other arrays into grads
        g = dict.__getitem__(grads, key)
        if g.base is not gf or g.shape != p.shape:
            return None
    return pf, gf


class SGD:
    """Stochastic gradient descent: ``param -= lr * grad`` for every parameter.

    For a network's ``params`` and the gradients from ``net.gradient``, the update is
    one pass over the flat parameter buffer with the network's backend (a numba kernel
    for ``backend="numba"``). Any other dicts of arrays are updated key by key.
    """

    def __init__(self, lr: float = 0.01):
        self.lr = lr

    @property
    def lr(self) -> float:
        """The learning rate: a positive finite number (checked whenever it is set)."""
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        self._lr = V.check_positive_float(value, "lr")

    def lr_for(self, dtype) -> float:
        """lr, after checking that parameters of ``dtype`` can hold it (finite, non-zero)."""
        with np.errstate(over="ignore", under="ignore"):
            rounded = np.dtype(dtype).type(self._lr)
        if not np.isfinite(rounded) or rounded == 0:
            raise ValueError(f"lr: {self._lr!r} is outside the range of {np.dtype(dtype).name} "
                             f"parameters (it would become {float(rounded)!r}); use a smaller "
                             "learning rate or dtype=np.float64")
        return self._lr

    def __repr__(self) -> str:
        return f"SGD(lr={self.lr!r})"

    def update(self, params, grads) -> None:
        _check_pair(params, grads)
        for key, p in params.items():  # before anything changes
            if p.dtype.kind != "f":
                raise TypeError(f"params[{key!r}]: expected a floating-point array, got dtype "
                                f"{p.dtype}")
            if not p.flags.writeable:
                raise ValueError(f"params[{key!r}]: the array is read-only; it cannot be "
                                 "updated in place")
        backend = getattr(params, "backend", reference)
        pair = _flat_pair(params, grads)
        if pair is not None:
            backend.sgd_update(pair[0], pair[1], self.lr)
            return
        for key, p in params.items():
            g = np.asarray(grads[key], dtype=p.dtype)
            if p.flags.writeable and p.flags.c_contiguous and g.flags.c_contiguous:
                backend.sgd_update(p.reshape(-1), g.reshape(-1), self.lr)
            else:
                reference.sgd_update(p, g, self.lr)

"""The flat parameter layout, in one place: layouts, views, ParamDict, Gradients, buffers.

A network's parameters live in one C-contiguous buffer, W1 (row-major), b1, W2, b2, ...
back to back; ``params["W1"]`` and the rest are views of it, so an optimizer can update
everything in one pass and the kernels take the whole network as one array. The
``layout`` array describes the buffer to both backends (see ``fastnn.kernels.network``):
one int64 row per affine layer, (offset of W, fan-in, fan-out, offset of b (-1: the network
has no biases), offset of the layer's outputs within a row of the activation buffers, ...).
"""

from __future__ import annotations

import math

import numpy as np


def layout_of(sizes, batchnorm: bool = False, bias: bool = True) -> np.ndarray:
    """The (L, 8) int64 layout of a network with layer widths ``sizes`` (D, H1, ..., C).

    Columns: offset of W, fan-in, fan-out, offset of b (-1 without ``bias``: the layer
    computes x @ W), offset of the layer's outputs in a row of the activation buffers,
    offsets of gamma and beta (-1: no BatchNorm) and of the running mean in the
    statistics buffer (the running variance follows it). With ``batchnorm`` every hidden
    layer is normalised; the buffer holds W1, b1, ..., WL, bL (without ``bias``: W1, ...,
    WL), then gamma1, beta1, gamma2, ... (the book's order of ``params``).
    """
    rows, offset, act = [], 0, 0
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        b = offset + fan_in * fan_out if bias else -1
        rows.append([offset, fan_in, fan_out, b, act, -1, -1, -1])
        offset += fan_in * fan_out + (fan_out if bias else 0)
        act += fan_out
    if batchnorm:
        stat = 0
        for row in rows[:-1]:
            H = row[2]
            row[5:8] = [offset, offset + H, stat]
            offset += 2 * H
            stat += 2 * H
    layout = np.array(rows, dtype=np.int64).reshape(-1, 8)
    layout.flags.writeable = False
    return layout


def n_params(layout: np.ndarray) -> int:
    """Length of the flat parameter buffer."""
    ends = [layout[:, 0] + layout[:, 1] * layout[:, 2], layout[:, 3] + layout[:, 2],
            layout[:, 6] + layout[:, 2]]
    return int(max(e.max() for e in ends))


def n_stats(layout: np.ndarray) -> int:
    """Length of the running-statistics buffer (0 without BatchNorm)."""
    bn = layout[layout[:, 5] >= 0]
    return int(2 * bn[:, 2].sum()) if bn.shape[0] else 0


class Shapes(tuple):
    """The layout of a network whose parameters are not all affine (the convnets):
    ``((name, shape), ...)``, each parameter's elements back to back in that order.
    ``ParamDict``, ``Gradients`` and the optimizers' state take it where they take an
    affine network's layout array (compare layouts with ``same_layout``)."""

    def __new__(cls, pairs):
        return super().__new__(cls, ((str(k), tuple(int(n) for n in s)) for k, s in pairs))

    @property
    def size(self) -> int:
        return sum(math.prod(shape) for _, shape in self)


def same_layout(a, b) -> bool:
    """Whether two layouts (affine arrays or ``Shapes``) describe the same buffer."""
    if isinstance(a, Shapes) or isinstance(b, Shapes):
        return isinstance(a, Shapes) and isinstance(b, Shapes) and a == b
    return np.array_equal(a, b)


def param_views(flat: np.ndarray, layout) -> dict:
    """{"W1": (fan_in, fan_out) view, "b1": (fan_out,) view, ..., "gamma1", "beta1", ...}
    (no "b" keys for a network without biases); for ``Shapes``, its names and shapes."""
    views = {}
    if isinstance(layout, Shapes):
        offset = 0
        for key, shape in layout:
            n = math.prod(shape)
            views[key] = flat[offset:offset + n].reshape(shape)
            offset += n
        return views
    for i, (w, fan_in, fan_out, b, *_) in enumerate(layout.tolist(), start=1):
        views[f"W{i}"] = flat[w:w + fan_in * fan_out].reshape(fan_in, fan_out)
        if b >= 0:
            views[f"b{i}"] = flat[b:b + fan_out]
    for i, (_, _, H, _, _, g, be, _) in enumerate(layout.tolist(), start=1):
        if g >= 0:
            views[f"gamma{i}"] = flat[g:g + H]
            views[f"beta{i}"] = flat[be:be + H]
    return views


def stat_views(state: np.ndarray, layout: np.ndarray) -> dict:
    """{"running_mean1": (H1,) view, "running_var1": ..., ...} of the statistics buffer."""
    views = {}
    for i, (_, _, H, _, _, g, _, s) in enumerate(layout.tolist(), start=1):
        if g >= 0:
            views[f"running_mean{i}"] = state[s:s + H]
            views[f"running_var{i}"] = state[s + H:s + 2 * H]
    return views


class ParamDict(dict):
    """The network's parameters: a dict whose values are views of one flat buffer.

    In-place updates (``params[key] -= lr * grad[key]``) change the network, as in the
    book. Assigning a new array to an existing key copies it into the network (shape must
    match) instead of detaching the entry from the layers; keys cannot be added or removed.
    ``backend`` is the module whose ``sgd_update`` optimizers use on the flat buffer.
    """

    def __init__(self, flat: np.ndarray, layout: np.ndarray, backend=None):
        super().__init__(param_views(flat, layout))
        self.flat = flat  # (n_params,), C-contiguous
        self.layout = layout
        self.backend = backend

    def __setitem__(self, key, value):
        if key not in self:
            raise KeyError(f"params: the network has no parameter {key!r}; its keys are "
                           f"{list(self)}")
        view = dict.__getitem__(self, key)
        if value is view:  # the result of an in-place `params[key] -= ...`
            return
        view[...] = self._checked(key, value)

    def _checked(self, key, value) -> np.ndarray:
        """``value`` as an array that fits parameter ``key``; raises before any change."""
        if key not in self:
            raise KeyError(f"params: the network has no parameter {key!r}; its keys are "
                           f"{list(self)}")
        view = dict.__getitem__(self, key)
        value = np.asarray(value)
        if value.dtype.kind not in "biuf":
            raise TypeError(f"params[{key!r}]: expected real numbers, got dtype {value.dtype}")
        if value.shape != view.shape:
            raise ValueError(f"params[{key!r}]: expected shape {view.shape}, got {value.shape}")
        return value

    def update(self, *args, **kwargs):
        """Copy every given array into the network, or (on any bad one) none of them."""
        checked = {key: self._checked(key, value)
                   for key, value in dict(*args, **kwargs).items()}
        for key, value in checked.items():
            dict.__getitem__(self, key)[...] = value

    def __delitem__(self, key):
        raise TypeError("params: parameters cannot be removed from a network")

    def pop(self, *args):
        raise TypeError("params: parameters cannot be removed from a network")

    def popitem(self):
        raise TypeError("params: parameters cannot be removed from a network")

    def clear(self):
        raise TypeError("params: parameters cannot be removed from a network")

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default  # raises KeyError
        return self[key]


class Gradients(dict):
    """Gradients with the params' keys; the values are views of one flat buffer ``flat``."""

    def __init__(self, flat: np.ndarray, layout: np.ndarray):
        super().__init__(param_views(flat, layout))
        self.flat = flat
        self.layout = layout


class Workspace:
    """Work buffers for one batch size: each layer's outputs ``acts`` and their gradients
    ``dacts``; with BatchNorm ``norm`` (each normalised layer's x - mean) and ``stds``
    (its std); with Dropout ``masks`` (each hidden layer's 0/1 mask).

    Flat buffers of N * (sum of fan-outs), layer after layer (the kernels' layout);
    ``scores`` is the last layer's (N, C) block of ``acts``.
    """

    def __init__(self, N: int, layout: np.ndarray, dtype, dropout: bool = False):
        width = int(layout[-1, 4] + layout[-1, 2])
        C = int(layout[-1, 2])
        self.N = N
        self.acts = np.empty(N * width, dtype)
        self.dacts = np.empty_like(self.acts)
        self.scores = self.acts[N * (width - C):].reshape(N, C)
        batchnorm = bool((layout[:, 5] >= 0).any())
        self.norm = np.empty(N * width if batchnorm else 0, dtype)
        self.stds = np.empty(width if batchnorm else 0, dtype)
        # written, not np.zeros: a large np.zeros is lazily mapped memory, and prediction
        # with Dropout ran several times slower until the masks had been written once
        self.masks = np.empty(N * width if dropout else 0, dtype)
        self.masks.fill(0.0)

    def mask_blocks(self, layout: np.ndarray) -> list:
        """The hidden layers' (N, H) blocks of ``masks``, first layer first."""
        N = self.N
        return [self.masks[N * a:N * (a + H)].reshape(N, H)
                for _, _, H, _, a, *_ in layout[:-1].tolist()]


class Extras:
    """What a network beyond Affine -> activation needs in a kernel call.

    ``norm``, ``stds``, ``masks``: a Workspace's buffers; ``state``: the running
    statistics (``stat_views``); ``train``: training mode for prediction and evaluation
    (batch statistics, dropout masks) instead of prediction mode; ``keep``: 1 - the
    dropout ratio; ``decay``: the weight-decay lambda. Both backends read these names.
    """

    __slots__ = ("norm", "stds", "state", "masks", "train", "keep", "decay")

    def __init__(self, ws: Workspace, state, train: bool, keep: float, decay: float):
        self.norm, self.stds, self.masks = ws.norm, ws.stds, ws.masks
        self.state, self.train, self.keep, self.decay = state, train, keep, decay

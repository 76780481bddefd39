"""Sequential: the seed article's multilayer perceptron API on a fast engine.

Affine -> activation -> ... -> Affine -> loss, with ``params`` (W1, b1, ..., W{n+1},
b{n+1}), ``layers`` (an OrderedDict of book-style layers), ``predict``, ``loss``,
``accuracy``, ``gradient`` and ``numerical_gradient``.

How it runs: parameters live in one contiguous buffer and ``params[key]`` are views of
it (gradients likewise), so an optimiser updates everything in one pass. The forward and
backward passes call the backend's fused ops (``affine_relu_forward`` ...) once per
layer, writing into work buffers that are allocated once per batch size and reused, so a
steady-state step allocates nothing that grows with the batch. The first layer's input
gradient is never computed. A training step (``train_step``, what ``fit`` runs) is the
backend's ``sgd_step`` over the flat parameter and work buffers: on numba one compiled
call for the whole network. Both backends run the same plan; only the ops differ.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections import OrderedDict

import numpy as np

from . import _validation as V
from ._backends import BACKENDS, get_backend
from .layers import ACTIVATIONS, LOSSES, Affine
from .reference import layer_views, param_views

_INIT_STD = {"he": 2.0, "relu": 2.0, "xavier": 1.0, "sigmoid": 1.0}  # std = sqrt(k / fan_in)
_MAX_WORKSPACES = 4  # batch sizes whose work buffers are kept (train, eval, last batch ...)
_GRADIENT_POOL = 3  # gradient buffers kept for reuse once nothing references them


class ParamDict(dict):
    """The network's parameters: a dict whose values are views of one flat buffer.

    In-place updates (``params[key] -= lr * grad[key]``) change the network, as in the
    book. Assigning a new array to an existing key copies it into the network (shape must
    match) instead of detaching the entry from the layers; keys cannot be added or removed.
    """

    def __init__(self, flat: np.ndarray, views: dict):
        super().__init__(views)
        self.flat = flat  # (n_params,), C-contiguous

    def __setitem__(self, key, value):
        if key not in self:
            raise KeyError(f"params: the network has no parameter {key!r}; its keys are "
                           f"{list(self)}")
        view = dict.__getitem__(self, key)
        if value is view:  # the result of an in-place `params[key] -= ...`
            return
        value = np.asarray(value)
        if value.shape != view.shape:
            raise ValueError(f"params[{key!r}]: expected shape {view.shape}, got {value.shape}")
        view[...] = value

    def update(self, *args, **kwargs):
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

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

    def __init__(self, flat: np.ndarray, views: dict):
        super().__init__(views)
        self.flat = flat
        self._views = list(views.values())
        self._W = self._views[0::2]  # W1, W2, ...
        self._b = self._views[1::2]  # b1, b2, ...
        self._free_refs = None  # set by the pool that keeps this dict

    def _refs(self) -> tuple:
        """Reference counts of the dict, its buffer and each view (CPython)."""
        return (sys.getrefcount(self), sys.getrefcount(self.flat),
                *(sys.getrefcount(v) for v in self._views))

    def _mark_free(self) -> None:
        """Record the counts of the pooled, unreferenced state (same frame depth as below)."""
        self._free_refs = self._refs()

    def _reusable(self) -> bool:
        """True when nothing but the network's pool holds this dict or any of its memory.

        Every view of the buffer references the buffer itself (NumPy views point at the
        owner), so unchanged counts for the dict, the buffer and its views mean no array
        handed out earlier is alive anywhere: reusing the memory cannot be observed.
        """
        return (len(self) == len(self._views)
                and all(a is b for a, b in zip(dict.values(self), self._views))
                and self._refs() == self._free_refs)


class _Workspace:
    """Buffers for one batch size: each layer's output and its gradient.

    ``acts`` and ``dacts`` are flat (the layout of ``reference.layer_views``, which
    ``sgd_step`` takes); h[i] / dh[i] (hidden layers) and scores / dscores are views.
    """

    def __init__(self, N: int, sizes: list[int], dtype):
        self.acts = np.empty(N * sum(sizes[1:]), dtype)
        self.dacts = np.empty_like(self.acts)
        *self.h, self.scores = layer_views(self.acts, N, sizes)    # (N, H_i) ..., (N, C)
        *self.dh, self.dscores = layer_views(self.dacts, N, sizes)


def _check_hidden(hidden_size) -> list[int]:
    if isinstance(hidden_size, numbers.Integral) and not isinstance(hidden_size, bool):
        hidden_size = [hidden_size]
    if not isinstance(hidden_size, (list, tuple)) or len(hidden_size) == 0:
        raise TypeError(f"hidden_size: expected a non-empty list of positive integers, e.g. "
                        f"[128, 128], got {hidden_size!r}")
    return [V.check_positive_int(h, f"hidden_size[{i}]") for i, h in enumerate(hidden_size)]


def _init_std(weight_init_std, fan_in: int) -> float:
    if isinstance(weight_init_std, str):
        key = weight_init_std.lower()
        if key not in _INIT_STD:
            raise ValueError(f"weight_init_std: expected a positive number or one of "
                             f"{', '.join(map(repr, _INIT_STD))}, got {weight_init_std!r}")
        return math.sqrt(_INIT_STD[key] / fan_in)
    return V.check_positive_float(weight_init_std, "weight_init_std")


class Sequential:
    """A multilayer perceptron: (Affine -> activation) x len(hidden_size) -> Affine -> loss.

    Parameters
    ----------
    input_size, output_size : int
        Features per sample (D) and outputs (C: classes, or regression targets).
    hidden_size : list of int
        Width of each hidden layer, e.g. ``[128, 128]``.
    weight_init_std : float or {"he", "relu", "xavier", "sigmoid"}
        Standard deviation of the initial weights: a number (the book's 0.01), or
        ``sqrt(2 / fan_in)`` for "he"/"relu" and ``sqrt(1 / fan_in)`` for
        "xavier"/"sigmoid". Biases start at zero.
    activation : {"relu", "sigmoid"}
    loss : {"softmax", "mse"}
        Softmax with mean cross-entropy, or identity output with mean squared error
        ``mean_n(0.5 * sum_c (y - t)**2)``.
    backend : {"numba", "numpy"}
        "numba" runs the fused kernels of ``fastnn.kernels``; "numpy" runs
        ``fastnn.reference``, the specification. Both give the same numbers.
    dtype : np.float32 or np.float64
    seed : int or None
        None draws the weights from NumPy's global random state exactly as the book's
        class does (``std * np.random.randn(fan_in, fan_out)``, W1 first), so a script
        that calls ``np.random.seed(0)`` gets the same network. An int uses a private
        ``np.random.default_rng(seed)`` and leaves the global state untouched.

    Notes
    -----
    A network keeps per-batch-size work buffers: do not use one network from several
    threads at once.
    """

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01, *,
                 activation="relu", loss="softmax", backend="numba", dtype=np.float64,
                 seed=None):
        input_size = V.check_positive_int(input_size, "input_size")
        output_size = V.check_positive_int(output_size, "output_size")
        hidden_size = _check_hidden(hidden_size)
        self.activation = V.check_choice(activation, "activation", tuple(ACTIVATIONS))
        self.loss_name = V.check_choice(loss, "loss", tuple(LOSSES))
        self.backend = V.check_choice(backend, "backend", BACKENDS)
        self.dtype = V.check_dtype(dtype)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"seed: expected an int or None, got {seed!r}")
        self._be = get_backend(self.backend)

        self.sizes = [input_size, *hidden_size, output_size]
        self.hidden_size = hidden_size
        self.n = len(hidden_size)  # number of hidden layers, as in the book
        stds = [_init_std(weight_init_std, fan_in) for fan_in in self.sizes[:-1]]
        n_params = sum(i * o + o for i, o in zip(self.sizes[:-1], self.sizes[1:]))
        self.params = ParamDict(np.zeros(n_params, self.dtype), {})
        self.params.backend = self._be  # SGD.update uses the network's own sgd_update
        dict.update(self.params, param_views(self.params.flat, self.sizes))
        rng = np.random.default_rng(seed) if seed is not None else None
        for i, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:]), start=1):
            shape = (fan_in, fan_out)
            draw = np.random.randn(*shape) if rng is None else rng.standard_normal(shape)
            self.params[f"W{i}"][...] = stds[i - 1] * draw

        self._W = [self.params[f"W{i}"] for i in range(1, self.n + 2)]
        self._b = [self.params[f"b{i}"] for i in range(1, self.n + 2)]
        be = self._be
        if self.activation == "relu":
            self._act_forward, self._act_backward = be.affine_relu_forward, be.affine_relu_backward
        else:
            self._act_forward = be.affine_sigmoid_forward
            self._act_backward = be.affine_sigmoid_backward
        softmax = self.loss_name == "softmax"
        self._loss_op = be.softmax_cross_entropy if softmax else be.squared_error

        self.layers = OrderedDict()
        for i in range(1, self.n + 1):
            self.layers[f"Affine{i}"] = Affine(self._W[i - 1], self._b[i - 1], be)
            self.layers[f"{self.activation.capitalize()}{i}"] = ACTIVATIONS[self.activation](be)
        self.layers[f"Affine{self.n + 1}"] = Affine(self._W[-1], self._b[-1], be)
        self.lastLayer = LOSSES[self.loss_name](be)
        self._workspaces: OrderedDict[int, _Workspace] = OrderedDict()
        self._grad_pool: list[Gradients] = []

    # --- description ------------------------------------------------------------------

    @property
    def input_size(self) -> int:
        return self.sizes[0]

    @property
    def output_size(self) -> int:
        return self.sizes[-1]

    @property
    def n_params(self) -> int:
        return self.params.flat.size

    def __repr__(self) -> str:
        return (f"Sequential({self.input_size}, {self.hidden_size}, {self.output_size}, "
                f"activation={self.activation!r}, loss={self.loss_name!r}, "
                f"backend={self.backend!r}, dtype={self.dtype.name})")

    def copy(self, *, backend=None, dtype=None) -> Sequential:
        """An independent copy, optionally on another backend or dtype (parameters cast)."""
        clone = Sequential(self.input_size, self.hidden_size, self.output_size, 1.0,
                           activation=self.activation, loss=self.loss_name,
                           backend=self.backend if backend is None else backend,
                           dtype=self.dtype if dtype is None else dtype, seed=0)
        clone.params.flat[...] = self.params.flat
        return clone

    # --- validation -------------------------------------------------------------------

    def _check_x(self, x, name="x") -> np.ndarray:
        return V.check_features(x, name, self.input_size, self.dtype)

    def _check_t(self, t, N, name="t", loss=None, label_range=True) -> np.ndarray:
        return V.check_targets(t, name, N, self.output_size, loss or self.loss_name, self.dtype,
                               label_range)

    # --- the engine: both backends, fused ops, reused buffers ---------------------------

    def _workspace(self, N: int) -> _Workspace:
        ws = self._workspaces.get(N)
        if ws is None:
            ws = self._workspaces[N] = _Workspace(N, self.sizes, self.dtype)
            while len(self._workspaces) > _MAX_WORKSPACES:
                self._workspaces.popitem(last=False)
        else:
            self._workspaces.move_to_end(N)
        return ws

    def _forward(self, x: np.ndarray, ws: _Workspace) -> np.ndarray:
        # first layer: its fused pass also counts non-finite pre-activations, which is
        # how x is checked for NaN/Inf without a pass of its own
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf get a clear error below
            h, n_bad = self._be.affine_act_forward_checked(x, self._W[0], self._b[0],
                                                           self.activation, out=ws.h[0])
        if n_bad:
            V.raise_if_nonfinite(x, "x")  # else: the weights or an overflow, not x
        for i in range(1, self.n):
            h = self._act_forward(h, self._W[i], self._b[i], out=ws.h[i])  # (N, H_i)
        return self._be.affine_forward(h, self._W[-1], self._b[-1], out=ws.scores)  # (N, C)

    def _backward(self, x: np.ndarray, ws: _Workspace, grads: Gradients) -> None:
        """Backpropagate ws.dscores into ``grads`` (dz is left in the work buffers)."""
        n, W, be = self.n, self._W, self._be
        for i in range(n, -1, -1):
            inp = ws.h[i - 1] if i > 0 else x           # (N, fan_in)
            dout = ws.dscores if i == n else ws.dh[i]   # (N, fan_out), holds dz afterwards
            dx = ws.dh[i - 1] if i > 0 else None
            if i == n:
                be.affine_backward(dout, inp, W[i], dx=dx, dW=grads._W[i], db=grads._b[i])
            else:
                self._act_backward(dout, inp, W[i], ws.h[i], dx=dx, dW=grads._W[i],
                                   db=grads._b[i], need_dx=i > 0, overwrite_dout=True)

    def _new_gradients(self) -> Gradients:
        """A gradient dict to fill: a pooled one that nobody references, else a new one.

        Reusing warm memory spares a page-faulting allocation and cold caches for the dW
        GEMM outputs (~3 % of a step at batch 1000), while every dict handed out still
        behaves as new: one is reused only after the caller has dropped it entirely.
        """
        for grads in self._grad_pool:
            if grads._reusable():
                return grads
        grads = self._allocate_gradients()
        if len(self._grad_pool) < _GRADIENT_POOL:
            self._grad_pool.append(grads)
            grads._mark_free()  # held by the pool and this frame, as in the loop above
        return grads

    def _allocate_gradients(self) -> Gradients:
        flat = np.empty(self.n_params, self.dtype)
        return Gradients(flat, param_views(flat, self.sizes))

    def _loss_value(self, x: np.ndarray, t: np.ndarray) -> float:
        ws = self._workspace(x.shape[0])
        return self._loss_op(self._forward(x, ws), t, ws.dscores)[0]

    # --- the public API ---------------------------------------------------------------

    def predict(self, x) -> np.ndarray:
        """Scores (N, C) of the last affine layer (before softmax), a new array."""
        x = self._check_x(x)
        return self._forward(x, self._workspace(x.shape[0])).copy()

    def loss(self, x, t) -> float:
        """The mean loss over the batch (cross-entropy, or 0.5 * squared error)."""
        x = self._check_x(x)
        t = self._check_t(t, x.shape[0])
        return self._loss_value(x, t)

    def accuracy(self, x, t) -> float:
        """Fraction of samples whose highest score is the label (int (N,) or one-hot)."""
        x = self._check_x(x)
        t = self._check_t(t, x.shape[0], loss="softmax")
        y = np.argmax(self._forward(x, self._workspace(x.shape[0])), axis=1)
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        return float(np.count_nonzero(y == t)) / x.shape[0]

    def loss_and_gradient(self, x, t) -> tuple[float, Gradients]:
        """The mean loss and the gradients of every parameter, by backpropagation."""
        x = self._check_x(x)
        t = self._check_t(t, x.shape[0])
        ws = self._workspace(x.shape[0])
        loss, _ = self._loss_op(self._forward(x, ws), t, ws.dscores)
        grads = self._new_gradients()
        self._backward(x, ws, grads)
        return loss, grads

    def gradient(self, x, t) -> Gradients:
        """Gradients of the mean loss, a dict with the params' keys (new arrays)."""
        return self.loss_and_gradient(x, t)[1]

    def train_step(self, x, t, optimizer) -> float:
        """One step of training: forward, backward and ``optimizer``'s update; the loss.

        The same as ``optimizer.update(net.params, net.gradient(x, t))`` without building
        a gradient dict for the caller (what ``fastnn.fit`` runs); the backend's
        ``sgd_step`` runs it (on numba: one compiled call). When the loss is NaN or
        infinite, or the first layer's pre-activations are (the weights hold NaN/Inf, or
        ``x @ W1`` overflowed), nothing is updated and the loss (NaN there) is returned
        for the caller to act on. NaN/Inf in x raise a ValueError, before any change.
        """
        from .optim import SGD  # (optim imports this module)

        if not isinstance(optimizer, SGD):
            raise TypeError(f"optimizer: expected a fastnn.SGD, got {type(optimizer).__name__}")
        x = self._check_x(x)
        t = self._check_t(t, x.shape[0], label_range=False)  # sgd_step checks the range
        return self._train_step(x, t, optimizer)

    def _train_step(self, x: np.ndarray, t: np.ndarray, optimizer) -> float:
        ws = self._workspace(x.shape[0])
        loss, n_bad = self._be.sgd_step(x, t, self.params.flat, self.sizes, ws.acts, ws.dacts,
                                        self.activation, self.loss_name, optimizer.lr)
        if n_bad:
            V.raise_if_nonfinite(x, "x")  # else: the weights or an overflow (loss is NaN)
        return loss

    def save(self, path) -> None:
        """Write the architecture and parameters to ``path`` (.npz), atomically."""
        from .serialize import save

        save(self, path)

    def numerical_gradient(self, x, t, h: float = 1e-4) -> dict:
        """Central-difference gradients of the loss, one parameter element at a time.

        Slow (two forward passes per parameter); meant for checking small networks.
        Use float64: in float32 the differences drown in rounding.
        """
        x = self._check_x(x)
        t = self._check_t(t, x.shape[0])
        h = V.check_positive_float(h, "h")
        grads = {}
        for key, p in self.params.items():
            flat, g = p.reshape(-1), np.empty(p.size, np.float64)
            for i in range(flat.size):
                saved = flat[i]
                flat[i] = saved + h
                f_plus = self._loss_value(x, t)
                flat[i] = saved - h
                f_minus = self._loss_value(x, t)
                flat[i] = saved
                g[i] = (f_plus - f_minus) / (2 * h)
            grads[key] = g.reshape(p.shape).astype(self.dtype)
        return grads

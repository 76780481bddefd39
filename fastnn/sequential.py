"""Sequential: the seed article's multilayer perceptron API on a fast engine.

Affine -> activation -> ... -> Affine -> loss, with ``params`` (W1, b1, ..., W{n+1},
b{n+1}), ``layers`` (an OrderedDict of book-style layers), ``predict``, ``loss``,
``accuracy``, ``gradient`` and ``numerical_gradient``.

How it runs: parameters live in one flat buffer and ``params[key]`` are views of it
(``fastnn.params``). Each public method validates its arguments (``validate``), then
calls ``net.engine`` (``fastnn.engine``), which runs the backend's whole-network
function: on numba one compiled call running the kernels' one network loop
(``fastnn.kernels.network``), on numpy the reference's own loop. ``train_step`` is one
SGD step (forward, loss, backward with the weights' step inside the GEMM).
"""

from __future__ import annotations

import math
import numbers
from collections import OrderedDict

import numpy as np

from . import _validation as V
from . import serialize
from ._backends import BACKENDS, get_backend
from .engine import Engine
from .layers import ACTIVATIONS, LOSSES, Affine
from .params import ParamDict, layout_of

_INIT_STD = {"he": 2.0, "relu": 2.0, "xavier": 1.0, "sigmoid": 1.0}  # std = sqrt(k / fan_in)


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
    A network keeps per-batch-size work buffers; calls on one network from several
    threads are serialised by a lock (they take turns; use one network per thread to
    compute in parallel).
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
        be = get_backend(self.backend)

        self.sizes = [input_size, *hidden_size, output_size]
        self.hidden_size = hidden_size
        self.n = len(hidden_size)  # number of hidden layers, as in the book
        stds = [_init_std(weight_init_std, fan_in) for fan_in in self.sizes[:-1]]
        layout = layout_of(self.sizes)
        n_params = int(layout[-1, 3] + layout[-1, 2])
        try:
            flat = np.zeros(n_params, self.dtype)
        except (MemoryError, ValueError):
            gib = n_params * self.dtype.itemsize / 2**30
            raise ValueError(f"hidden_size: a {'-'.join(map(str, self.sizes))} network has "
                             f"{n_params:,} parameters ({gib:.1f} GiB), more than this machine "
                             "can allocate") from None
        self.params = ParamDict(flat, layout, backend=be)
        rng = np.random.default_rng(seed) if seed is not None else None
        for i, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:]), start=1):
            shape = (fan_in, fan_out)
            draw = np.random.randn(*shape) if rng is None else rng.standard_normal(shape)
            self.params[f"W{i}"][...] = stds[i - 1] * draw
        self.engine = Engine(be, self.params, self.activation, self.loss_name)

        self.layers = OrderedDict()
        for i in range(1, self.n + 2):
            W, b = self.params[f"W{i}"], self.params[f"b{i}"]
            self.layers[f"Affine{i}"] = Affine(W, b, be)
            if i <= self.n:
                self.layers[f"{self.activation.capitalize()}{i}"] = ACTIVATIONS[self.activation](be)
        self.lastLayer = LOSSES[self.loss_name](be)

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

    def __reduce__(self):
        """Pickling (for multiprocessing, Dask ...): the architecture and the parameters.

        The engine (work buffers, lock, backend module) is rebuilt on the other side.
        """
        spec = dict(input_size=self.input_size, hidden_size=self.hidden_size,
                    output_size=self.output_size, activation=self.activation,
                    loss=self.loss_name, backend=self.backend, dtype=self.dtype.name)
        return _unpickle, (spec, self.params.flat.copy())

    # --- validation -------------------------------------------------------------------

    def validate(self, x, t=None, *, names=("x", "t"), loss=None, label_range=True):
        """``(x, t)`` checked and converted to what ``net.engine`` takes.

        x becomes a C-contiguous (N, input_size) array of the network's dtype (N-D batches
        flattened); t (optional) intp class indices or rows of the dtype. ``names`` label
        the errors. NaN/Inf in x are not scanned here: the engine's first layer counts
        them and raises. Raises ValueError/TypeError naming the argument.
        """
        x = V.check_features(x, names[0], self.input_size, self.dtype)
        if t is not None:
            t = V.check_targets(t, names[1], x.shape[0], self.output_size,
                                loss or self.loss_name, self.dtype, label_range)
        return x, t

    # --- the public API ---------------------------------------------------------------

    def predict(self, x) -> np.ndarray:
        """Scores (N, C) of the last affine layer (before softmax), a new array."""
        x, _ = self.validate(x)
        return self.engine.predict(x)

    def loss(self, x, t) -> float:
        """The mean loss over the batch (cross-entropy, or 0.5 * squared error)."""
        x, t = self.validate(x, t)
        return self.engine.evaluate(x, t)[0]

    def accuracy(self, x, t) -> float:
        """Fraction of samples whose highest score is the label (int (N,) or one-hot)."""
        x, t = self.validate(x, t, loss="softmax")
        if self.loss_name == "softmax":
            return self.engine.evaluate(x, t)[1]
        labels = t if t.ndim == 1 else np.argmax(t, axis=1)
        return float(np.count_nonzero(np.argmax(self.engine.predict(x), axis=1) == labels)) \
            / x.shape[0]

    def loss_and_gradient(self, x, t):
        """The mean loss and the gradients of every parameter, by backpropagation."""
        x, t = self.validate(x, t)
        return self.engine.gradient(x, t)

    def gradient(self, x, t):
        """Gradients of the mean loss, a dict with the params' keys (new arrays)."""
        return self.loss_and_gradient(x, t)[1]

    def train_step(self, x, t, optimizer) -> float:
        """One step of training: forward, backward and ``optimizer``'s update; the loss.

        The same as ``optimizer.update(net.params, net.gradient(x, t))`` without building
        a gradient dict (what ``fastnn.fit`` runs; on numba one compiled call). When the
        loss is NaN or infinite, or the first layer's pre-activations are (the weights
        hold NaN/Inf, or ``x @ W1`` overflowed), nothing is updated and the loss (NaN
        there) is returned for the caller to act on. NaN/Inf in x raise a ValueError,
        before any change.
        """
        from .optim import SGD

        if not isinstance(optimizer, SGD):
            raise TypeError(f"optimizer: expected a fastnn.SGD, got {type(optimizer).__name__}")
        x, t = self.validate(x, t, label_range=False)  # the step checks the labels' range
        return self.engine.sgd_step(x, t, optimizer.lr_for(self.dtype))

    def save(self, path) -> None:
        """Write the architecture and parameters to ``path`` (.npz), atomically."""
        from . import __version__

        for key, value in self.params.items():  # load() would refuse such a file
            if not np.all(np.isfinite(value)):
                raise ValueError(f"params[{key!r}]: contains NaN or infinity; a model that "
                                 "could not be loaded again is not saved")
        meta = {"format": FORMAT, "version": VERSION, "fastnn": __version__,
                "input_size": self.input_size, "hidden_size": self.hidden_size,
                "output_size": self.output_size, "activation": self.activation,
                "loss": self.loss_name, "dtype": self.dtype.name}
        serialize.write_model(path, meta, dict(self.params))

    def numerical_gradient(self, x, t, h: float = 1e-4) -> dict:
        """Central-difference gradients of the loss, one parameter element at a time.

        Slow (two forward passes per parameter); meant for checking small networks.
        Use float64: in float32 the differences drown in rounding.
        """
        x, t = self.validate(x, t)
        h = V.check_positive_float(h, "h")
        grads = {}
        for key, p in self.params.items():
            flat, g = p.reshape(-1), np.empty(p.size, np.float64)
            for i in range(flat.size):
                saved = flat[i]
                try:
                    flat[i] = saved + h
                    f_plus = self.engine.evaluate(x, t)[0]
                    flat[i] = saved - h
                    f_minus = self.engine.evaluate(x, t)[0]
                finally:
                    flat[i] = saved
                g[i] = (f_plus - f_minus) / (2 * h)
            grads[key] = g.reshape(p.shape).astype(self.dtype)
        return grads


def _unpickle(spec: dict, flat: np.ndarray) -> Sequential:
    net = Sequential(spec["input_size"], spec["hidden_size"], spec["output_size"], 1.0,
                     activation=spec["activation"], loss=spec["loss"],
                     backend=spec["backend"], dtype=spec["dtype"], seed=0)
    net.params.flat[...] = flat
    return net


FORMAT = "fastnn.Sequential"
VERSION = 1


def load(path, *, backend: str = "numba") -> Sequential:
    """Read a network written by ``net.save``.

    Raises FileNotFoundError when ``path`` does not exist and ValueError when it is not
    a readable fastnn model (corrupt, truncated, another format, or parameters that do
    not fit the architecture it describes).
    """
    meta, params = serialize.read_model(path)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a fastnn model file (format {meta.get('format')!r})")
    version = meta.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise ValueError(f"{path}: written by a newer fastnn (format version {version!r}); "
                         "upgrade fastnn to read it")
    sizes = _stored_sizes(path, meta)
    # the stored arrays must be the architecture's before anything is allocated for it
    expected = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        expected[f"W{i}"], expected[f"b{i}"] = (fan_in, fan_out), (fan_out,)
    if set(params) != set(expected):
        raise ValueError(f"{path}: parameters {sorted(params)} do not match the architecture "
                         f"(expected {sorted(expected)})")
    for key, value in params.items():
        if value.shape != expected[key]:
            raise ValueError(f"{path}: parameter {key} has shape {value.shape}, the "
                             f"architecture needs {expected[key]}")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{path}: parameter {key} contains NaN or infinity")
    try:
        net = Sequential(sizes[0], sizes[1:-1], sizes[-1], 1.0, activation=meta["activation"],
                         loss=meta["loss"], backend=backend, dtype=meta["dtype"], seed=0)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: the architecture it describes is invalid ({exc})") from None
    net.params.update(params)
    return net


def _stored_sizes(path, meta) -> list:
    """[input, hidden..., output] from a file's metadata, each a positive int."""
    hidden = meta.get("hidden_size")
    sizes = [meta.get("input_size"), *(hidden if isinstance(hidden, list) else [None]),
             meta.get("output_size")]
    if len(sizes) < 3 or not all(type(n) is int and n > 0 for n in sizes):
        raise ValueError(f"{path}: the architecture it describes is invalid (input_size "
                         f"{meta.get('input_size')!r}, hidden_size {hidden!r}, output_size "
                         f"{meta.get('output_size')!r}: expected positive integers)")
    for field in ("activation", "loss", "dtype"):
        if not isinstance(meta.get(field), str):
            raise ValueError(f"{path}: the architecture it describes is invalid ({field} "
                             f"{meta.get(field)!r}: expected a name)")
    return sizes

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

import contextlib
import numbers
from collections import OrderedDict

import numpy as np

from . import _validation as V
from . import model_file
from ._backends import BACKENDS, get_backend
from .common.gradient import numerical_gradient
from .engine import Engine
from .layers import ACTIVATIONS, LOSSES, Affine, BatchNormalization, Dropout, init_std
from .params import ParamDict, layout_of, n_params, n_stats, stat_views


def _check_hidden(hidden_size) -> list[int]:
    if isinstance(hidden_size, numbers.Integral) and not isinstance(hidden_size, bool):
        hidden_size = [hidden_size]
    if not isinstance(hidden_size, (list, tuple)) or len(hidden_size) == 0:
        raise TypeError(f"hidden_size: expected a non-empty list of positive integers, e.g. "
                        f"[128, 128], got {hidden_size!r}")
    return [V.check_positive_int(h, f"hidden_size[{i}]") for i, h in enumerate(hidden_size)]


class Sequential:
    """A multilayer perceptron: (Affine -> activation) x len(hidden_size) -> Affine -> loss.

    Parameters
    ----------
    input_size, output_size : int
        Features per sample (D) and outputs (C: classes, or regression targets).
    hidden_size : list of int
        Width of each hidden layer, e.g. ``[128, 128]`` (``hidden_size_list=``, the
        book's MultiLayerNet name, is accepted too).
    weight_init_std : float or {"he", "relu", "xavier", "sigmoid", "tanh"}
        Standard deviation of the initial weights: a number (the book's 0.01), or
        ``sqrt(2 / fan_in)`` for "he"/"relu" and ``sqrt(1 / fan_in)`` for
        "xavier"/"sigmoid". Biases start at zero (see ``bias_init_std``).
    activation : {"relu", "sigmoid", "tanh"}
    loss : {"softmax", "mse", "sse"}
        Softmax with mean cross-entropy; or identity output with mean squared error
        ``mean_n(0.5 * sum_c (y - t)**2)`` (the book's), or with the plain sum of squared
        errors ``sum_n sum_c (y - t)**2``, gradient ``2 * (y - t)`` (PyTorch's NumPy
        warm-up: ``np.square(y_pred - y).sum()``).
    backend : {"numba", "numpy"}
        "numba" runs the fused kernels of ``fastnn.kernels``; "numpy" runs
        ``fastnn.reference``, the specification. Both give the same numbers.
    dtype : np.float32 or np.float64
    seed : int or None
        None draws the weights (and dropout masks) from NumPy's global random state
        exactly as the book's classes do (``std * np.random.randn(fan_in, fan_out)``, W1
        first; ``np.random.rand(N, H) > ratio`` per Dropout layer), so a script that
        calls ``np.random.seed(0)`` gets the same network. An int uses a private
        ``np.random.default_rng(seed)`` and leaves the global state untouched.
    weight_decay_lambda : float
        The book's L2 weight decay: the loss adds ``0.5 * lambda * sum(W ** 2)`` over
        every W, each weight gradient ``lambda * W`` (biases, gamma, beta: none).
    use_dropout, dropout_ratio : bool, float in [0, 1)
        The book's Dropout after each hidden layer's activation (not inverted: training
        multiplies by a 0/1 mask, prediction by ``1 - dropout_ratio``).
        ``dropout_ration`` (the book's spelling) is accepted too.
    use_batchnorm : bool
        BatchNormalization between each hidden Affine and its activation (parameters
        ``gamma{i}``, ``beta{i}``; running statistics in ``running_stats``).
    bias : bool
        False: no biases (every layer computes ``x @ W``; ``params`` holds only ``W1,
        W2, ...``), as in PyTorch's NumPy warm-up. Weight decay, every optimizer,
        BatchNorm (whose beta shifts anyway), Dropout, ``save``/``load`` work as with.
    bias_init_std : float
        Biases drawn as ``bias_init_std * np.random.randn(fan_out)`` (or from the
        private generator), each right after its layer's weights, W1, b1, W2, b2, ...
        (the sine article's ``Neuron``: weights and biases ``wb_width * randn``).
        0 (the default): zeros, nothing drawn.

    Notes
    -----
    A network keeps per-batch-size work buffers; calls on one network from several
    threads are serialised by a lock (they take turns; use one network per thread to
    compute in parallel).
    """

    _activation_names = None  # layer names: "Relu1" (Sequential), "Activation_function1"

    def __init__(self, input_size, hidden_size=None, output_size=None, weight_init_std=0.01,
                 *, activation="relu", loss="softmax", backend="numba", dtype=np.float64,
                 seed=None, weight_decay_lambda=0, use_dropout=False, dropout_ratio=0.5,
                 use_batchnorm=False, dropout_ration=None, hidden_size_list=None, bias=True,
                 bias_init_std=0.0):
        if hidden_size_list is not None:  # the book's MultiLayerNet keyword
            if hidden_size is not None:
                raise TypeError("hidden_size, hidden_size_list: give one of them")
            hidden_size = hidden_size_list
        if hidden_size is None:
            raise TypeError("hidden_size: required (the hidden layers' widths, e.g. [128, 128])")
        if output_size is None:
            raise TypeError("output_size: required (classes or regression outputs)")
        input_size = V.check_positive_int(input_size, "input_size")
        output_size = V.check_positive_int(output_size, "output_size")
        hidden_size = _check_hidden(hidden_size)
        self.activation = V.check_choice(activation, "activation", tuple(ACTIVATIONS))
        self.loss_name = V.check_choice(loss, "loss", tuple(LOSSES))
        self.backend = V.check_choice(backend, "backend", BACKENDS)
        self.dtype = V.check_dtype(dtype)
        seed = V.check_seed(seed)
        if dropout_ration is not None:  # (the book's spelling)
            dropout_ratio = V.check_unit_interval(dropout_ration, "dropout_ration")
        for name, value in model_file.check_options(dict(
                weight_decay_lambda=weight_decay_lambda, use_dropout=use_dropout,
                dropout_ratio=dropout_ratio, use_batchnorm=use_batchnorm, bias=bias)).items():
            setattr(self, name, value)
        bias_init_std = V.check_non_negative_float(bias_init_std, "bias_init_std")
        if bias_init_std and not self.bias:
            raise ValueError(f"bias_init_std: the network has no biases (bias=False), got "
                             f"{bias_init_std!r}; leave it 0")
        be = get_backend(self.backend)

        self.sizes = [input_size, *hidden_size, output_size]
        self.hidden_size = hidden_size
        self.n = len(hidden_size)  # number of hidden layers, as in the book
        stds = [init_std(weight_init_std, fan_in) for fan_in in self.sizes[:-1]]
        layout = layout_of(self.sizes, self.use_batchnorm, self.bias)
        size = n_params(layout)
        try:
            flat = np.zeros(size, self.dtype)
        except (MemoryError, ValueError):
            gib = size * self.dtype.itemsize / 2**30
            raise ValueError(f"hidden_size: a {'-'.join(map(str, self.sizes))} network has "
                             f"{size:,} parameters ({gib:.1f} GiB), more than this machine "
                             "can allocate") from None
        self.params = ParamDict(flat, layout, backend=be)
        self._rng = np.random.default_rng(seed) if seed is not None else None
        for i, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:]), start=1):
            shape = (fan_in, fan_out)
            draw = np.random.randn(*shape) if self._rng is None \
                else self._rng.standard_normal(shape)
            self.params[f"W{i}"][...] = stds[i - 1] * draw
            if bias_init_std:  # the layer's biases right after its weights
                draw = np.random.randn(fan_out) if self._rng is None \
                    else self._rng.standard_normal(fan_out)
                self.params[f"b{i}"][...] = bias_init_std * draw
        for key in self.params:
            if key.startswith("gamma"):
                self.params[key][...] = 1.0
        self.state = np.zeros(n_stats(layout), self.dtype)
        self.running_stats = stat_views(self.state, layout)
        self.engine = Engine(be, self.params, self.activation, self.loss_name,
                             state=self.state, decay=self.weight_decay_lambda,
                             dropout=self.dropout_ratio if self.use_dropout else None,
                             draw=self._draw)
        self.metadata = {}  # saved with the model (JSON values; fastnn train: the data set)
        self._build_layers(be)

    def _draw(self, shape):
        """Uniform [0, 1) floats: the book's ``np.random.rand``, or the private generator."""
        return np.random.rand(*shape) if self._rng is None else self._rng.random(shape)

    def _build_layers(self, be) -> None:
        names = self._activation_names or self.activation.capitalize()
        self.layers = OrderedDict()
        for i in range(1, self.n + 2):
            W, b = self.params[f"W{i}"], self.params.get(f"b{i}")
            self.layers[f"Affine{i}"] = Affine(W, b, be)
            if i <= self.n:
                if self.use_batchnorm:
                    self.layers[f"BatchNorm{i}"] = BatchNormalization(
                        self.params[f"gamma{i}"], self.params[f"beta{i}"],
                        running_mean=self.running_stats[f"running_mean{i}"],
                        running_var=self.running_stats[f"running_var{i}"], backend=be)
                self.layers[f"{names}{i}"] = ACTIVATIONS[self.activation].layer(be)
                if self.use_dropout:
                    self.layers[f"Dropout{i}"] = Dropout(self.dropout_ratio, backend=be,
                                                         draw=self._draw)
        self.lastLayer = LOSSES[self.loss_name](be)

    # --- description ------------------------------------------------------------------

    @property
    def input_size(self) -> int:
        return self.sizes[0]

    @property
    def output_size(self) -> int:
        return self.sizes[-1]

    @property
    def hidden_size_list(self) -> list:
        return list(self.hidden_size)

    @property
    def n_params(self) -> int:
        return self.params.flat.size

    @property
    def extended(self) -> bool:
        """Whether the network has BatchNorm or Dropout (layers beyond Affine -> act)."""
        return self.use_batchnorm or self.use_dropout

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in model_file.options_of(self).items())
        return (f"{type(self).__name__}({self.input_size}, {self.hidden_size}, "
                f"{self.output_size}, activation={self.activation!r}, loss={self.loss_name!r}"
                f"{extra}, backend={self.backend!r}, dtype={self.dtype.name})")

    def copy(self, *, backend=None, dtype=None) -> Sequential:
        """An independent copy, optionally on another backend or dtype (parameters and
        running statistics cast). A seeded network's copy gets a generator of its own."""
        spec = model_file.spec_of(self)
        spec["backend"] = self.backend if backend is None else backend
        spec["dtype"] = self.dtype if dtype is None else dtype
        clone = _build(spec)
        clone.params.flat[...] = self.params.flat
        clone.state[...] = self.state
        return clone

    def __reduce__(self):
        """Pickling (for multiprocessing, Dask ...): the architecture, the parameters and
        the running statistics. The engine (work buffers, lock, backend module) is rebuilt
        on the other side."""
        return _unpickle, (model_file.spec_of(self), self.params.flat.copy(), self.state.copy())

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

    def predict(self, x, train_flg=False) -> np.ndarray:
        """Scores (N, C) of the last affine layer (before softmax), a new array.

        ``train_flg`` True runs BatchNorm and Dropout as in training (batch statistics,
        which move the running ones; new dropout masks), as the book's network does.
        """
        train_flg = V.check_bool(train_flg, "train_flg")
        x, _ = self.validate(x)
        return self.engine.predict(x, train=train_flg)

    def loss(self, x, t, train_flg=False) -> float:
        """The mean loss over the batch (cross-entropy, or 0.5 * squared error), plus the
        weight-decay term; ``train_flg`` as in ``predict``."""
        train_flg = V.check_bool(train_flg, "train_flg")
        x, t = self.validate(x, t)
        return self.engine.evaluate(x, t, train=train_flg)[0]

    def accuracy(self, x, t) -> float:
        """Fraction of samples whose highest score is the label (int (N,) or one-hot)."""
        x, t = self.validate(x, t, loss="softmax")
        if self.loss_name == "softmax":
            return self.engine.evaluate(x, t)[1]
        labels = t if t.ndim == 1 else np.argmax(t, axis=1)
        return float(np.count_nonzero(np.argmax(self.engine.predict(x), axis=1) == labels)) \
            / x.shape[0]

    def loss_and_gradient(self, x, t):
        """The mean loss and the gradients of every parameter, by backpropagation
        (training mode: batch statistics, new dropout masks)."""
        x, t = self.validate(x, t)
        return self.engine.gradient(x, t)

    def gradient(self, x, t):
        """Gradients of the mean loss, a dict with the params' keys (new arrays)."""
        return self.loss_and_gradient(x, t)[1]

    def train_step(self, x, t, optimizer) -> float:
        """One step of training: forward, backward and ``optimizer``'s update; the loss.

        The same as ``optimizer.update(net.params, net.gradient(x, t))`` without building
        a gradient dict (what ``fastnn.fit`` and ``Trainer`` run; with SGD one compiled
        call that fuses the update into the backward pass). When the loss is NaN or
        infinite, or the first layer's pre-activations are (the weights hold NaN/Inf, or
        ``x @ W1`` overflowed), nothing is updated and the loss (NaN there) is returned
        for the caller to act on. NaN/Inf in x raise a ValueError, before any change.
        """
        from .optim import check_optimizer

        check_optimizer(optimizer).prepare(self)  # before any change
        x, t = self.validate(x, t, label_range=False)  # the step checks the labels' range
        return self.engine.step(x, t, optimizer)

    def save(self, path) -> None:
        """Write the architecture, the options, the parameters and the BatchNorm running
        statistics to ``path`` (.npz), atomically (``fastnn.model_file``)."""
        model_file.save(self, path)

    def numerical_gradient(self, x, t, h: float = 1e-4) -> dict:
        """Central-difference gradients of the loss, one parameter element at a time.

        Slow (two forward passes per parameter); meant for checking small networks.
        Use float64: in float32 the differences drown in rounding. BatchNorm runs in
        training mode (batch statistics; the running ones are left as they were) and
        Dropout keeps one mask for all the differences (drawn once, or the masks fixed
        with ``net.engine.fixed_masks``).
        """
        x, t = self.validate(x, t)
        h = V.check_positive_float(h, "h")
        train = self.extended
        saved_state = self.state.copy()
        grads = {}
        fixed = self.engine.fixed_masks() if self.engine._fixed is None \
            else contextlib.nullcontext()  # (masks already fixed by the caller)
        with fixed:
            try:
                for key, p in self.params.items():  # p is a view: the network sees x
                    grads[key] = numerical_gradient(
                        lambda _: self.engine.evaluate(x, t, train=train)[0], p, h)
            finally:
                self.state[...] = saved_state
        return grads


class MultiLayerNet(Sequential):
    """The book's ``MultiLayerNet`` (common/multi_layer_net.py) on fastnn's engine.

    ``MultiLayerNet(input_size, hidden_size_list, output_size, activation='relu',
    weight_init_std='relu', weight_decay_lambda=0)`` with the book's ``params``,
    ``layers`` (``Affine1``, ``Activation_function1``, ...), ``predict``, ``loss``,
    ``accuracy``, ``gradient`` and ``numerical_gradient``; plus fastnn's keywords
    (``loss``, ``backend``, ``dtype``, ``seed``), ``train_step``, ``save``. With
    ``seed=None`` (the default) the weights come from NumPy's global random state in the
    book's order, so ``np.random.seed(0)`` gives the book's network.
    """

    _activation_names = "Activation_function"

    def __init__(self, input_size, hidden_size_list, output_size, activation="relu",
                 weight_init_std="relu", weight_decay_lambda=0, **options):
        super().__init__(input_size, hidden_size_list, output_size, weight_init_std,
                         activation=activation, weight_decay_lambda=weight_decay_lambda,
                         **options)


class MultiLayerNetExtend(MultiLayerNet):
    """The book's ``MultiLayerNetExtend``: ``MultiLayerNet`` with Dropout and BatchNorm.

    ``MultiLayerNetExtend(input_size, hidden_size_list, output_size, activation='relu',
    weight_init_std='relu', weight_decay_lambda=0, use_dropout=False,
    dropout_ration=0.5, use_batchnorm=False)`` (``dropout_ratio`` accepted too). Each
    hidden layer is Affine -> BatchNorm -> activation -> Dropout; ``params`` holds
    ``W1, b1, ..., gamma1, beta1, ...``; ``predict(x, train_flg=False)`` and
    ``loss(x, t, train_flg=False)`` as in the book.
    """

    def __init__(self, input_size, hidden_size_list, output_size, activation="relu",
                 weight_init_std="relu", weight_decay_lambda=0, use_dropout=False,
                 dropout_ration=0.5, use_batchnorm=False, *, dropout_ratio=None, **options):
        ratio = dropout_ration if dropout_ratio is None else dropout_ratio
        name = "dropout_ration" if dropout_ratio is None else "dropout_ratio"
        super().__init__(input_size, hidden_size_list, output_size, activation,
                         weight_init_std, weight_decay_lambda, use_dropout=use_dropout,
                         dropout_ratio=V.check_unit_interval(ratio, name),
                         use_batchnorm=use_batchnorm, **options)


CLASSES = {"Sequential": Sequential, "MultiLayerNet": MultiLayerNet,
           "MultiLayerNetExtend": MultiLayerNetExtend}


def _build(spec: dict) -> Sequential:
    """A network of the class and options ``spec`` describes (``model_file.spec_of``)."""
    spec = dict(spec)
    cls = CLASSES[spec.pop("cls", "Sequential")]
    sizes = (spec.pop("input_size"), spec.pop("hidden_size"), spec.pop("output_size"))
    if cls is Sequential:
        return Sequential(*sizes, 1.0, seed=0, **spec)
    activation = spec.pop("activation")
    if cls is MultiLayerNet:
        for key in ("use_dropout", "dropout_ratio", "use_batchnorm"):
            spec.pop(key, None)
    return cls(*sizes, activation, 1.0, seed=0, **spec)


def _unpickle(spec: dict, flat: np.ndarray, state=None) -> Sequential:
    net = _build(spec)
    net.params.flat[...] = flat
    if state is not None:
        net.state[...] = state
    return net


def load(path, *, backend: str = "numba"):
    """Read a network written by ``net.save`` (of the class that saved it: Sequential,
    MultiLayerNet(Extend), SimpleConvNet, DeepConvNet).

    Raises FileNotFoundError when ``path`` does not exist and ValueError when it is not
    a readable fastnn model (corrupt, truncated, another format, or parameters that do
    not fit the architecture it describes): ``fastnn.model_file.read``.
    """
    from . import convnet, serialize

    meta, arrays = serialize.read_model(path)
    if meta.get("format") == model_file.CONVNET_FORMAT:
        return convnet.load(path, meta, arrays, backend)
    spec, arrays, metadata = model_file.read(path, CLASSES, (meta, arrays))
    try:
        net = _build(dict(spec, backend=backend))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: the architecture it describes is invalid ({exc})") from None
    net.params.update({k: v for k, v in arrays.items() if k in net.params})
    for key, view in net.running_stats.items():
        view[...] = arrays[key]
    net.metadata = metadata
    return net

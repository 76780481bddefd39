"""The book's convolutional networks: ``SimpleConvNet`` (chapter 7) and ``DeepConvNet``
(chapter 8) on fastnn's layers, with the book's signatures, defaults and ``params``.

A network is a plan (``plan``): a list of layer kinds of ``fastnn.layers.LAYER_KINDS``
("conv", "relu", "pool", "affine", "dropout") walked over the input's shape, which
checks the geometry (naming the argument at fault), names the layers and parameters
and gives each weight its fan-in. ``ConvNet`` builds the layers from a plan, keeps the
parameters in one flat buffer (``params[key]`` are views, as in ``Sequential``) and runs
them through ``net.engine`` (``fastnn.conv_engine``). Each public method validates its
arguments first: a call that raises has changed nothing.

With ``seed=None`` every draw comes from NumPy's global state in the book's order: the
weights W1, W2, ... (``std * np.random.randn(*shape)``; biases are zeros), then per
training pass one ``np.random.rand(*x.shape) > 0.5`` per Dropout layer, so after
``np.random.seed(0)`` a book script gives the book's network and numbers.
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from . import _validation as V
from . import model_file, params_pickle
from ._backends import BACKENDS, get_backend
from .common.gradient import numerical_gradient
from .conv import check_images, check_window, conv_work
from .conv_engine import ConvEngine
from .layers import LAYER_KINDS, SoftmaxWithLoss, init_std
from .params import ParamDict, Shapes

CONV_KEYS = ("filter_num", "filter_size", "pad", "stride")
POOL = (2, 2, 2)  # the books' pooling after convolutions: 2x2 windows, stride 2


# --- arguments -------------------------------------------------------------------------


def check_conv_param(value, name: str) -> dict:
    """A conv_param dict: exactly the book's four keys, each an integer (filter_num,
    filter_size and stride positive, pad non-negative)."""
    if not isinstance(value, dict):
        raise V.BadType(name, f"expected a dict with keys {', '.join(CONV_KEYS)}, got "
                        f"{type(value).__name__}")
    missing = [k for k in CONV_KEYS if k not in value]
    unknown = [k for k in value if k not in CONV_KEYS]
    if missing or unknown:
        what = (f"missing {', '.join(map(repr, missing))}" if missing else "") + \
            ("; " if missing and unknown else "") + \
            (f"unknown {', '.join(map(repr, unknown))}" if unknown else "")
        raise V.BadValue(name, f"expected the keys {', '.join(CONV_KEYS)}: {what}")
    out = {}
    for key in CONV_KEYS:
        check = V.check_non_negative_int if key == "pad" else V.check_positive_int
        out[key] = check(value[key], f"{name}[{key!r}]")
    return out


def check_input_dim(value) -> tuple[int, int, int]:
    """input_dim: (channels, height, width), positive integers."""
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise V.BadValue("input_dim", f"expected (channels, height, width), e.g. (1, 28, 28), "
                         f"got {value!r}")
    return tuple(V.check_positive_int(n, f"input_dim[{i}]") for i, n in enumerate(value))


# --- plans -----------------------------------------------------------------------------


class Step(NamedTuple):
    """One layer of a plan: its kind, name (Conv1, Relu1, ...) and constructor arguments
    beyond the parameters; ``param``: i of its W{i}, b{i} (0: none)."""

    kind: str
    name: str
    args: tuple
    param: int


class Plan(NamedTuple):
    steps: list  # [Step]
    shapes: Shapes  # (("W1", shape), ("b1", (FN,)), ...), the book's order
    fan_ins: list  # each W{i}'s inputs per output (C * FH * FW, or D)
    work: int  # multiply-adds per image of a forward pass


def plan(input_dim, entries) -> Plan:
    """Walk ``entries`` over images of ``input_dim``: ("conv", conv_param, its argument's
    name), ("relu",), ("pool",), ("affine", size), ("dropout", ratio). Raises a
    ValueError naming the argument whose layer does not fit."""
    C, H, W = input_dim
    flat = None  # the features per image once an affine layer has flattened them
    steps, shapes, fan_ins, work, counts = [], [], [], 0, {}
    for kind, *spec in entries:
        counts[kind] = counts.get(kind, 0) + 1
        name = {"conv": "Conv", "pool": "Pool"}.get(kind, kind.capitalize()) + \
            str(counts[kind])
        param = 0
        if kind == "conv":
            cp, arg = spec
            FN, FS = cp["filter_num"], cp["filter_size"]
            OH, OW = check_window((H, W), FS, FS, cp["stride"], cp["pad"], arg)
            param = len(fan_ins) + 1
            shapes += [(f"W{param}", (FN, C, FS, FS)), (f"b{param}", (FN,))]
            fan_ins.append(C * FS * FS)
            work += conv_work(C, FN, FS, FS, OH, OW)
            args, (C, H, W) = (cp["stride"], cp["pad"]), (FN, OH, OW)
        elif kind == "pool":
            try:
                H, W = check_window((H, W), *POOL[:2], POOL[2], 0, "input_dim",
                                    f"pooling window of {name}")
            except V.BadValue as exc:
                raise V.BadValue("input_dim", f"{tuple(input_dim)} is too small for the "
                                 f"network: {exc.detail}") from None
            args = POOL
        elif kind == "affine":
            size = spec[0]
            D = flat if flat is not None else C * H * W
            param = len(fan_ins) + 1
            shapes += [(f"W{param}", (D, size)), (f"b{param}", (size,))]
            fan_ins.append(D)
            work += D * size
            args, flat = (), size
        else:  # relu, dropout
            args = tuple(spec)
        steps.append(Step(kind, name, args, param))
    return Plan(steps, Shapes(shapes), fan_ins, work)


# --- the networks ----------------------------------------------------------------------


class ConvNet:
    """What SimpleConvNet and DeepConvNet share: built from a plan, the book's methods.

    Subclasses check their book arguments and make their plan (``architecture``, a
    static method that allocates nothing), then call ``_build`` with the plan and the
    checked arguments (``_book_args``: what ``save`` writes and ``copy`` and
    ``fastnn.load`` rebuild from).
    """

    _loss_trains = False  # DeepConvNet: the book's loss() runs Dropout as in training
    _layers_as_list = False  # DeepConvNet: the book's ``layers`` is a list
    loss_name = "softmax"

    def _build(self, plan_: Plan, book_args: dict, stds, backend, dtype, seed) -> None:
        self._book_args = book_args
        self.input_dim = tuple(book_args["input_dim"])
        self.output_size = book_args["output_size"]
        self.backend = V.check_choice(backend, "backend", BACKENDS)
        self.dtype = V.check_dtype(dtype)
        seed = V.check_seed(seed)
        be = get_backend(self.backend)
        self.plan = plan_
        size = plan_.shapes.size
        try:
            flat = np.zeros(size, self.dtype)
        except (MemoryError, ValueError):
            raise V.BadValue("hidden_size", f"the network has {size:,} parameters, more than "
                             "this machine can allocate") from None
        self.params = ParamDict(flat, plan_.shapes, backend=be)
        self._rng = np.random.default_rng(seed) if seed is not None else None
        for i, std in enumerate(stds, start=1):  # W1, W2, ... in order, as the book draws
            W = self.params[f"W{i}"]
            draw = np.random.randn(*W.shape) if self._rng is None \
                else self._rng.standard_normal(W.shape)
            W[...] = std * draw
        self.metadata = {}
        named, param_layers = OrderedDict(), []
        for step in plan_.steps:
            cls = LAYER_KINDS[step.kind]
            if step.param:
                W, b = self.params[f"W{step.param}"], self.params[f"b{step.param}"]
                layer = cls(W, b, *step.args, backend=be)
                param_layers.append(layer)
            elif step.kind == "dropout":
                layer = cls(*step.args, backend=be, draw=lambda shape: self.engine.masks_draw(
                    shape))
            else:
                layer = cls(*step.args, backend=be)
            named[step.name] = layer
        self.layers = list(named.values()) if self._layers_as_list else named
        self.last_layer = SoftmaxWithLoss(be)
        self.engine = ConvEngine(be, self.params, named.values(), self.last_layer,
                                 param_layers, plan_.work, self._draw)

    def _draw(self, shape):
        """Uniform [0, 1) floats: the book's ``np.random.rand``, or the private generator."""
        return np.random.rand(*shape) if self._rng is None else self._rng.random(shape)

    # --- description -------------------------------------------------------------------

    @property
    def input_size(self) -> int:
        """Features per image (C * H * W)."""
        return math.prod(self.input_dim)

    @property
    def n_params(self) -> int:
        return self.params.flat.size

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._book_args.items())
        return (f"{type(self).__name__}({args}, backend={self.backend!r}, "
                f"dtype={self.dtype.name})")

    def copy(self, *, backend=None, dtype=None):
        """An independent copy, optionally on another backend or dtype (parameters cast).
        A seeded network's copy gets a generator of its own."""
        clone = build(type(self).__name__, self._book_args,
                      self.backend if backend is None else backend,
                      self.dtype if dtype is None else dtype)
        clone.params.flat[...] = self.params.flat
        return clone

    def __reduce__(self):
        """Pickling (multiprocessing, Dask): the architecture and the parameters."""
        return _unpickle, (type(self).__name__, self._book_args, self.backend,
                           self.dtype.name, self.params.flat.copy())

    # --- validation --------------------------------------------------------------------

    def validate(self, x, t=None, *, names=("x", "t"), loss=None, label_range=True):
        """``(x, t)`` checked and converted to what ``net.engine`` takes: x a C-contiguous
        (N, C, H, W) array of the network's dtype, finite; t (optional) intp class
        indices (N,) or one-hot rows. Raises ValueError/TypeError naming the argument."""
        x = check_images(x, names[0], self.input_dim[0], self.dtype)
        if x.shape[2:] != self.input_dim[1:]:
            raise V.BadValue(names[0], f"has images of {x.shape[2]}x{x.shape[3]} (shape "
                             f"{x.shape}), but the network expects {self.input_dim[1]}x"
                             f"{self.input_dim[2]} (input_dim {self.input_dim})")
        if not np.isfinite(x).all():
            V.raise_if_nonfinite(x.reshape(x.shape[0], -1), names[0])
        if t is not None:
            t = V.check_targets(t, names[1], x.shape[0], self.output_size, "softmax",
                                self.dtype, label_range)
        return x, t

    # --- the book's methods --------------------------------------------------------------

    def predict(self, x, train_flg=False) -> np.ndarray:
        """Scores (N, output_size) of the last affine layer (before softmax), a new array.
        ``train_flg`` True runs Dropout as in training (new masks)."""
        train_flg = V.check_bool(train_flg, "train_flg")
        x, _ = self.validate(x)
        return self.engine.predict(x, train=train_flg)

    def loss(self, x, t, train_flg=None) -> float:
        """The mean cross-entropy of the batch. ``train_flg`` None: the book's choice
        (DeepConvNet's loss runs Dropout as in training, drawing masks; SimpleConvNet
        has none)."""
        train = self._loss_trains if train_flg is None else V.check_bool(train_flg,
                                                                         "train_flg")
        x, t = self.validate(x, t)
        return self.engine.evaluate(x, t, train=train)[0]

    def accuracy(self, x, t, batch_size=100) -> float:
        """The fraction of images whose highest score is the label (ints or one-hot),
        ``batch_size`` images per pass. (The book's counts only whole batches and divides
        by N: it undercounts when N is not a multiple of batch_size; this does not.)"""
        batch_size = V.check_positive_int(batch_size, "batch_size")
        x, t = self.validate(x, t)
        return self.engine.evaluate(x, t, rows=batch_size)[1]

    def loss_and_gradient(self, x, t):
        """The mean loss and the gradients of every parameter, by backpropagation
        (training mode: new Dropout masks)."""
        x, t = self.validate(x, t)
        return self.engine.gradient(x, t)

    def gradient(self, x, t):
        """Gradients of the mean loss: a dict with the params' keys (new arrays)."""
        return self.loss_and_gradient(x, t)[1]

    def numerical_gradient(self, x, t, h: float = 1e-4) -> dict:
        """Central-difference gradients of the loss (training mode), one parameter element
        at a time: slow, for checking small networks, in float64. Dropout keeps one set
        of masks for all the differences (the first drawn, or those fixed by the caller
        with ``net.engine.fixed_masks()``)."""
        x, t = self.validate(x, t)
        h = V.check_positive_float(h, "h")
        fixed = self.engine.fixed_masks() if self.engine._fixed is None \
            else contextlib.nullcontext()  # (masks already fixed by the caller)
        grads = {}
        with fixed:
            for key, p in self.params.items():  # p is a view: the layers see the change
                grads[key] = numerical_gradient(
                    lambda _: self.engine.evaluate(x, t, train=True, rows=x.shape[0])[0],
                    p, h)
        return grads

    def train_step(self, x, t, optimizer) -> float:
        """One step of training: forward, backward and ``optimizer``'s update (one pass
        over the flat parameters); the batch's loss. When it is NaN or infinite nothing
        is updated and it is returned for the caller to act on."""
        from .optim import check_optimizer

        check_optimizer(optimizer).prepare(self)  # another network's state: refused now
        x, t = self.validate(x, t)
        return self.engine.step(x, t, optimizer)

    # --- files ---------------------------------------------------------------------------

    def save_params(self, file_name="params.pkl") -> None:
        """Write ``params`` as the book does: a pickle of a dict of NumPy arrays (protocol
        4), atomically; the book's ``load_params`` reads it."""
        params_pickle.write(file_name, self.params)

    def load_params(self, file_name="params.pkl") -> None:
        """Read a pickle of the book's ``save_params`` (e.g. the trained
        ``deep_convnet_params.pkl`` of its ch08) into ``params``: the same keys and
        shapes, cast to the network's dtype. The file is read by a restricted unpickler
        that admits only a dict of str to NumPy arrays and never runs code from it;
        anything else is one ValueError naming the file, and the network is unchanged."""
        arrays = params_pickle.read(file_name)
        model_file.check_arrays(file_name, arrays, dict(self.plan.shapes))
        biggest = np.finfo(self.dtype).max
        for key, value in arrays.items():  # (float64 files into a float32 network)
            if value.dtype.itemsize > self.dtype.itemsize and np.abs(value).max() > biggest:
                raise ValueError(f"{file_name}: parameter {key} holds values beyond the "
                                 f"range of this {self.dtype.name} network")
        self.params.update(arrays)

    def save(self, path) -> None:
        """Write the architecture and the parameters to ``path`` (.npz), atomically; read
        it with ``fastnn.load``."""
        model_file.save_convnet(self, path)


class SimpleConvNet(ConvNet):
    """The book's ``SimpleConvNet`` (ch07/simple_convnet.py): conv - relu - pool - affine -
    relu - affine - softmax.

    ``SimpleConvNet(input_dim=(1, 28, 28), conv_param={'filter_num': 30,
    'filter_size': 5, 'pad': 0, 'stride': 1}, hidden_size=100, output_size=10,
    weight_init_std=0.01)``: ``params`` W1 (filter_num, C, filter_size, filter_size),
    b1, W2 (pooled features, hidden_size), b2, W3, b3; ``layers`` (an OrderedDict: Conv1,
    Relu1, Pool1, Affine1, Relu2, Affine2), ``last_layer``; ``predict``, ``loss``,
    ``accuracy(x, t, batch_size=100)``, ``gradient``, ``numerical_gradient``,
    ``save_params`` / ``load_params``. Plus fastnn's ``backend`` ("numba": the kernels;
    "numpy": the reference), ``dtype``, ``seed`` (None: NumPy's global state, the book's
    draws), ``train_step``, ``save``. ``weight_init_std`` may also be "he"/"relu" or
    "xavier"/"sigmoid" (from each layer's fan-in). Non-square images work (the book's
    assumes H = W).
    """

    def __init__(self, input_dim=(1, 28, 28), conv_param=None, hidden_size=100,
                 output_size=10, weight_init_std=0.01, *, backend="numba",
                 dtype=np.float64, seed=None):
        p, book_args = self.architecture(input_dim, conv_param, hidden_size, output_size)
        stds = [init_std(weight_init_std, fan_in) for fan_in in p.fan_ins]
        self._build(p, book_args, stds, backend, dtype, seed)

    @staticmethod
    def architecture(input_dim=(1, 28, 28), conv_param=None, hidden_size=100,
                     output_size=10) -> tuple[Plan, dict]:
        """(the plan, the checked arguments) of a SimpleConvNet; allocates nothing."""
        if conv_param is None:
            conv_param = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}
        input_dim = check_input_dim(input_dim)
        conv_param = check_conv_param(conv_param, "conv_param")
        hidden_size = V.check_positive_int(hidden_size, "hidden_size")
        output_size = V.check_positive_int(output_size, "output_size")
        p = plan(input_dim, [("conv", conv_param, "conv_param"), ("relu",), ("pool",),
                             ("affine", hidden_size), ("relu",), ("affine", output_size)])
        return p, dict(input_dim=list(input_dim), conv_param=conv_param,
                       hidden_size=hidden_size, output_size=output_size)


DEEP_DEFAULTS = [(16, 1), (16, 1), (32, 1), (32, 2), (64, 1), (64, 1)]  # filters, pad


class DeepConvNet(ConvNet):
    """The book's ``DeepConvNet`` (ch08/deep_convnet.py): (conv - relu - conv - relu -
    pool) x 3, affine - relu - dropout - affine - dropout - softmax.

    ``DeepConvNet(input_dim=(1, 28, 28), conv_param_1=..., ..., conv_param_6=...,
    hidden_size=50, output_size=10)`` with the book's defaults (16, 16, 32, 32, 64, 64
    filters of 3x3, stride 1, pad 1 but conv 4's pad 2); He initialisation, std
    ``sqrt(2 / fan_in)`` from each layer's fan-in (the book's ``pre_node_nums``:
    C * 3 * 3 per convolution, 64 * 4 * 4 and hidden_size for the affine layers, here
    computed from the shapes, so other inputs work too); the book's Dropout 0.5 (not
    inverted) after both affine layers. ``params`` W1..W8, b1..b8; ``layers`` (a list,
    as the book's) and ``last_layer``; ``loss(x, t)`` runs Dropout as in training, as
    the book's does. fastnn's keywords as in ``SimpleConvNet``.
    """

    _loss_trains = True
    _layers_as_list = True

    def __init__(self, input_dim=(1, 28, 28), conv_param_1=None, conv_param_2=None,
                 conv_param_3=None, conv_param_4=None, conv_param_5=None, conv_param_6=None,
                 hidden_size=50, output_size=10, *, backend="numba", dtype=np.float64,
                 seed=None):
        p, book_args = self.architecture(input_dim, conv_param_1, conv_param_2, conv_param_3,
                                         conv_param_4, conv_param_5, conv_param_6,
                                         hidden_size, output_size)
        stds = [math.sqrt(2.0 / fan_in) for fan_in in p.fan_ins]
        self._build(p, book_args, stds, backend, dtype, seed)

    @staticmethod
    def architecture(input_dim=(1, 28, 28), conv_param_1=None, conv_param_2=None,
                     conv_param_3=None, conv_param_4=None, conv_param_5=None,
                     conv_param_6=None, hidden_size=50, output_size=10) -> tuple[Plan, dict]:
        """(the plan, the checked arguments) of a DeepConvNet; allocates nothing."""
        input_dim = check_input_dim(input_dim)
        given = [conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5,
                 conv_param_6]
        conv_params = []
        for i, (cp, (n, pad)) in enumerate(zip(given, DEEP_DEFAULTS), start=1):
            if cp is None:
                cp = {"filter_num": n, "filter_size": 3, "pad": pad, "stride": 1}
            conv_params.append(check_conv_param(cp, f"conv_param_{i}"))
        hidden_size = V.check_positive_int(hidden_size, "hidden_size")
        output_size = V.check_positive_int(output_size, "output_size")
        entries = []
        for i, cp in enumerate(conv_params, start=1):
            entries += [("conv", cp, f"conv_param_{i}"), ("relu",)]
            if i % 2 == 0:
                entries.append(("pool",))
        entries += [("affine", hidden_size), ("relu",), ("dropout", 0.5),
                    ("affine", output_size), ("dropout", 0.5)]
        book_args = dict(input_dim=list(input_dim),
                         **{f"conv_param_{i}": cp for i, cp in enumerate(conv_params, start=1)},
                         hidden_size=hidden_size, output_size=output_size)
        return plan(input_dim, entries), book_args


CLASSES = {"SimpleConvNet": SimpleConvNet, "DeepConvNet": DeepConvNet}


def build(cls_name: str, book_args: dict, backend="numba", dtype=np.float64) -> ConvNet:
    """A network of class ``cls_name`` with the architecture ``book_args`` (its weights
    drawn from a private generator, to be overwritten)."""
    return CLASSES[cls_name](**book_args, backend=backend, dtype=dtype, seed=0)


def shapes_of(cls_name: str, book_args: dict) -> dict:
    """{name: shape} of the parameters of the architecture, computed without allocating
    (raises TypeError/ValueError for arguments the class refuses)."""
    return dict(CLASSES[cls_name].architecture(**book_args)[0].shapes)


def load(path, meta: dict, arrays: dict, backend: str = "numba") -> ConvNet:
    """The network of a convnet model file's checked contents (``fastnn.load``)."""
    cls, args, dtype, metadata = model_file.read_convnet(path, meta, arrays, CLASSES,
                                                         shapes_of)
    net = build(cls, args, backend, dtype)
    net.params.update(arrays)
    net.metadata = metadata
    return net


def _unpickle(cls_name, book_args, backend, dtype, flat) -> ConvNet:
    net = build(cls_name, book_args, backend, dtype)
    net.params.flat[...] = flat
    return net


__all__ = ["SimpleConvNet", "DeepConvNet", "ConvNet", "plan"]

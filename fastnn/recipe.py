"""A training run described as data: per-data-set defaults, and the network, optimizer and
fit() arguments a description stands for.

``fastnn train`` and every trial of ``fastnn sweep`` go through ``resolve`` and ``build``,
so a sweep's trial with the same options trains exactly what ``fastnn train`` would.
"""

from __future__ import annotations

import numpy as np

from .layers import ACTIVATIONS

DATASETS = ("digits", "fashion-mnist", "mnist", "sine")

# Per data set: what `fastnn train` does when no option says otherwise.
DEFAULTS = {
    # 1,437 training images: small batches, 40 epochs (>= 97.7 % test accuracy, seeds 0-4)
    "digits": dict(hidden="128,128", activation="relu", loss="softmax", batch_size=32,
                   epochs=40, lr=0.1, init="he"),
    "mnist": dict(hidden="128,128", activation="relu", loss="softmax", batch_size=100,
                  epochs=10, lr=0.1, init="he"),
    "fashion-mnist": dict(hidden="128,128", activation="relu", loss="softmax", batch_size=100,
                          epochs=10, lr=0.1, init="he"),
    # the seed article's 1-3-1 sine fit: sigmoid hidden layer, identity output, squared
    # error, one sample per step, 2,001 epochs, learning rate 0.1, weights ~ 0.01 * randn
    # (it reports every 200 epochs: so does `fastnn train --dataset sine`)
    "sine": dict(hidden="3", activation="sigmoid", loss="mse", batch_size=1, epochs=2001,
                 lr=0.1, init="0.01", eval_every=200 * 63),
}

# How each data set is loaded (recorded in saved models); a convnet's images are loaded
# with flatten=False: (N, 1, H, W)
DATASET_OPTIONS = {"digits": {"normalize": True}, "mnist": {"normalize": True, "flatten": True},
                   "fashion-mnist": {"normalize": True, "flatten": True}, "sine": {}}

# The networks `fastnn train --model` builds: the plain Sequential, the book's convnets
MODELS = ("mlp", "simple-convnet", "deep-convnet")
CONVNETS = {"simple-convnet": "SimpleConvNet", "deep-convnet": "DeepConvNet"}

# Per convnet (and data set): what an option left out means. The book's training
# (ch07/train_convnet.py, ch08/train_deepnet.py): Adam at its default lr 0.001, batch 100,
# 20 epochs on MNIST-sized images. The 1,437 digits are 15 batches an epoch: 60 epochs,
# and SimpleConvNet's weights He-scaled (measured, seed 0: test accuracy 97.8 % against
# 95.8 % with the book's std 0.01; 96.9 % after 30 epochs).
CONVNET_DEFAULTS = {
    "simple-convnet": dict(hidden="100", init="0.01", batch_size=100, epochs=20,
                           optimizer="adam"),
    "deep-convnet": dict(hidden="50", init="he", batch_size=100, epochs=20,
                         optimizer="adam"),
}
CONVNET_DIGITS = {"simple-convnet": dict(epochs=60, init="he"), "deep-convnet": dict(epochs=60)}
# SimpleConvNet's filters: the book's 30 of 5x5 on images of at least this many pixels a
# side; 3x3 below it (the 8x8 digits: 5x5 filters leave a 4x4 map, pooled to 2x2)
SMALL_IMAGE = 16

# The keys of a resolved description, in the order they are shown
KEYS = ("dataset", "model", "hidden", "activation", "init", "loss", "batch_size", "epochs",
        "iters", "eval_every", "optimizer", "lr", "momentum", "weight_decay", "dropout",
        "batchnorm", "bias", "backend", "dtype", "seed")

# The data sets whose targets are real numbers (the others have class labels)
REGRESSION = ("sine",)


def check_loss(dataset: str, loss) -> None:
    """A ValueError naming ``loss`` when it does not fit the data set's targets: the
    squared errors fit real targets, softmax class labels (None: the default, fits)."""
    if loss is None:
        return
    regression = dataset in REGRESSION
    if regression and loss == "softmax":
        raise ValueError(f"loss: {dataset} has real targets; expected mse or sse, got "
                         f"{loss!r}")
    if not regression and loss != "softmax":
        raise ValueError(f"loss: {dataset} has class labels; expected softmax (mse and sse "
                         f"fit real targets, e.g. the sine data set), got {loss!r}")


def load_dataset(name: str, data_dir=None, images: bool = False):
    """(x_train, t_train), (x_test, t_test) for a data set name; sine has no test split.
    ``images``: (N, 1, H, W) images for a convnet instead of rows of features."""
    from . import datasets

    flatten = not images
    if name == "digits":
        return datasets.load_digits(flatten=flatten)
    if name == "mnist":
        return datasets.load_mnist(data_dir=data_dir, flatten=flatten)
    if name == "fashion-mnist":
        return datasets.load_fashion_mnist(data_dir=data_dir, flatten=flatten)
    x, t = datasets.make_sine()
    return (x, t), (None, None)


def parse_init(value):
    """A number (the weights' standard deviation) or a scheme name, as given."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def resolve(dataset: str = "digits", **given) -> dict:
    """The whole description of a training run: ``given`` (keys of ``KEYS``; None means
    "not given") over the data set's defaults. Without an explicit init, a changed
    activation takes its own scheme (``fastnn.layers.ACTIVATIONS``: he for relu, xavier
    for sigmoid and tanh)."""
    if dataset not in DEFAULTS:
        raise ValueError(f"dataset: expected one of {', '.join(DATASETS)}, got {dataset!r}")
    unknown = sorted(set(given) - set(KEYS))
    if unknown:
        raise TypeError(f"resolve: unknown keys {unknown}")
    model = given.get("model") or "mlp"
    if model not in MODELS:
        raise ValueError(f"model: expected one of {', '.join(MODELS)}, got {model!r}")
    if model != "mlp":
        return _resolve_convnet(dataset, model, given)
    d = DEFAULTS[dataset]
    c = {k: given.get(k) for k in KEYS}
    c["dataset"], c["model"] = dataset, model
    hidden = d["hidden"] if c["hidden"] is None else c["hidden"]
    if isinstance(hidden, str):
        hidden = [int(part) for part in hidden.split(",")]
    c["hidden"] = [int(h) for h in hidden]
    c["activation"] = c["activation"] or d["activation"]
    if c["init"] is None:
        c["init"] = parse_init(d["init"]) if c["activation"] == d["activation"] else \
            ACTIVATIONS[c["activation"]].init
    else:
        c["init"] = parse_init(c["init"])
    c["loss"] = c["loss"] or d["loss"]
    c["batch_size"] = c["batch_size"] or d["batch_size"]
    if c["iters"] is None:
        c["epochs"] = c["epochs"] or d["epochs"]
    c["eval_every"] = c["eval_every"] or d.get("eval_every")
    c["optimizer"] = c["optimizer"] or "sgd"
    if c["lr"] is None and c["optimizer"] == "sgd":
        c["lr"] = d["lr"]  # the others keep their own (the book's) default
    c["weight_decay"] = c["weight_decay"] or 0.0
    c["batchnorm"] = bool(c["batchnorm"])
    c["bias"] = True if c["bias"] is None else c["bias"]
    c["backend"] = c["backend"] or "numba"
    c["dtype"] = c["dtype"] or "float64"
    c["seed"] = 0 if c["seed"] is None else c["seed"]
    return c


def _resolve_convnet(dataset: str, model: str, given: dict) -> dict:
    """``resolve`` for a convnet: the book's architecture and training, the options that
    do not apply to it refused, each naming itself."""
    if dataset in REGRESSION:
        raise ValueError(f"model: {model} classifies images; {dataset} has no images "
                         f"(use digits, mnist or fashion-mnist)")
    fixed = {  # the option: (its value when not given, why a given value is refused)
        "activation": ("relu", "the book's convnets use relu"),
        "loss": ("softmax", "the book's convnets end in softmax with cross-entropy"),
        "bias": (True, "the book's convnets have biases"),
        "batchnorm": (False, "the book's convnets have no BatchNorm"),
        "weight_decay": (0.0, "the book's convnets train without weight decay"),
        "dropout": (None, "the book's DeepConvNet has Dropout 0.5 after each affine layer, "
                          "its SimpleConvNet none" if model == "deep-convnet" else
                          "the book's SimpleConvNet has no Dropout"),
    }
    if model == "deep-convnet":
        fixed["init"] = (None, "the book's DeepConvNet draws He weights from each "
                               "layer's fan-in")
    c = {k: given.get(k) for k in KEYS}
    for key, (value, why) in fixed.items():
        if c[key] not in (None, value) and not (key == "weight_decay" and c[key] == 0):
            got = "" if isinstance(c[key], bool) else f", got {c[key]!r}"
            raise ValueError(f"{key}: not an option of {model} ({why}){got}")
        c[key] = value
    d = dict(CONVNET_DEFAULTS[model], **(CONVNET_DIGITS[model] if dataset == "digits" else {}))
    c["dataset"], c["model"] = dataset, model
    hidden = d["hidden"] if c["hidden"] is None else c["hidden"]
    if isinstance(hidden, str):
        hidden = [int(part) for part in hidden.split(",")]
    if len(hidden) != 1:
        raise ValueError(f"hidden: {model} has one hidden affine layer; expected one width "
                         f"such as {d['hidden']}, got {','.join(map(str, hidden))}")
    c["hidden"] = [int(hidden[0])]
    if model == "simple-convnet":
        c["init"] = parse_init(d["init"] if c["init"] is None else c["init"])
    c["batch_size"] = c["batch_size"] or d["batch_size"]
    if c["iters"] is None:
        c["epochs"] = c["epochs"] or d["epochs"]
    c["optimizer"] = c["optimizer"] or d["optimizer"]
    c["backend"] = c["backend"] or "numba"
    c["dtype"] = c["dtype"] or "float64"
    c["seed"] = 0 if c["seed"] is None else c["seed"]
    return c


def build_optimizer(c: dict):
    """The optimizer a resolved description names, with its lr and momentum."""
    from .optim import OPTIMIZERS

    if c["optimizer"] not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {', '.join(OPTIMIZERS)}, "
                         f"got {c['optimizer']!r}")
    kwargs = {}
    if c["lr"] is not None:
        kwargs["lr"] = c["lr"]
    if c["momentum"] is not None:
        if c["optimizer"] not in ("momentum", "nesterov"):
            raise ValueError(f"momentum: only for optimizer momentum or nesterov (the "
                             f"optimizer is {c['optimizer']})")
        kwargs["momentum"] = c["momentum"]
    return OPTIMIZERS[c["optimizer"]](**kwargs)


def n_outputs(c: dict, t) -> int:
    """Output units for targets ``t``: one per target column for regression; for
    classification the one-hot width, or the largest label + 1 (at least 2)."""
    t = np.asarray(t)
    if t.ndim == 2:
        return int(t.shape[1])
    if c["loss"] != "softmax":  # regression
        return 1
    return max(2, int(t.max()) + 1) if t.size else 2


def build(c: dict, input_shape, n_out: int):
    """``(net, optimizer)`` for a resolved description; ``input_shape`` is one sample's
    shape (features, or a convnet's (channels, height, width))."""
    from .sequential import Sequential

    optimizer = build_optimizer(c)
    input_shape = tuple(int(n) for n in np.atleast_1d(input_shape))
    if c.get("model", "mlp") != "mlp":
        return build_convnet(c, input_shape, n_out), optimizer
    n_features = int(np.prod(input_shape))
    net = Sequential(n_features, c["hidden"], n_out, c["init"], activation=c["activation"],
                     loss=c["loss"], backend=c["backend"], dtype=c["dtype"], seed=c["seed"],
                     weight_decay_lambda=c["weight_decay"], use_dropout=c["dropout"] is not None,
                     dropout_ratio=0.5 if c["dropout"] is None else c["dropout"],
                     use_batchnorm=c["batchnorm"], bias=c["bias"])
    return net, optimizer


def build_convnet(c: dict, input_shape, n_out: int):
    """The convnet a resolved description names, for images of ``input_shape``
    (channels, height, width)."""
    from .convnet import DeepConvNet, SimpleConvNet

    if len(input_shape) != 3:
        raise ValueError(f"model: {c['model']} takes images (channels, height, width); the "
                         f"data have samples of shape {input_shape}")
    common = dict(input_dim=input_shape, hidden_size=c["hidden"][0], output_size=n_out,
                  backend=c["backend"], dtype=c["dtype"], seed=c["seed"])
    if c["model"] == "deep-convnet":
        return DeepConvNet(**common)
    size = 5 if min(input_shape[1:]) >= SMALL_IMAGE else 3
    conv_param = {"filter_num": 30, "filter_size": size, "pad": 0, "stride": 1}
    return SimpleConvNet(conv_param=conv_param, weight_init_std=c["init"], **common)


def fit_arguments(c: dict) -> dict:
    """The keyword arguments of ``fit`` a resolved description stands for."""
    return dict(batch_size=c["batch_size"], epochs=c["epochs"], iters=c["iters"],
                eval_every=c["eval_every"], seed=c["seed"])


def sine_article(seed: int | None = 0, *, epochs: int = 2001, interval: int = 200,
                 backend: str = "numba", dtype="float64"):
    """The sine article's run (seed 002) on fastnn, step for step: ``(net, errors)``.

    ``errors`` maps each epoch the article reports (0, ``interval``, ...) to the error
    it prints: the mean over the epoch's 63 steps of each step's loss, 0.5 * (y - t)**2
    before the step's update. The run is these lines (the recipe for a script like
    the article's, whose draws all come from NumPy's global state)::

        np.random.seed(seed)
        x, t = fastnn.datasets.make_sine()
        net = fastnn.Sequential(1, [3], 1, 0.01, bias_init_std=0.01,
                                activation="sigmoid", loss="mse")
        history = fastnn.fit(net, x, t, batch_size=1, epochs=2001, eval_every=63,
                             shuffle="global", optimizer=fastnn.SGD(0.1))
        errors = history.loss[::200]

    ``bias_init_std`` draws each layer's biases right after its weights, as the
    article's ``Neuron`` does (weights and biases ``0.01 * randn``); ``shuffle="global"``
    orders each epoch by ``np.random.shuffle(np.arange(63))``; ``eval_every=63`` makes
    each history entry one epoch's mean step loss. Same ``np.random.seed``, same numbers
    (relative 1e-9: tests/test_seed_dropins.py); NumPy's global state is left where
    the article's script leaves it. ``seed`` None: the global state as it is (the
    article itself sets no seed).
    """
    from . import datasets
    from .optim import SGD
    from .sequential import Sequential
    from .train import fit

    if seed is not None:
        np.random.seed(seed)
    x, t = datasets.make_sine()
    net = Sequential(1, [3], 1, 0.01, bias_init_std=0.01, activation="sigmoid", loss="mse",
                     backend=backend, dtype=dtype)
    history = fit(net, x, t, batch_size=1, epochs=epochs, eval_every=x.shape[0],
                  shuffle="global", optimizer=SGD(0.1), progress=False)
    return net, {epoch: history.loss[epoch] for epoch in range(0, epochs, interval)}

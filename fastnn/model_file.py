"""The model file: what ``net.save`` writes and ``fastnn.load`` reads (an .npz).

One table, ``OPTIONS``, lists a network's options beyond its sizes, activation, loss
and dtype: how each is checked when a network is built, its default (a network saves
only the options that differ from it) and the types a file may hold for it. ``Sequential``
builds, copies, pickles, saves and loads through it, so a new option is one row here.

A file holds the arrays (``W1, b1, ...``, BatchNorm's ``gamma``/``beta`` and running
statistics) and a JSON header: ``format``, ``version``, the class, the sizes, the names
and the options (``fastnn.serialize`` reads and writes the container).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from . import _validation as V
from . import serialize

FORMAT = "fastnn.Sequential"
VERSION = 2  # 2: the class, the options and the running statistics


class Option(NamedTuple):
    check: Callable  # check(value, name) -> the value to keep (raises naming ``name``)
    default: object  # not saved when equal (older files lack it: this is what they meant)
    types: tuple  # the JSON types a file may hold for it


OPTIONS = {
    "weight_decay_lambda": Option(V.check_non_negative_float, 0.0, (int, float)),
    "use_dropout": Option(V.check_bool, False, (bool,)),
    "dropout_ratio": Option(V.check_unit_interval, 0.5, (int, float)),
    "use_batchnorm": Option(V.check_bool, False, (bool,)),
    "bias": Option(V.check_bool, True, (bool,)),
}


def check_options(values: dict) -> dict:
    """Every option of ``OPTIONS`` checked, in the table's order (defaults filled in)."""
    return {name: opt.check(values.get(name, opt.default), name)
            for name, opt in OPTIONS.items()}


def options_of(net) -> dict:
    """The options of ``net`` that differ from their defaults (its Dropout ratio only
    with Dropout): what ``repr``, ``copy`` and the file keep."""
    out = {}
    for name, opt in OPTIONS.items():
        value = getattr(net, name)
        if name == "dropout_ratio" and not net.use_dropout:
            continue
        if value != opt.default or name == "dropout_ratio":
            out[name] = value
    return out


def spec_of(net) -> dict:
    """The architecture of ``net`` as data (what builds an equal network)."""
    return dict(cls=type(net).__name__, input_size=net.input_size,
                hidden_size=list(net.hidden_size), output_size=net.output_size,
                activation=net.activation, loss=net.loss_name, backend=net.backend,
                dtype=net.dtype.name, **options_of(net))


def save(net, path) -> None:
    """Write ``net`` (architecture, options, parameters, running statistics) atomically."""
    from . import __version__

    arrays = {**net.params, **net.running_stats}
    _check_finite(arrays)
    spec = spec_of(net)
    meta = {"format": FORMAT, "version": VERSION, "fastnn": __version__,
            "class": spec.pop("cls"), **spec}
    del meta["backend"]  # (chosen when loading)
    meta.update(getattr(net, "metadata", {}) or {})  # e.g. the data set (fastnn train)
    serialize.write_model(path, meta, arrays)


def _check_finite(arrays: dict) -> None:
    for key, value in arrays.items():  # load() would refuse such a file
        if not np.all(np.isfinite(value)):
            raise ValueError(f"params[{key!r}]: contains NaN or infinity; a model that "
                             "could not be loaded again is not saved")


def read(path, classes, contents=None) -> tuple[dict, dict, dict]:
    """(spec, arrays, metadata) of the model file at ``path``, all checked: the format
    and version, the sizes and names, each option's type, a class of ``classes``, and
    the arrays against the architecture (names, shapes, finite values) before anything
    is allocated for it. Raises FileNotFoundError or one ValueError naming the file.
    ``contents``: the file's (meta, arrays), when the caller has read them."""
    meta, arrays = serialize.read_model(path) if contents is None else contents
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a fastnn model file (format {meta.get('format')!r})")
    _check_version(path, meta.get("version", 0), 0, VERSION)
    sizes = _stored_sizes(path, meta)
    cls = meta.get("class", "Sequential")
    if cls not in classes:
        raise ValueError(f"{path}: the architecture it describes is invalid (class {cls!r})")
    options = {}
    for key, opt in OPTIONS.items():
        if key in meta:
            if type(meta[key]) not in opt.types:
                raise ValueError(f"{path}: the architecture it describes is invalid ({key} "
                                 f"{meta[key]!r})")
            options[key] = meta[key]
    check_arrays(path, arrays, expected_arrays(sizes, options))
    spec = dict(cls=cls, input_size=sizes[0], hidden_size=sizes[1:-1], output_size=sizes[-1],
                activation=meta["activation"], loss=meta["loss"], dtype=meta["dtype"],
                **options)
    metadata = {k: meta[k] for k in ("dataset", "dataset_options", "data_dir") if k in meta}
    return spec, arrays, metadata


def check_arrays(path, arrays: dict, expected: dict) -> None:
    """Raise one ValueError naming ``path`` unless ``arrays`` has exactly the names of
    ``expected`` ({name: shape}), each of that shape, real and finite."""
    if set(arrays) != set(expected):
        raise ValueError(f"{path}: parameters {sorted(arrays)} do not match the architecture "
                         f"(expected {sorted(expected)})")
    for key, value in arrays.items():
        if value.shape != tuple(expected[key]):
            raise ValueError(f"{path}: parameter {key} has shape {value.shape}, the "
                             f"architecture needs {tuple(expected[key])}")
        if value.dtype.kind not in "biuf":
            raise ValueError(f"{path}: parameter {key} has dtype {value.dtype}, not numbers")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{path}: parameter {key} contains NaN or infinity")


def expected_arrays(sizes, options) -> dict:
    """{name: shape} of the arrays a file of this architecture holds."""
    expected = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        expected[f"W{i}"] = (fan_in, fan_out)
        if options.get("bias", True):
            expected[f"b{i}"] = (fan_out,)
    if options.get("use_batchnorm"):
        for i, H in enumerate(sizes[1:-1], start=1):
            for key in ("gamma", "beta", "running_mean", "running_var"):
                expected[f"{key}{i}"] = (H,)
    return expected


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


# --- the convolutional networks (fastnn.convnet) ---------------------------------------

CONVNET_FORMAT = "fastnn.ConvNet"
CONVNET_VERSION = 1



def _check_version(path, version, lowest: int, newest: int) -> None:
    """A stored format version: an int from ``lowest`` to ``newest``, or one ValueError
    naming the file (a newer one says to upgrade)."""
    if isinstance(version, bool) or not isinstance(version, int) or version < lowest:
        kind = "non-negative" if lowest == 0 else "positive"
        raise ValueError(f"{path}: not a model file fastnn wrote: its format version is "
                         f"{version!r}, not a {kind} integer")
    if version > newest:
        raise ValueError(f"{path}: written by a newer fastnn (format version {version!r}); "
                         "upgrade fastnn to read it")

def save_convnet(net, path) -> None:
    """Write a SimpleConvNet / DeepConvNet: its class, the constructor arguments that
    describe its architecture (the book's), its dtype and the parameters, atomically."""
    from . import __version__

    arrays = dict(net.params)
    _check_finite(arrays)
    meta = {"format": CONVNET_FORMAT, "version": CONVNET_VERSION, "fastnn": __version__,
            "class": type(net).__name__, "dtype": net.dtype.name, "arguments": net._book_args}
    meta.update(getattr(net, "metadata", {}) or {})
    serialize.write_model(path, meta, arrays)


def read_convnet(path, meta: dict, arrays: dict, classes, shapes_of) -> tuple:
    """(class name, arguments, dtype, metadata) of a convnet file's ``meta``, checked:
    version, a class of ``classes``, arguments its constructor accepts, and ``arrays``
    against the architecture (``shapes_of(class name, arguments)``: {name: shape},
    computed without allocating). Raises one ValueError naming the file."""
    _check_version(path, meta.get("version"), 1, CONVNET_VERSION)
    cls, args, dtype = meta.get("class"), meta.get("arguments"), meta.get("dtype")
    if cls not in classes or not isinstance(args, dict) or not isinstance(dtype, str):
        raise ValueError(f"{path}: the architecture it describes is invalid (class {cls!r}, "
                         f"arguments {args!r}, dtype {dtype!r})")
    try:
        V.check_dtype(dtype)
        expected = shapes_of(cls, args)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: the architecture it describes is invalid ({exc})") from None
    check_arrays(path, arrays, expected)
    metadata = {k: meta[k] for k in ("dataset", "dataset_options", "data_dir") if k in meta}
    return cls, args, dtype, metadata

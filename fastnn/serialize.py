"""Saving and loading networks as .npz: architecture metadata plus parameters.

Writes go to a temporary file in the same folder, are flushed to disk, then renamed over
the target: an interrupted save never destroys an existing file.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

FORMAT = "fastnn.Sequential"
VERSION = 1


def atomic_write(path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"{path}: the folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save(net, path) -> None:
    """Write ``net``'s architecture and parameters to ``path`` (.npz), atomically."""
    from . import __version__

    meta = {
        "format": FORMAT, "version": VERSION, "fastnn": __version__,
        "input_size": net.input_size, "hidden_size": net.hidden_size,
        "output_size": net.output_size, "activation": net.activation,
        "loss": net.loss_name, "dtype": net.dtype.name,
    }
    arrays = {f"param_{key}": value for key, value in net.params.items()}
    arrays["meta"] = np.array(json.dumps(meta))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load(path, *, backend: str = "numba"):
    """Read a network written by ``save`` (or ``net.save``).

    Raises FileNotFoundError when ``path`` does not exist and ValueError when it is not
    a readable fastnn model (corrupt, truncated, another format, or parameters that do
    not fit the architecture it describes).
    """
    from .sequential import Sequential

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            params = {k[len("param_"):]: data[k] for k in data.files if k.startswith("param_")}
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable fastnn model file ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a fastnn model file (format {meta.get('format')!r})"
                         if isinstance(meta, dict) else f"{path}: not a fastnn model file")
    if meta.get("version", 0) > VERSION:
        raise ValueError(f"{path}: written by a newer fastnn (format version "
                         f"{meta['version']}); upgrade fastnn to read it")
    try:
        net = Sequential(meta["input_size"], meta["hidden_size"], meta["output_size"], 1.0,
                         activation=meta["activation"], loss=meta["loss"], backend=backend,
                         dtype=meta["dtype"], seed=0)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: the architecture it describes is invalid ({exc})") from None
    if set(params) != set(net.params):
        raise ValueError(f"{path}: parameters {sorted(params)} do not match the architecture "
                         f"(expected {sorted(net.params)})")
    for key, value in params.items():
        if value.shape != net.params[key].shape:
            raise ValueError(f"{path}: parameter {key} has shape {value.shape}, the "
                             f"architecture needs {net.params[key].shape}")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{path}: parameter {key} contains NaN or infinity")
        net.params[key] = value
    return net

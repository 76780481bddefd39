"""Model files as .npz: a JSON metadata entry plus named arrays. Pure file I/O.

Writes go to a temporary file in the same folder, are flushed to disk, then renamed over
the target: an interrupted save never destroys an existing file. What the metadata and
arrays mean (the architecture) is ``fastnn.sequential``'s business.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np


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


def write_model(path, meta: dict, arrays: dict) -> None:
    """Write ``meta`` (JSON-serialisable) and ``arrays`` ({name: ndarray}) to ``path``."""
    entries = {f"param_{key}": value for key, value in arrays.items()}
    entries["meta"] = np.array(json.dumps(meta))
    atomic_write(path, lambda f: np.savez(f, **entries))


def read_model(path) -> tuple[dict, dict]:
    """``(meta, arrays)`` of a file written by ``write_model``.

    Raises FileNotFoundError when ``path`` does not exist and ValueError when it is not
    a readable model file (corrupt, truncated, no metadata).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {k[len("param_"):]: data[k] for k in data.files if k.startswith("param_")}
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable fastnn model file ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: not a fastnn model file")
    return meta, arrays

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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_stale_temporaries(folder: Path, name: str) -> None:
    """Delete temporary files of earlier saves of ``name`` whose process has died.

    Our temporaries are named ``.NAME.PID.XXXXXX.tmp``: a kill -9 during a save leaves
    one behind; a live process's (a save in progress elsewhere) is left alone.
    """
    for tmp in folder.glob(f".{name}.*.tmp"):
        pid = tmp.name[len(name) + 2:].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            try:
                tmp.unlink()
            except OSError:
                pass
        except OSError:  # alive, but another user's
            pass


def atomic_write(path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``.

    The result has the replaced file's permissions, or, for a new file, the usual ones
    (0666 less the umask). A read-only file is not replaced (PermissionError); a symbolic
    link keeps pointing where it did and its target is replaced.
    """
    path = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"{path}: the folder {folder} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder; give a file name such as "
                                f"{path / 'model.npz'}")
    mode = 0o666 & ~_umask()
    if path.exists():
        mode = path.stat().st_mode & 0o7777
        if not mode & 0o222:
            raise PermissionError(f"{path}: the file is read-only; it was not replaced")
    _remove_stale_temporaries(folder, path.name)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), mode)
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

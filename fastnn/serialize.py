"""Model files as .npz: a JSON metadata entry plus named arrays. Pure file I/O.

Writes go to a temporary file in the same folder, are flushed to disk, then renamed over
the target: an interrupted save never destroys an existing file. What the metadata and
arrays mean (the architecture) is ``fastnn.sequential``'s business.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _machine_tag() -> str:
    """Who may judge a temporary's process: this boot of this machine (``boot_id``) and
    this PID namespace (its inode). Two containers, or two hosts sharing a folder, get
    different tags, so neither takes the other's process ids for its own."""
    parts = []
    for source in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        try:
            parts.append(open(source).read().strip() if source.endswith("boot_id")
                         else str(os.stat(source).st_ino))
        except OSError:
            parts.append("?")
    if "?" in parts:  # (no /proc: the host's name stands for the machine)
        import socket

        parts.append(socket.gethostname())
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


_TAG = _machine_tag()


def _remove_stale_temporaries(folder: Path, name: str) -> None:
    """Delete temporary files of earlier saves of ``name`` whose process has died.

    Our temporaries are named ``.NAME.TAG-PID.XXXXXX.tmp``: a kill -9 during a save
    leaves one behind. Only those made here (this machine's boot and PID namespace:
    ``_TAG``) by a process that no longer exists are deleted; any other (another
    container's, another host's, a live process's) is left alone.
    """
    for tmp in folder.glob(f".{name}.{_TAG}-*.tmp"):
        pid = tmp.name[len(name) + len(_TAG) + 3:].split(".", 1)[0]
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


def check_writable(path, example: str = "model.npz") -> tuple[Path, Path]:
    """(the file to write, its folder) for ``path``, or the error a write would meet.

    FileNotFoundError: the folder does not exist; IsADirectoryError: ``path`` is a folder
    (``example`` names a file to suggest in it); PermissionError: the folder is not
    writable or the file is read-only. Messages start with ``path``. A symbolic link is
    followed to its target. Callers that must fail early (``fastnn train --save``) call
    this before the work; ``atomic_write`` calls it too.
    """
    raw = os.fspath(path)
    path = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if raw.endswith(("/", os.sep)) or path.is_dir():
        raise IsADirectoryError(f"{raw}: is a folder; give a file name such as "
                                f"{path / example}")
    if not folder.is_dir():
        raise FileNotFoundError(f"{raw}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"{raw}: the folder {folder} is not writable")
    if path.exists() and not path.stat().st_mode & 0o222:
        raise PermissionError(f"{raw}: the file is read-only; it was not replaced")
    return path, folder


def atomic_write(path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``.

    The result has the replaced file's permissions, or, for a new file, the usual ones
    (0666 less the umask). A read-only file is not replaced (PermissionError); a symbolic
    link keeps pointing where it did and its target is replaced. A write that fails
    (a full disk) raises OSError naming ``path``; the previous file is left as it was
    and the temporary is removed, also when SIGTERM arrives during the write.
    """
    from ._signals import sigterm_raises

    raw = os.fspath(path)
    path, folder = check_writable(path)
    existed = path.exists()
    mode = path.stat().st_mode & 0o7777 if existed else 0o666 & ~_umask()
    _remove_stale_temporaries(folder, path.name)
    with sigterm_raises():
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.{_TAG}-{os.getpid()}.",
                                   suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fchmod(f.fileno(), mode)
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException as exc:
            if os.path.exists(tmp):
                os.remove(tmp)
            if isinstance(exc, OSError) and not str(exc).startswith(raw):
                kept = "the previous file is unchanged" if existed else "nothing was written"
                raise type(exc)(f"{raw}: not saved: {exc.strerror or exc}; {kept}") from exc
            raise


def write_model(path, meta: dict, arrays: dict) -> None:
    """Write ``meta`` (JSON-serialisable) and ``arrays`` ({name: ndarray}) to ``path``."""
    entries = {f"param_{key}": value for key, value in arrays.items()}
    entries["meta"] = np.array(json.dumps(meta))
    atomic_write(path, lambda f: np.savez(f, **entries))


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_META_MAX_BYTES = 1 << 20
_PARAM_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _bad(path, why: str) -> ValueError:
    return ValueError(f"{path}: not a readable fastnn model file: {why}")


def read_model(path) -> tuple[dict, dict]:
    """``(meta, arrays)`` of a file written by ``write_model``.

    Raises FileNotFoundError when ``path`` does not exist and ValueError (naming the
    file and what is wrong) for anything else that is not such a file: corrupt,
    truncated, encrypted or foreign archives, a plain ``.npy``, metadata that is not a
    JSON object, arrays that are not float32/float64, or array headers that declare more
    data than the file holds. Nothing is allocated before the headers have been checked
    against the archive's sizes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
        if magic == _NPY_MAGIC:
            raise _bad(path, "a single NumPy array (.npy), not an .npz written by net.save")
        if magic[:4] != _ZIP_MAGIC:
            raise _bad(path, "not an .npz archive")
        with zipfile.ZipFile(path) as archive:
            members = {info.filename: info for info in archive.infolist()}
            if "meta.npy" not in members:
                raise _bad(path, "no metadata entry (not written by net.save)")
            meta_text = _read_member(path, archive, members["meta.npy"], "metadata")
            if meta_text.dtype.kind != "U" or meta_text.shape != ():
                raise _bad(path, f"the metadata entry is not a text (dtype "
                           f"{meta_text.dtype}, shape {meta_text.shape})")
            meta = json.loads(str(meta_text))
            if not isinstance(meta, dict):
                raise _bad(path, "the metadata is not a JSON object")
            arrays = {}
            for name, info in members.items():
                if name.startswith("param_") and name.endswith(".npy"):
                    key = name[len("param_"):-len(".npy")]
                    arrays[key] = _read_member(path, archive, info, f"parameter {key}",
                                               _PARAM_DTYPES)
    except ValueError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError,
            OSError, EOFError, zlib.error, KeyError, TypeError) as exc:
        raise _bad(path, f"{type(exc).__name__}: {exc}") from None
    return meta, arrays


def _read_member(path, archive, info, what, dtypes=None) -> np.ndarray:
    """One .npy entry of an archive, its header checked before its data is read."""
    if info.flag_bits & 0x1:
        raise _bad(path, f"{what} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _bad(path, f"{what} uses an unsupported compression method "
                   f"({info.compress_type})")
    if info.file_size > 1100 * info.compress_size + (1 << 16):  # deflate tops out near 1032x
        raise _bad(path, f"{what} claims {info.file_size} bytes from {info.compress_size} "
                   "compressed: not a plausible archive")
    with archive.open(info) as f:
        if f.read(6) != _NPY_MAGIC:
            raise _bad(path, f"{what} is not a NumPy array")
        major = f.read(2)[0]
        reader = {1: np.lib.format.read_array_header_1_0,
                  2: np.lib.format.read_array_header_2_0}.get(major)
        if reader is None:
            raise _bad(path, f"{what} has an unknown .npy format version {major}")
        shape, fortran, dtype = reader(f)
        if dtypes is not None and dtype not in dtypes:
            raise _bad(path, f"{what} has dtype {dtype}; expected float32 or float64")
        if dtype.hasobject or dtype.fields is not None or dtype.kind not in "fU":
            raise _bad(path, f"{what} has an unsupported dtype {dtype}")
        nbytes = math.prod(shape) * dtype.itemsize
        if dtypes is None and nbytes > _META_MAX_BYTES:
            raise _bad(path, f"{what} declares {nbytes} bytes, too large")
        if info.file_size != f.tell() + nbytes:
            raise _bad(path, f"{what} declares shape {shape} ({nbytes} bytes of {dtype}), but "
                       f"the file holds {info.file_size - f.tell()}: truncated or corrupt")
        data = f.read(nbytes)
    array = np.frombuffer(data, dtype=dtype)
    return array.reshape(shape, order="F" if fortran else "C").copy()

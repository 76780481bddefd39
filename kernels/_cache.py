"""fastnn's compiled-kernel cache: an optimisation that can be missing, full or damaged.

numba's own ``cache=True`` writes next to the sources (``site-packages/fastnn/kernels/
__pycache__``, which an uninstall leaves behind as a folder that shadows a later editable
install), raises at import where no folder is writable, fails every compile on a full
disk, and loads damaged entries (a zero-length index: ``EOFError``; flipped bytes in the
machine code: a segfault). So fastnn attaches its own numba cache to each kernel:

* where: ``$FASTNN_CACHE_DIR/kernels``, else ``$NUMBA_CACHE_DIR/fastnn``, else
  ``$XDG_CACHE_HOME/fastnn/kernels`` or ``~/.cache/fastnn/kernels``; inside it one folder
  per version of the kernels (a digest of every kernel module's source, the Python
  version and numba's), never inside the installed package;
* every index and data file carries a SHA-256 of its contents, and each data file the
  key it was saved under: an entry that does not match (or cannot be read) is ignored
  and rebuilt, never loaded;
* no writable folder, or a write that fails (a full disk): the kernels compile without
  the cache, and one line on stderr says why, once per process.

``FASTNN_NUMBA_CACHE=0`` turns the cache off (nothing is read or written, nothing said).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile

import numba
from numba.core.caching import (
    CompileResultCacheImpl,
    FunctionCache,
    IndexDataCacheFile,
    _CacheLocator,
    _SourceFileBackedLocatorMixin,
)
from numba.core.dispatcher import Dispatcher
from numba.core.serialize import dumps

ENABLED = os.environ.get("FASTNN_NUMBA_CACHE", "1").lower() not in ("0", "false", "no", "off")
_MAGIC = b"fastnn-kernel-cache-1\0"
_said = set()  # the reasons already reported (one line each per process)


def note(reason: str, line: str) -> None:
    """Say ``line`` on stderr, once per process for each ``reason``."""
    if reason not in _said:
        _said.add(reason)
        print(f"fastnn: {line}", file=sys.stderr, flush=True)


def sources_digest(here: str | None = None) -> str:
    """A digest of every kernel module's source, the ``.py`` files of ``here`` (default:
    this package)."""
    here = here or os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for name in sorted(os.listdir(here)):
        if name.endswith(".py"):
            with open(os.path.join(here, name), "rb") as f:
                digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()


def cache_root() -> str:
    """The folder that holds every version's kernel cache (it may not exist yet).

    Raises OSError or RuntimeError when no location can be named (no HOME and a user id
    without a passwd entry: ``Path.home()`` fails)."""
    for variable, below in (("FASTNN_CACHE_DIR", "kernels"), ("NUMBA_CACHE_DIR", "fastnn")):
        if os.environ.get(variable):
            return os.path.join(os.path.abspath(os.environ[variable]), below)
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        home = os.path.expanduser("~")
        if home == "~" or not os.path.isabs(home):
            raise RuntimeError("no home folder (HOME is unset and the user has no passwd "
                               "entry)")
        base = os.path.join(home, ".cache")
    return os.path.join(os.path.abspath(base), "fastnn", "kernels")


def version_folder() -> str:
    """This version's cache folder: the kernels' sources, Python's and numba's versions."""
    python = "{}{}".format(*sys.version_info[:2])
    key = f"{sources_digest()[:16]}-py{python}-numba{numba.__version__}"
    return os.path.join(cache_root(), key)


_folder: str | None | bool = False  # False: not looked for yet; None: none is usable


def usable_folder() -> str | None:
    """This version's cache folder, created and checked writable once per process; None
    (with one line saying why) where there is none."""
    global _folder
    if _folder is False:
        _folder = None
        try:
            folder = version_folder()
            os.makedirs(folder, exist_ok=True)
            tempfile.TemporaryFile(dir=folder).close()
            _folder = folder
        except (OSError, RuntimeError) as exc:
            note("no-folder", f"kernels compile on every run without a cache ({_why(exc)}; "
                              "set FASTNN_CACHE_DIR to a writable folder to keep them)")
    return _folder


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot write{where}: {exc.strerror}"
    return str(exc)


class _Damaged(Exception):
    """A cache file whose checksum does not match its contents."""


class _Locator(_SourceFileBackedLocatorMixin, _CacheLocator):
    """Every kernel's entries in this version's folder (``usable_folder``)."""

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = os.path.join(usable_folder(), self.get_suitable_cache_subpath(py_file))

    def get_cache_path(self):
        return self._cache_path

    @classmethod
    def from_function(cls, py_func, py_file):
        if usable_folder() is None:
            return None
        return super().from_function(py_func, py_file)


class _Impl(CompileResultCacheImpl):
    _locator_classes = [_Locator]


class _CheckedFile(IndexDataCacheFile):
    """numba's index and data files, each with a checksum of its contents; a file that
    cannot be read or does not match reads as absent (its entry is then rebuilt)."""

    def _dump(self, obj):
        data = dumps(obj)
        return _MAGIC + hashlib.sha256(data).digest() + data

    def _load(self, blob):
        head, digest, data = blob[:len(_MAGIC)], blob[len(_MAGIC):len(_MAGIC) + 32], \
            blob[len(_MAGIC) + 32:]
        if head != _MAGIC or hashlib.sha256(data).digest() != digest:
            raise _Damaged
        return pickle.loads(data)

    def _load_index(self):
        try:
            with open(self._index_path, "rb") as f:
                version = pickle.load(f)
                blob = f.read()
            if version != self._version:
                return {}
            stamp, overloads = self._load(blob)
        except FileNotFoundError:
            return {}
        except Exception:  # (zero-length, truncated, flipped, not ours: rebuilt)
            _damaged(self._index_path)
            return {}
        if stamp != self._source_stamp or not isinstance(overloads, dict):
            return {}
        return overloads

    def _load_data(self, name):
        path = self._data_path(name)
        with open(path, "rb") as f:
            blob = f.read()
        try:
            return self._load(blob)
        except Exception:
            _damaged(path)
            raise _Damaged from None

    def save(self, key, data):
        super().save(key, (key, data))

    def load(self, key):
        """The entry saved under ``key``; None when there is none, when it is damaged, or
        when its file holds another key's entry (two processes that compiled at once can
        each name the same data file in their index: the file says whose it is)."""
        try:
            entry = super().load(key)
        except _Damaged:
            return None
        if not (isinstance(entry, tuple) and len(entry) == 2 and entry[0] == key):
            return None
        return entry[1]


def _damaged(path: str) -> None:
    note("damaged", f"ignored a damaged kernel cache file, rebuilding it: {path}")


class _Cache(FunctionCache):
    """numba's per-function cache with ``_CheckedFile`` files; a failed write (a full
    disk, a folder made read-only) turns saving off for the process, with one line."""

    _impl_class = _Impl
    saving = True

    def __init__(self, py_func):
        super().__init__(py_func)
        self._cache_file = _CheckedFile(cache_path=self._cache_path,
                                        filename_base=self._impl.filename_base,
                                        source_stamp=self._impl.locator.get_source_stamp())

    def load_overload(self, sig, target_context):
        try:
            return super().load_overload(sig, target_context)
        except Exception:  # (rebuilding an entry must not fail: compiled afresh)
            _damaged(self._cache_path)
            return None

    def save_overload(self, sig, data):
        if not _Cache.saving:
            return
        try:
            super().save_overload(sig, data)
        except OSError as exc:
            _Cache.saving = False
            note("save", f"kernels compile without the cache from now on ({_why(exc)})")


def attach(dispatcher):
    """Give a compiled function (a numba dispatcher) fastnn's cache, where caching is on
    and a folder is usable; returns the dispatcher."""
    if ENABLED and isinstance(dispatcher, Dispatcher) and usable_folder() is not None:
        try:
            dispatcher._cache = _Cache(dispatcher.py_func)  # (what numba's cache=True sets)
        except (OSError, RuntimeError) as exc:  # (the folder went away since it was checked)
            note("no-folder", f"kernels compile on every run without a cache ({_why(exc)})")
    return dispatcher

"""numba's cache classes with fastnn's locator and checked files (see ``_cache``).

They build on numba's internal cache API (``numba.core.caching``); should a numba
version move it, importing this module fails and ``_cache.attach`` compiles without a
cache instead.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import pickle

from numba.core.caching import (
    CompileResultCacheImpl,
    FunctionCache,
    IndexDataCacheFile,
    _CacheLocator,
    _SourceFileBackedLocatorMixin,
)
from numba.core.serialize import dumps

from ._cache import file_lock, note, usable_folder, why

_MAGIC = b"fastnn-kernel-cache-1\0"


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
        """Save ``data`` under ``key``: the data file first, then the index, both while
        holding the folder's lock. numba's own save reads the index, adds the key and
        writes the index back unlocked, so two processes saving entries of one function
        at once (``fastnn warmup``'s processes, Dask workers, test workers sharing a
        folder) kept only the last writer's entries; and it wrote the index before the
        data, so a reader in between found an entry without its file."""
        with file_lock(os.path.join(self._cache_path, "index.lock")):  # (or without one)
            overloads = self._load_index()
            name = overloads.get(key)
            if name is None:
                taken = set(overloads.values())
                name = next(n for n in map(self._data_name, itertools.count(1))
                            if n not in taken)
            self._save_data(name, (key, data))
            if overloads.get(key) != name:
                overloads[key] = name
                self._save_index(overloads)

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


def keep_reload_hooks(cres) -> None:
    """Put a loaded entry's reload hooks back on its library, where numba leaves them off.

    numba runs an entry's hooks when it loads it (for parallel code: launching its
    threading layer, which registers ``get_num_threads``, ``numba_parallel_for`` ...
    with LLVM), but a function compiled later that calls the loaded one collects its
    callees' hooks from their libraries. Without this, a runner's ``run`` compiled
    beside a cached ``_parallel`` was saved with no hook; a fresh process that loaded it
    before anything had launched the layer (the automatic thread policy on a busy
    machine never does) called address 0: a segfault.
    """
    hooks = getattr(cres.library, "_reload_init", None)
    if hooks is not None:
        hooks.update(cres.reload_init)


def _damaged(path: str) -> None:
    note("damaged", f"ignored a damaged kernel cache file, rebuilding it: {path}")


class Cache(FunctionCache):
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
            cres = super().load_overload(sig, target_context)
        except Exception:  # (rebuilding an entry must not fail: compiled afresh)
            _damaged(self._cache_path)
            return None
        if cres is not None:
            keep_reload_hooks(cres)
        return cres

    def save_overload(self, sig, data):
        if not Cache.saving:
            return
        try:
            super().save_overload(sig, data)
        except OSError as exc:
            Cache.saving = False
            note("save", f"kernels compile without the cache from now on ({why(exc)})")

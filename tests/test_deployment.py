"""Hostile deployments (issue 23): the kernel cache in any state, and where it lives."""

import errno
import os
import subprocess
import sys

import numba
import numpy as np
import pytest
from fastnn.kernels import _cache, _cache_files

pytestmark = pytest.mark.skipif(numba.config.DISABLE_JIT, reason="about compiled code")


def _twice(x):
    return 2.0 * x + 1.0


@pytest.fixture
def cache_in(tmp_path, monkeypatch):
    """fastnn's kernel cache in ``tmp_path``, on, saving, nothing said yet."""
    monkeypatch.setattr(_cache, "ENABLED", True)
    monkeypatch.setattr(_cache, "_folder", str(tmp_path))
    monkeypatch.setattr(_cache_files.Cache, "saving", True)
    monkeypatch.setattr(_cache, "_said", set())
    return tmp_path


def _fresh():
    """A new dispatcher of ``_twice`` with fastnn's cache (as a new process would make)."""
    f = _cache.attach(numba.njit(_twice))
    assert f(3.0) == 7.0
    return f


def _hits(f):
    return sum(f.stats.cache_hits.values())


def _files(folder, suffix):
    return sorted(p for p in folder.rglob(f"*{suffix}"))


def test_entries_are_saved_and_loaded_by_a_new_dispatcher(cache_in):
    assert _hits(_fresh()) == 0
    assert _hits(_fresh()) == 1
    assert len(_files(cache_in, ".nbi")) == 1 and len(_files(cache_in, ".nbc")) == 1


def _doubled(x):
    out = np.empty_like(x)
    for i in numba.prange(x.shape[0]):
        out[i] = 2.0 * x[i]
    return out


_SAVE_IN_ANOTHER_PROCESS = """
import sys
from fastnn.kernels import _cache_files
_cache_files._CheckedFile(sys.argv[1], "f", "stamp").save(("their", "key"), b"theirs")
"""


def test_two_processes_saving_entries_of_one_function_keep_both(tmp_path, monkeypatch):
    """While one process is between reading a function's index and writing it back
    (here: held there until the other process has had a second to save its own entry),
    another's save waits for it; numba's own save lost the first writer's entry (last
    writer wins): ``fastnn warmup``'s processes, Dask workers and test workers share a
    folder."""
    import time

    ours = _cache_files._CheckedFile(str(tmp_path), "f", "stamp")
    read_index = ours._load_index
    other = []

    def read_then_let_the_other_save():
        overloads = read_index()
        if not other:
            other.append(subprocess.Popen([sys.executable, "-c", _SAVE_IN_ANOTHER_PROCESS,
                                           str(tmp_path)]))
            time.sleep(1.0)  # (unlocked, its save is done by now)
        return overloads

    monkeypatch.setattr(ours, "_load_index", read_then_let_the_other_save)
    ours.save(("our", "key"), b"ours")
    assert other[0].wait(timeout=60) == 0
    reader = _cache_files._CheckedFile(str(tmp_path), "f", "stamp")
    assert reader.load(("our", "key")) == b"ours"
    assert reader.load(("their", "key")) == b"theirs"
    assert sorted(reader._load_index()) == [("our", "key"), ("their", "key")]


def test_a_function_calling_a_loaded_parallel_one_keeps_its_reload_hook(cache_in):
    """numba relaunches its threading layer when it loads parallel code from the cache
    (the entry's reload hook). A function compiled now that calls such a loaded one must
    carry the hook into its own entry: without it, a fresh process that loaded that
    entry before anything had launched the layer called numba's ``get_num_threads`` at
    address 0 (a segfault: ``_blocks``' runner ``run`` beside a cached ``_parallel``)."""
    x = np.arange(4.0)
    np.testing.assert_array_equal(_cache.attach(numba.njit(parallel=True)(_doubled))(x),
                                  2.0 * x)
    loaded = _cache.attach(numba.njit(parallel=True)(_doubled))

    @numba.njit
    def caller(x):
        return loaded(x) + 1.0

    np.testing.assert_array_equal(caller(x), 2.0 * x + 1.0)
    assert _hits(loaded) == 1
    (cres,) = caller.overloads.values()
    assert cres.reload_init  # (numba's hook that launches its threading layer)


@pytest.mark.parametrize("damage", ["empty index", "truncated index", "empty data",
                                    "truncated data", "flipped data", "flipped index",
                                    "index of numba's own format"])
def test_a_damaged_entry_is_rebuilt_never_loaded(cache_in, capsys, damage):
    _fresh()
    kind = ".nbi" if "index" in damage else ".nbc"
    (path,) = _files(cache_in, kind)
    blob = path.read_bytes()
    if damage.startswith("empty"):
        blob = b""
    elif damage.startswith("truncated"):
        blob = blob[:len(blob) // 2]
    elif damage.startswith("flipped"):
        blob = blob[:-40] + bytes(b ^ 0xFF for b in blob[-40:-30]) + blob[-30:]
    else:  # an index numba itself wrote: the same version header, no checksum
        import pickle

        blob = pickle.dumps(numba.__version__) + pickle.dumps(("stamp", {}))
    path.write_bytes(blob)
    capsys.readouterr()
    assert _hits(_fresh()) == 0  # compiled afresh, the damaged entry not loaded
    err = capsys.readouterr().err
    if damage != "index of numba's own format":
        assert err.count("\n") == 1 and "damaged kernel cache file" in err
    assert _hits(_fresh()) == 1  # and rebuilt


def test_a_failed_write_compiles_without_the_cache_saying_why_once(cache_in, capsys,
                                                                      monkeypatch):
    def full(self, name, data):
        raise OSError(errno.ENOSPC, "No space left on device", os.path.join(cache_in, name))

    monkeypatch.setattr(_cache_files._CheckedFile, "_save_data", full)
    for _ in range(3):
        assert _hits(_fresh()) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "without the cache" in err and "No space left on device" in err
    assert str(cache_in) in err


@pytest.mark.parametrize("where", ["a file", "below a file", "no home"])
def test_no_usable_folder_compiles_without_the_cache_saying_why(where, tmp_path, monkeypatch,
                                                                  capsys):
    for name in ("FASTNN_CACHE_DIR", "NUMBA_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "file").write_text("x")
    if where == "no home":  # HOME unset, a user id without a passwd entry
        monkeypatch.delenv("HOME", raising=False)
        monkeypatch.setattr(os.path, "expanduser", lambda p: p)
    else:
        monkeypatch.setenv("FASTNN_CACHE_DIR", str(tmp_path / "file" / (
            "x" if where == "below a file" else "")))
    monkeypatch.setattr(_cache, "ENABLED", True)
    monkeypatch.setattr(_cache, "_folder", False)
    monkeypatch.setattr(_cache, "_said", set())
    f = _cache.attach(numba.njit(_twice))
    assert f(3.0) == 7.0 and type(f._cache).__name__ == "NullCache"
    _cache.attach(numba.njit(_twice))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "compile on every run" in err
    if where == "no home":
        assert "no home folder" in err


def test_the_cache_folder_is_fastnns_own_outside_the_package(tmp_path, monkeypatch):
    """An uninstall cannot leave it behind as a folder that shadows a later install."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(_cache.__file__)))
    for name in ("FASTNN_CACHE_DIR", "NUMBA_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    folder = _cache.version_folder()
    assert folder.startswith(str(tmp_path / ".cache" / "fastnn" / "kernels") + os.sep)
    assert not folder.startswith(package + os.sep)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    assert _cache.version_folder().startswith(str(tmp_path / "numba" / "fastnn") + os.sep)
    monkeypatch.setenv("FASTNN_CACHE_DIR", str(tmp_path / "mine"))
    assert _cache.version_folder().startswith(str(tmp_path / "mine" / "kernels") + os.sep)
    # keyed by the kernels' version: their sources, Python's and numba's versions
    assert _cache.sources_digest()[:16] in folder and numba.__version__ in folder


def test_no_kernel_uses_numbas_own_cache():
    """Every compiled kernel is cached through fastnn's cache or not at all (numba's
    ``cache=True`` writes into the package and fails where that is read-only)."""
    import importlib
    import pkgutil

    import fastnn.kernels as kernels
    from fastnn.kernels import network
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    seen = [network._kernel(False), network._kernel(True)]
    for info in pkgutil.iter_modules(kernels.__path__):
        module = importlib.import_module(f"fastnn.kernels.{info.name}")
        seen += [v for v in vars(module).values() if isinstance(v, Dispatcher)]
    assert len(seen) > 20
    assert {type(d._cache) for d in seen} <= {NullCache, _cache_files.Cache}


def test_fastnn_numba_cache_0_turns_every_cache_off(tmp_path):
    code = ("from fastnn.kernels import _blas, _cache, network\n"
            "print(_cache.ENABLED, type(_blas.gemm_loop._cache).__name__,"
            " type(network.scratch_._cache).__name__)\n")
    env = {**os.environ, "FASTNN_NUMBA_CACHE": "0", "FASTNN_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True)
    assert out.stdout.split() == ["False", "NullCache", "NullCache"] and out.stderr == ""
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_install_with_no_writable_home_runs(tmp_path):
    """``docker run --read-only``: no folder to cache in; import (where numba's cache=True
    raised) and a compiled kernel still work, with one line saying why, and nothing is
    written into the package. (A small kernel: the network's takes seconds to compile.)"""
    package = os.path.dirname(os.path.dirname(os.path.abspath(_cache.__file__)))
    before = sorted(os.walk(package))
    code = ("import numpy as np, fastnn\n"
            "from fastnn.kernels import network\n"
            "print(network.first_bad_label_(np.array([0, 1, 5]), 2) == 2)\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("FASTNN_CACHE_DIR", "NUMBA_CACHE_DIR", "XDG_CACHE_HOME",
                        "FASTNN_NUMBA_CACHE", "NUMBA_DISABLE_JIT")}
    env["HOME"] = "/proc/no-such-home"  # (not creatable, even by root)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
    assert out.stderr.count("\n") == 1 and "compile on every run" in out.stderr
    assert sorted(os.walk(package)) == before


def test_an_entry_saved_under_another_key_is_not_loaded(tmp_path):
    """Two processes compiling at once can both name data file 1 in their indexes: the
    file says which key it holds, and another key's entry is rebuilt, not run."""
    cache_file = _cache_files._CheckedFile(str(tmp_path), "f-1.py311", "stamp")
    cache_file.save(("float32",), "code for float32")
    assert cache_file.load(("float32",)) == "code for float32"
    overloads = cache_file._load_index()
    overloads[("float64",)] = overloads[("float32",)]  # (what the race leaves)
    cache_file._save_index(overloads)
    assert cache_file.load(("float64",)) is None
    assert cache_file.load(("float32",)) == "code for float32"


def test_a_numba_without_the_cache_classes_compiles_uncached(cache_in, capsys, monkeypatch):
    """fastnn's cache builds on numba internals; a numba that moved them costs the cache,
    never the import or the kernels."""
    monkeypatch.setitem(sys.modules, "fastnn.kernels._cache_files", None)  # (ImportError)
    f = _cache.attach(numba.njit(_twice))
    assert f(3.0) == 7.0 and type(f._cache).__name__ == "NullCache"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cache classes are not where fastnn expects" in err


def test_a_lock_that_cannot_be_had_is_said_not_raised(tmp_path):
    """``_cache.file_lock``: held (None) where the file can be made, else the reason, and
    the block runs either way (the cache's saves and the sweep warm-up go on without)."""
    ran = []
    with _cache.file_lock(str(tmp_path / "no such folder" / "index.lock")) as error:
        ran.append(error)
    with _cache.file_lock(str(tmp_path / "index.lock")) as error:
        ran.append(error)
    assert isinstance(ran[0], OSError) and ran[1] is None
    assert (tmp_path / "index.lock").stat().st_mode & 0o777 & ~0o644 == 0  # (normal rights)

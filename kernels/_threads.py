"""BLAS threads chosen for the work: the automatic policy, and forcing a count.

fastnn's compiled passes are serial; the threads are OpenBLAS's, inside the GEMMs. Two
threads on a small product lose (they wait for each other at every call, and longer when
another process holds a core), so the default policy, ``auto``, gives each kernel call a
thread count from the size of its work alone: one thread below ``AUTO_WORK``
multiply-adds per network pass (batch rows x sum of fan_in x fan_out), all usable cores
at or above it (``FASTNN_AUTO_WORK`` overrides it; the crossover is measured in
docs/performance.md, "Threads").

Reproducible bits: OpenBLAS's results at large sizes depend on its thread count (it
splits some reductions), so the choice depends on the shapes only, never on the load or
on timings: the same seed gives the same parameters on the same machine whatever else
runs.

No hidden global state: OpenBLAS's thread count is process-wide, and the user's own
``np.dot`` runs on it. So the count is set only for the duration of a kernel call
(``for_work``, a context manager) and put back as it was when the call returns or
raises; ``set_num_threads`` only records fastnn's policy. The library acted on is named,
not guessed: the one fastnn's kernels and NumPy call (NumPy's OpenBLAS), plus SciPy's
when the kernels fall back to numba's ``np.dot`` (a process holds both, and
threadpoolctl lists them in an order that varies from run to run).
"""

from __future__ import annotations

import ctypes
import os
import threading

import numba

from . import _cores

AUTO_WORK = int(os.environ.get("FASTNN_AUTO_WORK", 16_000_000))

_forced: int | None = None  # None: the automatic policy
_current: int | None = None  # the BLAS thread count fastnn's last call ran on
_libraries: list | None = None  # [(get, set)] of the BLAS libraries the kernels call
_lock = threading.Lock()
_depth = 0  # kernel calls in progress (several Python threads may call kernels at once)
_saved: list = []  # the counts found when the first of them started
_now: list = []  # the counts set since


def usable_cores() -> int:
    """Cores this process may really use: the fewest of its CPU affinity (``taskset``),
    its cgroup's CPU quota (rounded up; ``_cores`` reads both) and NUMBA_NUM_THREADS."""
    cores = min(_cores.affinity_cores(), numba.config.NUMBA_NUM_THREADS)
    quota = _cores.quota_cores()
    return max(1, cores if quota is None else min(cores, quota))


def _accessors(path: str):
    """(get, set) of the thread count of the OpenBLAS at ``path``, or None."""
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    for prefix in ("scipy_openblas", "openblas"):
        for suffix in ("64_", ""):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                get.argtypes, get.restype = [], ctypes.c_int
                put.argtypes, put.restype = [ctypes.c_int], None
                return get, put
    return None


def _generic(path: str):
    """(get, set) through threadpoolctl, for a BLAS other than OpenBLAS (slower)."""
    from threadpoolctl import ThreadpoolController

    def select():
        return ThreadpoolController().select(filepath=path)

    def get() -> int:
        pools = select().info()
        return pools[0]["num_threads"] if pools else 1

    def put(n: int) -> None:
        select().limit(limits=n)

    return get, put


def _kernel_libraries() -> list:
    """The BLAS libraries fastnn's calls run on: NumPy's (the reference's ``np.dot`` and
    the kernels' bound GEMM), and SciPy's where the kernels use numba's ``np.dot``."""
    from threadpoolctl import threadpool_info

    from . import _blas

    numpy_path = _blas._numpy_blas_path()
    paths = [numpy_path] if numpy_path else []
    if not _blas.available:
        paths += [info["filepath"] for info in threadpool_info()
                  if info.get("user_api") == "blas" and info["filepath"] != numpy_path
                  and "scipy" in os.path.basename(os.path.dirname(info["filepath"]))]
    found = []
    for path in paths:
        try:
            found.append(_accessors(path) or _generic(path))
        except Exception:  # an unreadable library: leave it alone
            continue
    return found


def blas_libraries() -> list:
    """[(get, set)] of the thread counts fastnn's calls use (found once)."""
    global _libraries
    if _libraries is None:
        _libraries = _kernel_libraries()
    return _libraries


def set_num_threads(n=None) -> None:
    """Force ``n`` BLAS threads for fastnn's calls (a positive int, at most the usable
    cores: ``fastnn.threads.check_threads`` checks it), or (None) the automatic policy.
    Only fastnn's own calls are affected: the process's BLAS settings are left as they
    are."""
    global _forced
    _forced = n


def get_num_threads() -> int:
    """The thread count in force: the forced one, else the one the last call chose (all
    usable cores before any call)."""
    if _forced is not None:
        return _forced
    return _current if _current is not None else usable_cores()


def policy() -> str | int:
    """"auto", or the forced thread count."""
    return "auto" if _forced is None else _forced


def threads_for(work: int) -> int:
    """The automatic policy's thread count for a pass of ``work`` multiply-adds."""
    return 1 if work < AUTO_WORK else usable_cores()


class for_work:
    """``with for_work(madds):`` a kernel call on the policy's thread count for that
    much work (or the forced count); the BLAS counts found are put back afterwards."""

    __slots__ = ("n",)

    def __init__(self, work: int):
        self.n = _forced if _forced is not None else threads_for(work)

    def __enter__(self):
        global _depth, _current
        with _lock:
            libraries = blas_libraries()
            if _depth == 0:  # the process's counts, put back when the last call ends
                _saved[:] = [get() for get, _ in libraries]
                _now[:] = _saved
            _depth += 1
            for i, (_, put) in enumerate(libraries):
                if _now[i] != self.n:
                    put(self.n)
                    _now[i] = self.n
            _current = self.n
        return self

    def __exit__(self, *exc):
        global _depth
        with _lock:
            _depth -= 1
            if _depth == 0:
                for (_, put), before, now in zip(blas_libraries(), _saved, _now):
                    if now != before:
                        put(before)
        return False

"""Every numba option fastnn uses, in one place.

* fastmath: ``contract`` (FMA), ``arcp`` (x/y as x*(1/y)) and ``nsz`` only. ``nnan`` and
  ``ninf`` stay off so NaN/Inf checks and NaN propagation remain correct; ``reassoc``
  stays off so sums keep their order (kernels are written so the vectorised loop is not
  the reduced one).
* cache: on by default (``FASTNN_NUMBA_CACHE=0`` turns it off). numba writes next to the
  sources, or under ``NUMBA_CACHE_DIR``; where no cache location is writable the kernels
  are compiled without caching instead of failing.
* serial and parallel variants: every kernel is compiled twice from one source, once
  with ``parallel=True`` (``prange`` loops) and once without, and ``pick`` chooses per
  call. On small work the parallel launch costs more than it saves, and on machines with
  few cores numba's worker threads compete with the BLAS threads: see README ("Threads").
"""

from __future__ import annotations

import os
import types
import warnings

import numba

# Passive waiting: a numba OpenMP worker that spins after a parallel region steals the
# core an OpenBLAS thread needs for the next GEMM (and vice versa). Only a default: the
# user's own setting wins, and it must be in place before the OpenMP runtime starts.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

FASTMATH = frozenset({"contract", "arcp", "nsz"})
CACHE = os.environ.get("FASTNN_NUMBA_CACHE", "1").lower() not in ("0", "false", "no", "off")
COMMON = {"nogil": True, "fastmath": set(FASTMATH), "error_model": "numpy"}

# Below this many elements of work a kernel runs serially (README, "Threads"). On the
# 2-core machine a pass alone gained from two threads from ~128k elements
# (`python benchmarks/compare.py --only thresholds`), but inside a 784-128-128-10
# training step the parallel passes cost 100-200 us more than the serial ones.
PARALLEL_MIN_WORK = int(os.environ.get("FASTNN_PARALLEL_MIN_WORK", 1 << 20))


def _variant(fn, suffix: str):
    """A copy of ``fn`` under its own qualified name, hence its own cache index.

    numba's cache files are named by the function's qualified name, and the index key
    does not include ``parallel``: compiled serially and in parallel from one function,
    one variant would load the other's machine code from the cache in the next process.
    """
    clone = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__,
                               fn.__closure__)
    clone.__qualname__ = f"{fn.__qualname__}__{suffix}"
    clone.__module__, clone.__doc__ = fn.__module__, fn.__doc__
    return clone


def _compile(fn, parallel: bool):
    opts = dict(COMMON, parallel=parallel)
    if parallel:
        fn = _variant(fn, "parallel")
    if CACHE:
        try:
            return numba.njit(cache=True, **opts)(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            pass
    return numba.njit(**opts)(fn)


def compile_serial(fn):
    """Compile ``fn`` once, without ``parallel`` (for functions that are loops of kernels)."""
    return _compile(fn, parallel=False)


class Kernel:
    """A Python function compiled serially and in parallel; call ``pick(work)`` to choose."""

    def __init__(self, fn):
        self.py_func = fn
        self.serial = _compile(fn, parallel=False)
        self.parallel = _compile(fn, parallel=True)
        self.__doc__ = fn.__doc__

    def pick(self, work: int):
        if work >= PARALLEL_MIN_WORK and numba.get_num_threads() > 1:
            return self.parallel
        return self.serial


def kernel(fn) -> Kernel:
    """Decorator: compile ``fn`` (which uses ``prange``) as a serial/parallel pair."""
    return Kernel(fn)


def inlined(kernel: Kernel):
    """A kernel's source compiled for inlining into a larger kernel (numba IR level).

    Calls between separately compiled functions pass array structs and touch reference
    counts on every call; inlined, the kernel's loops become part of the caller (and
    its ``prange`` loops parallel ones when the caller is compiled with ``parallel``).
    """
    return numba.njit(inline="always", **COMMON)(kernel.py_func)


def n_chunks(work: int) -> int:
    """How many independent partial reductions a parallel kernel should use."""
    if work >= PARALLEL_MIN_WORK:
        return max(1, numba.get_num_threads())
    return 1


def set_num_threads(n: int) -> None:
    """Threads for fastnn's numba kernels and for the BLAS libraries (GEMMs)."""
    from threadpoolctl import threadpool_limits

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive integer, got {n!r}")
    limit = numba.config.NUMBA_NUM_THREADS
    if n > limit:
        raise ValueError(f"n: at most {limit} threads are available (NUMBA_NUM_THREADS, read at "
                         f"import), got {n}")
    numba.set_num_threads(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        threadpool_limits(limits=n, user_api="blas")


def get_num_threads() -> int:
    """Threads the numba kernels use (``set_num_threads`` also limits BLAS to this)."""
    return numba.get_num_threads()

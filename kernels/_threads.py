"""BLAS threads chosen for the work: the automatic policy, and forcing a count.

fastnn's compiled passes are serial; the threads are OpenBLAS's, inside the GEMMs. Two
threads on a small product lose (they wait for each other at every call, and longer when
another process holds a core), so the default policy, ``auto``, gives each kernel call a
thread count from the size of its work alone: one thread below ``AUTO_WORK``
multiply-adds per network pass (batch rows x sum of fan_in x fan_out), all usable cores
at or above it. Measured on the 2-core VM fastnn is built on (784-128-128-10, float32,
one training step, us, 1 / 2 threads): batch 32 196 / 302, 64 360 / 438, 100 540 / 582,
200 1046 / 793, 400 2107 / 1504, 1000 5277 / 3738: the crossover lies between 11.8 M and
23.6 M, hence 16 M (``FASTNN_AUTO_WORK`` overrides it; docs/performance.md).

Reproducible bits: OpenBLAS's results at large sizes depend on its thread count (it
splits some reductions), so the choice depends on the shapes only, never on the load or
on timings: the same seed gives the same parameters on the same machine whatever else
runs. (What is given up: reacting to busy cores at large batches; ``set_num_threads(1)``
does that by hand.)

Setting the count is a direct call of OpenBLAS's ``set_num_threads`` (0.27 us), made
only when it changes; without that symbol, ``threadpoolctl`` (slower, also only on a
change).
"""

from __future__ import annotations

import ctypes
import os
import warnings

import numba

AUTO_WORK = int(os.environ.get("FASTNN_AUTO_WORK", 16_000_000))

_forced: int | None = None  # None: the automatic policy
_current: int | None = None  # the BLAS thread count last set by fastnn
_setter = None


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), at most NUMBA_NUM_THREADS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, numba.config.NUMBA_NUM_THREADS))


def _find_setter():
    """OpenBLAS's own set_num_threads (NumPy's bundled library), or threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            if info.get("internal_api") != "openblas":
                continue
            lib = ctypes.CDLL(info["filepath"])
            prefix = info.get("prefix", "")
            names = ["openblas_set_num_threads", "openblas_set_num_threads64_"]
            if prefix.startswith("libscipy_openblas"):
                names[:0] = ["scipy_openblas_set_num_threads64_",
                             "scipy_openblas_set_num_threads"]
            for name in names:
                fn = getattr(lib, name, None)
                if fn is not None:
                    fn.argtypes, fn.restype = [ctypes.c_int], None
                    return fn
    except Exception:  # an unusual BLAS: the generic way below
        pass

    def generic(n: int) -> None:
        from threadpoolctl import threadpool_limits

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            threadpool_limits(limits=n, user_api="blas")

    return generic


def _set_blas(n: int) -> None:
    global _setter, _current
    if _setter is None:
        _setter = _find_setter()
    _setter(n)
    _current = n


def check_threads(n, name: str = "n"):
    """None/"auto", or a positive int not above the usable cores; raises naming ``name``."""
    if n is None or (isinstance(n, str) and n.lower() == "auto"):
        return None
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{name}: expected a positive integer or None/'auto' (the automatic "
                        f"policy), got {n!r}")
    cores = usable_cores()
    if n < 1:
        raise ValueError(f"{name}: expected a positive integer or None/'auto', got {n}")
    if n > cores:
        raise ValueError(f"{name}: at most {cores} threads are usable here (the cores this "
                         f"process may run on, and NUMBA_NUM_THREADS), got {n}")
    return n


def set_num_threads(n=None) -> None:
    """Force ``n`` BLAS threads, or (None / "auto") restore the automatic policy."""
    global _forced
    n = check_threads(n)
    _forced = n
    if n is not None:
        numba.set_num_threads(n)
        _set_blas(n)


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


def use_threads_for(work: int) -> None:
    """Before a kernel call: under the automatic policy, the thread count for ``work``."""
    if _forced is None:
        n = threads_for(work)
        if n != _current:
            _set_blas(n)

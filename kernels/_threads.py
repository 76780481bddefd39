"""One policy for all of fastnn's threads: numba's (the blocks) and BLAS's (the products).

The kernels cut every pass into fixed blocks (``_blocks``) and run the blocks on numba's
threads, each block's GEMM on one BLAS thread. Since a block's arithmetic does not
depend on who runs it, the bits do not depend on the thread count, and the count can
follow the machine: ``for_work(work)`` (a context manager around each kernel call) gives
the call

* numba threads: the automatic policy's ``threads_for(work)``: one per ``THREAD_WORK``
  float64-equivalent multiply-adds of the pass (``work * itemsize // 8 //
  THREAD_WORK``: a 784-128-128-10 pass takes two threads from 18 rows in float64, 36
  in float32; the small-batch cut, ``affine_act.small_batch_grains``, gives its first
  layer two column blocks from 21 and 42; at 32 rows in float64 two threads were
  1.13-1.19x faster than one, quiet; docs/performance.md), no more than the usable cores, and
  than the cores
  free right now (``free_cores``: the machine's runnable threads that are not this
  process's, read from ``/proc`` at most every ``FREE_EVERY`` seconds); or the count
  forced with ``set_num_threads(n)``;
* BLAS threads: one (the blocks' products run side by side), so numba's threads times
  BLAS's never exceed the count chosen, itself never above the usable cores.

The NumPy reference (``blocks=False``: ``fastnn.reference``'s whole-network loop) has no
blocks; its products run on BLAS's own threads, whose sums depend on their count, so
for it the count follows the size alone (one thread below ``AUTO_WORK`` multiply-adds
per pass, all usable cores above; ``FASTNN_AUTO_WORK`` overrides it): a seed gives the
same bits whatever else runs, on either backend.

No hidden global state: numba's thread count (per Python thread) and OpenBLAS's (per
process; the user's own ``np.dot`` runs on it) are set for the duration of a kernel call
only and put back as they were when it returns or raises; ``set_num_threads`` only
records fastnn's policy. The BLAS library acted on is named, not guessed: the one
fastnn's kernels and NumPy call (NumPy's OpenBLAS), plus SciPy's when the kernels fall
back to numba's ``np.dot`` (a process holds both, and threadpoolctl lists them in an
order that varies from run to run).
"""

from __future__ import annotations

import ctypes
import os
import threading
import time

import numba

from . import _cores

# float64-equivalent multiply-adds of a whole pass per thread the automatic policy
# takes (one thread below 2 * THREAD_WORK): a layer's passes are cut into blocks of at
# least a million multiply-adds (``affine_act.LAYER_WORK``), and a small batch's
# largest products into column blocks of a million float64-equivalent ones
# (``affine_act.small_batch_grains``: x @ W1 of a 784-128 layer from 21 rows in
# float64, 42 in float32)
THREAD_WORK = 1 << 20

AUTO_WORK = int(os.environ.get("FASTNN_AUTO_WORK", 16_000_000))
FREE_EVERY = 0.2  # seconds a reading of the free cores is used for

_forced: int | None = None  # None: the automatic policy
_current: int | None = None  # the thread count fastnn's last call ran on
_libraries: list | None = None  # [(get, set)] of the BLAS libraries the kernels call
_lock = threading.Lock()
# numba's ``workqueue`` layer (where neither ``omp`` nor ``tbb`` is found) aborts the
# process when two threads run parallel code at once: calls on threads take turns there
_one_parallel = threading.Lock()
_depth = 0  # kernel calls in progress (several Python threads may call kernels at once)
_saved: list = []  # the counts found when the first of them started
_now: list = []  # the counts set since
_free = [0.0, 0]  # (when, free cores then)
_local = threading.local()  # .n: numba threads of the kernel call in progress in a thread


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
    """Force ``n`` threads for fastnn's calls (a positive int, at most the usable
    cores: ``fastnn.threads.check_threads`` checks it), or (None) the automatic policy:
    numba's threads for the kernels' blocks (BLAS on one), BLAS's for the reference.
    Only fastnn's own calls are affected: the process's numba and BLAS settings are left
    as they are."""
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


def _others_running() -> int | None:
    """Runnable threads on the machine now that are not this process's (None: unknown)."""
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
        own = 0
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat") as f:
                    stat = f.read()
            except OSError:  # (a thread that just ended)
                continue
            own += stat[stat.rindex(")") + 2] == "R"
    except (OSError, ValueError, IndexError):
        return None
    return max(running - own, 0)


def free_cores() -> int:
    """Usable cores that no other process is running on now (at least 1), read at most
    every FREE_EVERY seconds; the usable cores where /proc cannot tell."""
    now = time.monotonic()
    if now - _free[0] >= FREE_EVERY:
        others = _others_running()
        cores = usable_cores()
        free = cores if others is None else min(cores, (os.cpu_count() or 1) - others)
        _free[:] = now, max(free, 1)
    return _free[1]


def threads_for(work: int, blocks: bool = True, itemsize: int = 8) -> int:
    """The automatic policy's thread count for a pass of ``work`` multiply-adds of
    ``itemsize``-byte floats: for the kernels (``blocks``) one per THREAD_WORK
    float64-equivalent multiply-adds (a float32 one counts half), no more than the
    usable and the free cores; for the NumPy reference by size alone (its bits depend
    on BLAS's count)."""
    if not blocks:
        return 1 if work < AUTO_WORK else usable_cores()
    by_size = work * itemsize // 8 // THREAD_WORK
    if by_size <= 1:  # (most calls: no look at the cores, a microsecond each)
        return 1
    return min(by_size, usable_cores(), free_cores())


def _numba_threads():
    """(get, set) of numba's thread count for the calling Python thread (launching
    numba's threading layer the first time), through its C functions (a microsecond
    less a call than ``numba.get_num_threads``)."""
    global _numba_access, _workqueue
    if _numba_access is None:
        from numba.np.ufunc import parallel

        parallel._launch_threads()
        _numba_access = parallel._get_num_threads, parallel._set_num_threads
        _workqueue = numba.threading_layer() == "workqueue"
    return _numba_access


_numba_access = None
_workqueue = False


class for_work:
    """``with for_work(madds):`` a kernel call on the policy's thread count for that
    much work (or the forced count): numba's threads for the kernels' blocks with BLAS
    on one (``blocks``, the default), else BLAS's own threads (the NumPy reference).
    numba's count for this Python thread and the BLAS counts found are put back
    afterwards."""

    __slots__ = ("n", "blocks", "numba_before", "outer")

    def __init__(self, work: int, blocks: bool = True, itemsize: int = 8):
        self.n = _forced if _forced is not None else threads_for(work, blocks, itemsize)
        self.blocks = blocks and not numba.config.DISABLE_JIT

    def __enter__(self):
        global _depth, _current
        blas = 1 if self.blocks else self.n
        self.outer = getattr(_local, "n", 1)
        _local.n = self.n if self.blocks else 1
        # (numba's count matters only to the kernels' parallel form, which runs only on
        # more than one thread: one-thread calls, most of the small ones, skip it)
        self.blocks = self.blocks and self.n > 1
        if self.blocks:
            get, put = _numba_threads()
            if _workqueue:
                _one_parallel.acquire()
            self.numba_before = get()
            if self.numba_before != self.n:
                put(self.n)
        with _lock:
            libraries = blas_libraries()
            if _depth == 0:  # the process's counts, put back when the last call ends
                _saved[:] = [get() for get, _ in libraries]
                _now[:] = _saved
            _depth += 1
            for i, (_, put) in enumerate(libraries):
                if _now[i] != blas:
                    put(blas)
                    _now[i] = blas
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
        if self.blocks:
            if self.numba_before != self.n:
                _numba_threads()[1](self.numba_before)
            if _workqueue:
                _one_parallel.release()
        _local.n = self.outer
        return False


def block_threads() -> int:
    """The numba threads the kernel call in progress in this Python thread runs its
    blocks on: for_work's count, 1 outside for_work (a kernel called directly runs its
    blocks in turn, in the calling thread)."""
    return getattr(_local, "n", 1)

"""The thread policy's public door: how many threads fastnn's own calls use.

The numba kernels cut every pass into fixed blocks that run on numba's threads, one BLAS
thread each; the cut depends on the shapes only, so the bits do not depend on the thread
count. By default (``"auto"``) each call gets one thread per million float64
multiply-adds of a pass (a float32 one counts half), at most the usable cores and the
cores free at the time; the NumPy reference, whose
products run on BLAS's own threads, gets a count by size alone (its bits depend on it).
``set_num_threads(n)`` forces a count. The process's own numba and BLAS settings are
never changed: a count is set for the duration of a fastnn call only
(``fastnn.kernels._threads``). The rest of fastnn (the command line, sweeps) comes
through here.
"""

from __future__ import annotations

from . import _validation as V
from .kernels import _threads


def usable_cores() -> int:
    """Cores this process may really use: the fewest of its CPU affinity (``taskset``),
    its cgroup's CPU quota (a container's ``--cpus``, rounded up) and NUMBA_NUM_THREADS."""
    return _threads.usable_cores()


def check_threads(n, name: str = "n"):
    """None/"auto" (None returned), or a positive int not above the usable cores."""
    if n is None or (isinstance(n, str) and n.lower() == "auto"):
        return None
    n = V.check_positive_int(n, name)
    cores = usable_cores()
    if n > cores:
        raise V.BadValue(name, f"at most {cores} threads are usable here (the cores this "
                               f"process may use: its CPU affinity, its CPU quota and "
                               f"NUMBA_NUM_THREADS), got {n}")
    return n


def set_num_threads(n=None) -> None:
    """Threads of fastnn's calls (numba's for the kernels' blocks, BLAS's for the
    reference): ``n`` (a positive int, at most the usable cores) forces that count; None
    or "auto" restores the automatic policy, the default."""
    _threads.set_num_threads(check_threads(n))


def get_num_threads() -> int:
    """The thread count in force (forced, or the automatic policy's last choice)."""
    return _threads.get_num_threads()


def thread_policy():
    """"auto", or the thread count forced with ``set_num_threads``."""
    return _threads.policy()

"""The thread policy's public door: how many BLAS threads fastnn's own calls use.

By default (``"auto"``) each kernel call gets one thread when its pass is small and all
usable cores when it is large, chosen by size alone so a seed gives the same bits
whatever else runs (``fastnn.kernels._threads``); ``set_num_threads(n)`` forces a count.
The process's own BLAS settings are never changed: a count is set for the duration of
a fastnn call only. The rest of fastnn (the command line, sweeps) comes through here.
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
    """BLAS threads of fastnn's calls: ``n`` (a positive int, at most the usable cores)
    forces that count; None or "auto" restores the automatic policy, the default."""
    _threads.set_num_threads(check_threads(n))


def get_num_threads() -> int:
    """The BLAS thread count in force (forced, or the automatic policy's last choice)."""
    return _threads.get_num_threads()


def thread_policy():
    """"auto", or the thread count forced with ``set_num_threads``."""
    return _threads.policy()

"""Fixed blocks of images on numba's threads: the cut, and the threads of one call.

(The convolution kernels' own stand-in for the fixed-block mechanism of issue 28,
``kernels/_blocks.py``: everything about cutting and scheduling lives here, so that the
switch to the shared mechanism touches this module and its callers' two lines.)

* The cut depends on the shapes only: ``images_per_block`` gives each block enough
  multiply-adds to pay for handing it to a thread (``BLOCK_WORK``), never anything
  measured at run time. Each block's arithmetic is the same whichever thread runs it,
  and reductions across blocks are summed in block order by the caller, so the results
  do not depend on the thread count or the load.
* Scheduling is dynamic: the compiled loops run ``prange`` over the blocks under
  ``parallel_chunksize(1)``, so a thread whose core is taken runs fewer blocks instead
  of holding the others up.
* ``threads()``: a call runs its blocks on numba's threads (the count fastnn's policy
  forces, else the usable cores) with each block's products on one BLAS thread; both
  settings are put back when the call returns.
"""

from __future__ import annotations

import numba

from ._threads import for_work, policy, usable_cores

# Multiply-adds (or, for gathers and pooling, items moved) a block should hold at least:
# enough that handing it to a thread costs little beside its work, few enough that a
# batch of 100 small images still makes dozens of blocks to share out.
BLOCK_WORK = 1 << 20


def images_per_block(N: int, work_per_image: int) -> int:
    """Images in each block (the last may hold fewer): a function of the shapes only."""
    per = -(-BLOCK_WORK // max(1, work_per_image))
    return max(1, min(N, per))


def n_blocks(N: int, per_block: int) -> int:
    return -(-N // per_block)


class _OneBlasThread(for_work):
    """``for_work`` with its count fixed at one BLAS thread (each block's products)."""

    __slots__ = ()

    def __init__(self):
        self.n = 1


class threads:
    """``with threads():`` one kernel call: numba's threads per fastnn's policy (the
    forced count, else the usable cores), one BLAS thread inside each block."""

    __slots__ = ("_blas", "_before")

    def __enter__(self):
        forced = policy()
        n = usable_cores() if forced == "auto" else min(forced, usable_cores())
        self._before = numba.get_num_threads()
        numba.set_num_threads(n)
        self._blas = _OneBlasThread()
        self._blas.__enter__()
        return self

    def __exit__(self, *exc):
        self._blas.__exit__(*exc)
        numba.set_num_threads(self._before)
        return False

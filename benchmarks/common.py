"""Shared set-up for the asv suite: shapes of 784-128-128-10, random data, backends, and
``Measured``, the base of every timed grid."""

import abc
import itertools
import time

import numpy as np
from threadpoolctl import threadpool_limits

from fastnn import kernels, reference

from .timing import best_blocks

BACKENDS = {"numpy": reference, "numba": kernels}
SIZES = (784, 128, 128, 10)
BATCHES = [32, 1000]
DTYPES = ["float32", "float64"]
GRID = (list(BACKENDS), BATCHES, DTYPES)
GRID_NAMES = ["backend", "batch", "dtype"]
# a kernel with GEMMs also shows "gemm": its GEMMs alone (NumPy's matmul into preallocated
# outputs, the library the numba kernels call), the time it would take if everything
# between the GEMMs were free: how far the kernel is from its limit
GEMM_GRID = (["numpy", "numba", "gemm"], BATCHES, DTYPES)


def layer(N, D, H, dtype, seed=0):
    """x (N, D), W (D, H), b (H,) of one layer, scaled like a trained network's."""
    rng = np.random.default_rng(seed)
    x = rng.random((N, D)).astype(dtype)
    W = (rng.standard_normal((D, H)) * np.sqrt(2 / D)).astype(dtype)
    b = (0.1 * rng.standard_normal(H)).astype(dtype)
    return x, W, b


def batch(N, dtype, seed=0):
    """Inputs (N, 784) in [0, 1) and labels (N,) in 0..9."""
    rng = np.random.default_rng(seed)
    return rng.random((N, SIZES[0])).astype(dtype), rng.integers(0, SIZES[-1], N)


class Measured(abc.ABC):
    """A grid of cases timed side by side in one process; asv records the results.

    ``setup_cache`` (run once per commit, in its own process) times every parameter
    combination in turns with ``timing.best_blocks``: the fastest of 50 short blocks per
    case, on one thread (BLAS and numba pinned here and by asv.conf.json's
    ``env_nobuild``), timed by the process's CPU clock. With one thread, CPU time is the
    wall time of an undisturbed run; unlike the wall clock it does not count the time the
    process waits while another holds the core (measured under load: a 5 ms call's
    fastest wall-clock block went 5.1 -> 10 ms from run to run, its CPU time stayed
    within 6%). The ``track_`` methods read their value from that table: seconds per
    call (what regression detection watches) and the speed-up over the twin.

    A subclass sets ``params`` / ``param_names`` (the first parameter is the backend),
    writes ``case()`` and a one-line ``setup_cache`` of its own: asv keys the cached
    table by the line ``setup_cache`` is defined on, so an inherited one would be shared
    by every class.
    """

    rounds = 1  # the measurement is setup_cache's, once per commit
    timeout = 300
    unit = "seconds"
    twin = "numpy"  # the first parameter's value the speed-up is relative to
    blocks = 50

    @abc.abstractmethod
    def case(self, *params):
        """A callable running one call of the benchmarked operation for these params."""

    def measure(self) -> dict:
        """{case: seconds per call}: CPU time of one thread, the fastest block's mean."""
        import fastnn

        with threadpool_limits(1):  # every BLAS library in the process, the twins' too
            fastnn.set_num_threads(1)
            try:
                cases = {_key(p): self.case(*p) for p in itertools.product(*self.params)}
                return best_blocks(cases, rounds=self.blocks, clock=time.process_time)
            finally:
                fastnn.set_num_threads(None)

    def track_seconds(self, data, *params):
        """Seconds per call (the fastest block's mean)."""
        return data[_key(params)]

    def track_speedup(self, data, *params):
        """The twin's time over this series' time: the twin is 1, numba its speed-up over
        the NumPy twin, gemm the ceiling (the speed-up if all but the GEMMs were free)."""
        return data[_key((self.twin, *params[1:]))] / data[_key(params)]

    track_speedup.unit = "x the twin"


def _key(params) -> str:
    return "|".join(map(str, params))

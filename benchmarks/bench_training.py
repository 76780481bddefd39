"""The whole training step (forward, backward, update), its speed-up and GEMM bound, its
peak memory, and the cold compile time."""

import os
import subprocess
import sys
import tempfile

import fastnn

from .bench_kernels import network_gemms
from .common import GEMM_GRID, GRID, GRID_NAMES, SIZES, Measured, batch


def make_step(backend, N, dtype):
    x, t = batch(N, dtype)
    net = fastnn.Sequential(SIZES[0], list(SIZES[1:-1]), SIZES[-1], "he", backend=backend,
                            dtype=dtype, seed=0)
    opt = fastnn.SGD(lr=1e-3)

    def step():
        net.train_step(x, t, opt)

    return step


class TrainingStep(Measured):
    """One training step of 784-128-128-10, as fit() runs it (``Sequential.train_step``);
    "gemm": the step's eight GEMMs alone."""

    params = GEMM_GRID
    param_names = GRID_NAMES

    def setup_cache(self):
        return self.measure()

    def case(self, backend, batch, dtype):
        if backend == "gemm":
            return network_gemms(batch, dtype)
        return make_step(backend, batch, dtype)


class TrainingStepMemory:
    """Peak memory of five training steps (deterministic: one run per commit)."""

    params = GRID
    param_names = GRID_NAMES
    rounds = 1

    def setup(self, backend, batch, dtype):
        self.step = make_step(backend, batch, dtype)
        self.step()  # compile and allocate the work buffers outside the measurement

    def peakmem_training_step(self, backend, batch, dtype):
        for _ in range(5):
            self.step()


_COLD = """
import time, numpy as np, fastnn
net = fastnn.Sequential(784, [128, 128], 10, seed=0)
x = np.random.default_rng(0).random((100, 784)); t = np.arange(100) % 10
cpu, wall = time.process_time(), time.perf_counter()
net.train_step(x, t, fastnn.SGD(0.01))
print(time.process_time() - cpu, time.perf_counter() - wall)
"""


class CompileTime:
    """The first training step in a fresh process with an empty numba cache: the network
    kernel's cold compile (float64), the best of ``runs`` fresh processes.

    ``track_cpu_seconds`` is the compiling process's CPU time: the compiler is
    single-threaded, so time spent waiting for a core that another process holds is not
    counted, and it holds still on a busy machine. ``track_wall_seconds`` is what a user
    waits; it moves with the load (asv.conf.json leaves it out of regression detection).
    """

    runs = 2
    timeout = 300

    def setup_cache(self):
        best = [float("inf"), float("inf")]
        for _ in range(self.runs):
            with tempfile.TemporaryDirectory() as cache:
                env = dict(os.environ, NUMBA_CACHE_DIR=cache, FASTNN_NUMBA_CACHE="1")
                out = subprocess.run([sys.executable, "-c", _COLD], env=env, check=True,
                                     capture_output=True, text=True)
            best = [min(b, float(v)) for b, v in zip(best, out.stdout.split())]
        return best

    def track_cpu_seconds(self, data):
        return data[0]

    def track_wall_seconds(self, data):
        return data[1]

    track_cpu_seconds.unit = track_wall_seconds.unit = "seconds"

"""The whole training step (forward, backward, update), its speed-up, and compile time."""

import os
import subprocess
import sys
import tempfile

import fastnn

from .common import GRID, GRID_NAMES, SIZES, batch
from .timing import interleaved


def make_step(backend, N, dtype):
    x, t = batch(N, dtype)
    net = fastnn.Sequential(SIZES[0], list(SIZES[1:-1]), SIZES[-1], "he", backend=backend,
                            dtype=dtype, seed=0)
    opt = fastnn.SGD(lr=1e-3)

    def step():
        net.train_step(x, t, opt)

    return step


class TrainingStep:
    """One training step of 784-128-128-10, as fit() runs it."""

    params = GRID
    param_names = GRID_NAMES

    def setup(self, backend, batch, dtype):
        self.step = make_step(backend, batch, dtype)
        self.step()  # compile and allocate the work buffers outside the measurement
        self.step()

    def time_training_step(self, backend, batch, dtype):
        self.step()

    def peakmem_training_step(self, backend, batch, dtype):
        for _ in range(5):
            self.step()


class TrainingStepSpeedup:
    """numpy-backend step time / numba step time, measured side by side (a ratio)."""

    params = ([32, 1000], ["float32", "float64"])
    param_names = ["batch", "dtype"]
    unit = "ratio"

    def setup(self, batch, dtype):
        self.steps = {b: make_step(b, batch, dtype) for b in ("numpy", "numba")}
        for step in self.steps.values():
            step()

    def track_speedup(self, batch, dtype):
        r = interleaved(self.steps, rounds=5)  # noise hits both sides alike
        return float(r["numpy"] / r["numba"])


_COLD = """
import time, numpy as np, fastnn
net = fastnn.Sequential(784, [128, 128], 10, seed=0)
x = np.random.default_rng(0).random((100, 784)); t = np.arange(100) % 10
t0 = time.perf_counter(); net.train_step(x, t, fastnn.SGD(0.01))
print(time.perf_counter() - t0)
"""


def track_compile_seconds_cold():
    """Seconds of the first training step in a fresh process with an empty numba cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", _COLD], env=env, check=True,
                             capture_output=True, text=True)
    return float(out.stdout)


track_compile_seconds_cold.unit = "seconds"
track_compile_seconds_cold.timeout = 300

"""Small networks: fit() on the compiled path (numba) against the numpy backend."""

import numpy as np

import fastnn
from fastnn.datasets import make_sine

from .common import Measured


class SineFit(Measured):
    """The 1-3-1 sigmoid sine fit of the seed article, batch 1, 20 epochs x 63 samples."""

    params = (["numpy", "numba"],)
    param_names = ["backend"]
    blocks = 15

    def setup_cache(self):
        return self.measure()

    def case(self, backend):
        x, t = make_sine()

        def run():
            net = fastnn.Sequential(1, [3], 1, 0.01, activation="sigmoid", loss="mse",
                                    backend=backend, seed=0)
            fastnn.fit(net, x, t, batch_size=1, epochs=20, eval_every=20 * 63, seed=0,
                       progress=False)

        return run


class FitPath(Measured):
    """784-128-128-10, 50 iterations of fit(): the step path vs the compiled path
    (``track_speedup``: the step path's time over each path's)."""

    params = (["step", "compiled"], [8, 32, 100])
    param_names = ["path", "batch"]
    twin = "step"
    blocks = 15

    def setup_cache(self):
        return self.measure()

    def case(self, path, batch):
        rng = np.random.default_rng(0)
        x, t = rng.random((1000, 784)), rng.integers(0, 10, 1000)

        def run():
            net = fastnn.Sequential(784, [128, 128], 10, "he", seed=0)
            fastnn.fit(net, x, t, batch_size=batch, iters=50, eval_every=50, progress=False,
                       compiled=path == "compiled")

        return run

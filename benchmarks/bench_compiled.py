"""Small networks: fit() on the compiled path (numba) against the numpy backend."""

import numpy as np

import fastnn
from fastnn.datasets import make_sine


class SineFit:
    """The 1-3-1 sigmoid sine fit of the seed article, batch 1, 20 epochs x 63 samples."""

    params = (["numpy", "numba"],)
    param_names = ["backend"]
    timeout = 300

    def setup(self, backend):
        self.x, self.t = make_sine()
        self.backend = backend
        self.run(epochs=1)  # compile outside the measurement

    def run(self, epochs):
        net = fastnn.Sequential(1, [3], 1, 0.01, activation="sigmoid", loss="mse",
                                backend=self.backend, seed=0)
        fastnn.fit(net, self.x, self.t, batch_size=1, epochs=epochs, eval_every=20 * 63,
                   seed=0, progress=False)

    def time_sine_fit_20_epochs(self, backend):
        self.run(epochs=20)


class FitPath:
    """784-128-128-10, 50 iterations of fit(): the step path vs the compiled path."""

    params = (["step", "compiled"], [8, 32, 100])
    param_names = ["path", "batch"]
    timeout = 300

    def setup(self, path, batch):
        rng = np.random.default_rng(0)
        self.x, self.t = rng.random((1000, 784)), rng.integers(0, 10, 1000)
        self.compiled = path == "compiled"
        self.batch = batch
        self.run(2)

    def run(self, iters):
        net = fastnn.Sequential(784, [128, 128], 10, "he", seed=0)
        fastnn.fit(net, self.x, self.t, batch_size=self.batch, iters=iters, eval_every=iters,
                   progress=False, compiled=self.compiled)

    def time_fit_50_iterations(self, path, batch):
        self.run(50)

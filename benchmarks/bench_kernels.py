"""Each fused kernel against its NumPy twin (784-128-128-10 shapes)."""

import numpy as np

from .common import BACKENDS, GRID, GRID_NAMES, SIZES, batch, layer


class AffineReluForward:
    """The first layer: max(x @ W1 + b1, 0), x (N, 784), W1 (784, 128)."""

    params = GRID
    param_names = GRID_NAMES

    def setup(self, backend, batch, dtype):
        self.x, self.W, self.b = layer(batch, SIZES[0], SIZES[1], dtype)
        self.out = np.empty((batch, SIZES[1]), dtype)
        self.f = BACKENDS[backend].affine_relu_forward
        self.f(self.x, self.W, self.b, out=self.out)  # compile outside the timed region

    def time_affine_relu_forward(self, backend, batch, dtype):
        self.f(self.x, self.W, self.b, out=self.out)


def second_layer_backward(bench, batch, dtype):
    """Set h (N, 128), W, b, out (forward output), dout and dx of layer 2 on ``bench``."""
    bench.h, bench.W, bench.b = layer(batch, SIZES[1], SIZES[2], dtype)
    bench.out = BACKENDS["numpy"].affine_relu_forward(bench.h, bench.W, bench.b)
    bench.dout = np.random.default_rng(1).standard_normal(bench.out.shape).astype(dtype)
    bench.dx = np.empty_like(bench.h)


class AffineReluBackward:
    """The second layer's backward: mask, db, dW = h1.T @ dz and dh1 = dz @ W2.T."""

    params = GRID
    param_names = GRID_NAMES

    def setup(self, backend, batch, dtype):
        second_layer_backward(self, batch, dtype)
        self.dW, self.db = np.empty_like(self.W), np.empty_like(self.b)
        self.f = BACKENDS[backend].affine_relu_backward
        self.call()

    def call(self):
        # overwrite_dout=False, as a layer's backward is called: dout stays intact
        self.f(self.dout, self.h, self.W, self.out, dx=self.dx, dW=self.dW, db=self.db)

    def time_affine_relu_backward(self, backend, batch, dtype):
        self.call()


class SoftmaxCrossEntropy:
    """Loss and gradient of scores (N, 10) with integer labels, in one call."""

    params = GRID
    param_names = GRID_NAMES

    def setup(self, backend, batch, dtype):
        rng = np.random.default_rng(0)
        self.scores = (3 * rng.standard_normal((batch, SIZES[-1]))).astype(dtype)
        self.labels = rng.integers(0, SIZES[-1], batch)
        self.dscores = np.empty_like(self.scores)
        self.f = BACKENDS[backend].softmax_cross_entropy
        self.f(self.scores, self.labels, self.dscores)

    def time_softmax_cross_entropy(self, backend, batch, dtype):
        self.f(self.scores, self.labels, self.dscores)


class SGDUpdate:
    """params -= lr * grads over all 118,282 parameters of 784-128-128-10 (one flat buffer).

    The update does not depend on the batch; the batch parameter keeps the grid uniform.
    """

    params = GRID
    param_names = GRID_NAMES

    def setup(self, backend, batch, dtype):
        n = sum(i * o + o for i, o in zip(SIZES[:-1], SIZES[1:]))
        rng = np.random.default_rng(0)
        self.p = rng.standard_normal(n).astype(dtype)
        self.g = (1e-3 * rng.standard_normal(n)).astype(dtype)
        self.f = BACKENDS[backend].sgd_update
        self.f(self.p, self.g, 1e-9)

    def time_sgd_update(self, backend, batch, dtype):
        self.f(self.p, self.g, 1e-9)


class AffineActBackwardSGD:
    """The second layer's backward with its SGD step: mask, db, dh1, W2 -= lr * h1.T @ dz.

    On numba one compiled call whose weight step is the GEMM itself (beta = 1).
    """

    params = GRID
    param_names = GRID_NAMES

    def setup(self, backend, batch, dtype):
        second_layer_backward(self, batch, dtype)
        self.f = BACKENDS[backend].affine_act_backward_sgd
        self.call()

    def call(self):
        # dout is overwritten with dz (the mask is idempotent); lr tiny: W barely moves
        self.f(self.dout, self.h, self.W, self.b, self.out, "relu", 1e-9, dx=self.dx)

    def time_affine_act_backward_sgd(self, backend, batch, dtype):
        self.call()


def network_problem(bench, batch_size, dtype):
    """Set x, t, the flat params and layout of 784-128-128-10, and work buffers on bench."""
    from fastnn import Sequential

    bench.x, bench.t = batch(batch_size, dtype)
    net = Sequential(SIZES[0], list(SIZES[1:-1]), SIZES[-1], "he", dtype=dtype, seed=0)
    bench.flat, bench.layout = net.params.flat, net.params.layout
    bench.acts = np.empty(batch_size * sum(SIZES[1:]), dtype)
    bench.dacts = np.empty_like(bench.acts)


class SGDStep:
    """A whole training step of 784-128-128-10 (forward, loss, backward, update), as the
    backend's ``sgd_step`` runs it for ``Sequential.train_step`` (validated arrays)."""

    params = GRID
    param_names = GRID_NAMES

    def setup(self, backend, batch_size, dtype):
        network_problem(self, batch_size, dtype)
        self.f = BACKENDS[backend].sgd_step
        self.call()

    def call(self):
        self.f(self.x, self.t, self.flat, self.layout, self.acts, self.dacts, "relu",
               "softmax", 1e-9)

    def time_sgd_step(self, backend, batch_size, dtype):
        self.call()


class NetworkGradient:
    """Every parameter's gradient of 784-128-128-10 (forward, loss, backward into a flat
    gradient buffer), as the backend's ``gradient`` runs it for ``Sequential.gradient``."""

    params = GRID
    param_names = GRID_NAMES

    def setup(self, backend, batch_size, dtype):
        network_problem(self, batch_size, dtype)
        self.grads = np.empty_like(self.flat)
        self.f = BACKENDS[backend].gradient
        self.call()

    def call(self):
        self.f(self.x, self.t, self.flat, self.layout, self.acts, self.dacts, self.grads,
               "relu", "softmax")

    def time_network_gradient(self, backend, batch_size, dtype):
        self.call()

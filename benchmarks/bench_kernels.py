"""Each fused kernel against its NumPy twin and its GEMMs alone (784-128-128-10 shapes).

Every class is a ``common.Measured`` grid: backend x batch {32, 1000} x dtype, timed side
by side once per commit; ``track_seconds`` is the time per call, ``track_speedup`` the
NumPy twin's time over each series' (the "gemm" series: the speed-up ceiling).
"""

import abc

import numpy as np

from .common import BACKENDS, GEMM_GRID, GRID, GRID_NAMES, SIZES, Measured, batch, layer


class AffineReluForward(Measured):
    """The first layer: max(x @ W1 + b1, 0), x (N, 784), W1 (784, 128)."""

    params = GEMM_GRID
    param_names = GRID_NAMES

    def setup_cache(self):
        return self.measure()

    def case(self, backend, batch, dtype):
        x, W, b = layer(batch, SIZES[0], SIZES[1], dtype)
        out = np.empty((batch, SIZES[1]), dtype)
        if backend == "gemm":
            return lambda: np.matmul(x, W, out=out)
        f = BACKENDS[backend].affine_relu_forward
        return lambda: f(x, W, b, out=out)


def backward_gemms(h, W, dout, dx):
    """The two GEMMs of a layer's backward: dW = h.T @ dz and dx = dz @ W.T."""
    dW = np.empty_like(W)

    def gemms():
        np.matmul(h.T, dout, out=dW)
        np.matmul(dout, W.T, out=dx)

    return gemms


class SecondLayerBackward(Measured):
    """The second layer's backward, h (N, 128) -> (N, 128): ``call`` makes the kernel's
    call from the backend module and the layer's arrays; "gemm" is its two GEMMs."""

    params = GEMM_GRID
    param_names = GRID_NAMES

    @abc.abstractmethod
    def call(self, backend, h, W, b, out, dout, dx):
        """A callable: one call of the backend's kernel on these arrays."""

    def case(self, backend, batch, dtype):
        h, W, b = layer(batch, SIZES[1], SIZES[2], dtype)
        out = BACKENDS["numpy"].affine_relu_forward(h, W, b)
        dout = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
        dx = np.empty_like(h)
        if backend == "gemm":
            return backward_gemms(h, W, dout, dx)
        return self.call(BACKENDS[backend], h, W, b, out, dout, dx)


class AffineReluBackward(SecondLayerBackward):
    """The second layer's backward: mask, db, dW = h1.T @ dz and dh1 = dz @ W2.T."""

    def setup_cache(self):
        return self.measure()

    def call(self, backend, h, W, b, out, dout, dx):
        dW, db = np.empty_like(W), np.empty_like(b)
        f = backend.affine_relu_backward
        # overwrite_dout=False, as a layer's backward is called: dout stays intact
        return lambda: f(dout, h, W, out, dx=dx, dW=dW, db=db)


class SoftmaxCrossEntropy(Measured):
    """Loss and gradient of scores (N, 10) with integer labels, in one call (no GEMM)."""

    params = GRID
    param_names = GRID_NAMES

    def setup_cache(self):
        return self.measure()

    def case(self, backend, batch, dtype):
        rng = np.random.default_rng(0)
        scores = (3 * rng.standard_normal((batch, SIZES[-1]))).astype(dtype)
        labels = rng.integers(0, SIZES[-1], batch)
        dscores = np.empty_like(scores)
        f = BACKENDS[backend].softmax_cross_entropy
        return lambda: f(scores, labels, dscores)


class SGDUpdate(Measured):
    """params -= lr * grads over all 118,282 parameters of 784-128-128-10 (one flat buffer,
    no GEMM). The update does not depend on the batch; the batch parameter keeps the grid
    uniform."""

    params = GRID
    param_names = GRID_NAMES

    def setup_cache(self):
        return self.measure()

    def case(self, backend, batch, dtype):
        n = sum(i * o + o for i, o in zip(SIZES[:-1], SIZES[1:]))
        rng = np.random.default_rng(0)
        p = rng.standard_normal(n).astype(dtype)
        g = (1e-3 * rng.standard_normal(n)).astype(dtype)
        f = BACKENDS[backend].sgd_update
        return lambda: f(p, g, 1e-9)


class AffineActBackwardSGD(SecondLayerBackward):
    """The second layer's backward with its SGD step: mask, db, dh1, W2 -= lr * h1.T @ dz.

    On numba one compiled call whose weight step is the GEMM itself (beta = 1).
    """

    def setup_cache(self):
        return self.measure()

    def call(self, backend, h, W, b, out, dout, dx):
        f = backend.affine_act_backward_sgd
        # dout is overwritten with dz (the mask is idempotent); lr tiny: W barely moves
        return lambda: f(dout, h, W, b, out, "relu", 1e-9, dx=dx)


def network_problem(batch_size, dtype):
    """x, t, the flat params and layout of 784-128-128-10, and work buffers."""
    from fastnn import Sequential

    x, t = batch(batch_size, dtype)
    net = Sequential(SIZES[0], list(SIZES[1:-1]), SIZES[-1], "he", dtype=dtype, seed=0)
    acts = np.empty(batch_size * sum(SIZES[1:]), dtype)
    return x, t, net.params.flat, net.params.layout, acts, np.empty_like(acts)


def network_gemms(batch_size, dtype):
    """The eight GEMMs of a 784-128-128-10 step: three forward, then each layer's dW and
    the hidden layers' dx (no dx of the input), into preallocated outputs."""
    rng = np.random.default_rng(0)
    x = rng.random((batch_size, SIZES[0])).astype(dtype)
    Ws = [rng.standard_normal((i, o)).astype(dtype) for i, o in zip(SIZES[:-1], SIZES[1:])]
    acts = [np.empty((batch_size, o), dtype) for o in SIZES[1:]]
    dWs = [np.empty_like(W) for W in Ws]
    inputs = [x, *acts[:-1]]

    def gemms():
        for inp, W, out in zip(inputs, Ws, acts):
            np.matmul(inp, W, out=out)
        for i in range(len(Ws) - 1, -1, -1):  # acts[i] stands in for dz of layer i
            np.matmul(inputs[i].T, acts[i], out=dWs[i])
            if i:
                np.matmul(acts[i], Ws[i].T, out=acts[i - 1])

    return gemms


class WholeNetwork(Measured):
    """A whole-network kernel of 784-128-128-10: ``call`` makes its call from the backend
    module and the network's arrays; "gemm" is the step's eight GEMMs."""

    params = GEMM_GRID
    param_names = GRID_NAMES

    @abc.abstractmethod
    def call(self, backend, x, t, flat, layout, acts, dacts):
        """A callable: one call of the backend's kernel on these arrays."""

    def case(self, backend, batch_size, dtype):
        if backend == "gemm":
            return network_gemms(batch_size, dtype)
        return self.call(BACKENDS[backend], *network_problem(batch_size, dtype))


class SGDStep(WholeNetwork):
    """A whole training step of 784-128-128-10 (forward, loss, backward, update), as the
    backend's ``sgd_step`` runs it for ``Sequential.train_step`` (validated arrays)."""

    def setup_cache(self):
        return self.measure()

    def call(self, backend, x, t, flat, layout, acts, dacts):
        f = backend.sgd_step
        return lambda: f(x, t, flat, layout, acts, dacts, "relu", "softmax", 1e-9)


class NetworkGradient(WholeNetwork):
    """Every parameter's gradient of 784-128-128-10 (forward, loss, backward into a flat
    gradient buffer), as the backend's ``gradient`` runs it for ``Sequential.gradient``."""

    def setup_cache(self):
        return self.measure()

    def call(self, backend, x, t, flat, layout, acts, dacts):
        grads = np.empty_like(flat)
        f = backend.gradient
        return lambda: f(x, t, flat, layout, acts, dacts, grads, "relu", "softmax")

"""The convolution and pooling kernels against their NumPy twins (the book's im2col math).

Two layers, each a ``common.Measured`` grid: backend x layer x dtype, batch 100:

* "simple": SimpleConvNet's convolution, x (100, 1, 28, 28), 30 filters 5x5 (pad 0,
  stride 1), and its pooling, 2x2 stride 2 over (100, 30, 24, 24);
* "deep": a DeepConvNet layer, x (100, 16, 28, 28), 16 filters 3x3 pad 1, and the
  pooling after it, 2x2 stride 2 over (100, 16, 28, 28).

``ConvReluPool``: each layer's convolution, ReLU and pooling as one run (the fused
kernels against the twin's three ops), forward and backward.

The "gemm" series of the convolutions is their products alone on a prebuilt ``col``
(NumPy's matmul into preallocated outputs): the time if the window gather, the scatter,
the bias and the layout change were free.
"""

import numpy as np

from .common import BACKENDS, DTYPES, Measured

# name: (N, C, H, W, FN, FH, FW, stride, pad)
LAYERS = {"simple": (100, 1, 28, 28, 30, 5, 5, 1, 0),
          "deep": (100, 16, 28, 28, 16, 3, 3, 1, 1)}
CONV_GRID = (["numpy", "numba", "gemm"], list(LAYERS), DTYPES)
POOL_GRID = (list(BACKENDS), list(LAYERS), DTYPES)
NAMES = ["backend", "layer", "dtype"]


def conv_problem(name, dtype, seed=0):
    """x, W (He-scaled), b of the layer; stride, pad."""
    N, C, H, W, FN, FH, FW, stride, pad = LAYERS[name]
    rng = np.random.default_rng(seed)
    x = rng.random((N, C, H, W)).astype(dtype)
    Wt = (rng.standard_normal((FN, C, FH, FW)) * np.sqrt(2 / (C * FH * FW))).astype(dtype)
    b = (0.1 * rng.standard_normal(FN)).astype(dtype)
    return x, Wt, b, stride, pad


def pool_input(name, dtype):
    """The convolution's output: what the pooling after it takes."""
    x, Wt, b, stride, pad = conv_problem(name, dtype)
    return BACKENDS["numpy"].conv_forward(x, Wt, b, stride, pad)[0]


class _Conv(Measured):
    params = CONV_GRID
    param_names = NAMES
    blocks = 10  # (the twin's DeepConvNet backward is a third of a second a call)


class ConvForward(_Conv):
    """out = conv(x, W) + b: the kernel's per-image gather and GEMM straight into the
    output layout, against the book's im2col, one GEMM and a transpose."""

    def setup_cache(self):
        return self.measure()

    def case(self, backend, layer, dtype):
        x, Wt, b, stride, pad = conv_problem(layer, dtype)
        if backend == "gemm":
            col = BACKENDS["numpy"].im2col(x, Wt.shape[2], Wt.shape[3], stride, pad)
            W_col = Wt.reshape(Wt.shape[0], -1).T.copy()
            out = np.empty((col.shape[0], Wt.shape[0]), dtype)
            return lambda: np.matmul(col, W_col, out=out)
        f = BACKENDS[backend].conv_forward
        return lambda: f(x, Wt, b, stride, pad)


class ConvBackward(_Conv):
    """dx, dW, db of the convolution; "gemm": its two products (dW and dcol) alone."""

    def setup_cache(self):
        return self.measure()

    def case(self, backend, layer, dtype):
        x, Wt, b, stride, pad = conv_problem(layer, dtype)
        ops = BACKENDS["numpy" if backend == "gemm" else backend]
        out, cache = ops.conv_forward(x, Wt, b, stride, pad)
        dout = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
        if backend == "gemm":
            col = cache[1]
            d2 = dout.transpose(0, 2, 3, 1).reshape(-1, Wt.shape[0]).copy()
            W_rows = Wt.reshape(Wt.shape[0], -1)
            dW, dcol = np.empty((col.shape[1], d2.shape[1]), dtype), np.empty_like(col)

            def gemms():
                np.matmul(col.T, d2, out=dW)
                np.matmul(d2, W_rows, out=dcol)

            return gemms
        f = ops.conv_backward
        return lambda: f(dout, cache, Wt, stride, pad)


class PoolForward(Measured):
    """Max pooling 2x2, stride 2, with the positions of the maxima kept for backward."""

    params = POOL_GRID
    param_names = NAMES

    def setup_cache(self):
        return self.measure()

    def case(self, backend, layer, dtype):
        x = pool_input(layer, dtype)
        f = BACKENDS[backend].pool_forward
        return lambda: f(x, 2, 2, 2, 0)


class PoolBackward(Measured):
    """The pooling's gradient: each window's dout to its first maximum."""

    params = POOL_GRID
    param_names = NAMES

    def setup_cache(self):
        return self.measure()

    def case(self, backend, layer, dtype):
        ops = BACKENDS[backend]
        out, cache = ops.pool_forward(pool_input(layer, dtype), 2, 2, 2, 0)
        dout = np.random.default_rng(2).standard_normal(out.shape).astype(dtype)
        return lambda: ops.pool_backward(dout, cache, 2, 2, 2, 0)


class ConvReluPool(Measured):
    """A (Convolution, Relu, Pooling 2x2 stride 2) run of layers, forward + backward
    without dx (a network's first stage): the kernel's fused per-image passes against
    the twin's three ops in turn."""

    params = POOL_GRID
    param_names = NAMES
    blocks = 10

    def setup_cache(self):
        return self.measure()

    def case(self, backend, layer, dtype):
        x, Wt, b, stride, pad = conv_problem(layer, dtype)
        ops, pool = BACKENDS[backend], (2, 2, 2, 0)
        out, _ = ops.conv_relu_forward(x, Wt, b, stride, pad, pool)
        dout = np.random.default_rng(3).standard_normal(out.shape).astype(dtype)

        def run():
            _, cache = ops.conv_relu_forward(x, Wt, b, stride, pad, pool)
            ops.conv_relu_backward(dout, cache, Wt, stride, pad, pool, False)

        return run

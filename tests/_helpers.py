"""Shared test helpers: random problems, tolerances, the book-style baseline network."""

from collections import OrderedDict

import numpy as np

BACKENDS = ["numpy", "numba"]
DTYPES = [np.float32, np.float64]

# Kernel vs reference. float64: the same math in the same order up to libm's last bit.
# float32: kernels accumulate in float64 where the reference sums in float32, so the
# difference grows with the reduction length; the atol is scaled by it in `tol`.
TOL = {
    np.dtype(np.float64): dict(rtol=1e-12, atol=1e-13),
    np.dtype(np.float32): dict(rtol=2e-5, atol=1e-6),
}


def tol(dtype, reduce_len=1, scale=1.0):
    """Tolerances for an array reduced over ``reduce_len`` terms of magnitude ``scale``."""
    t = TOL[np.dtype(dtype)]
    return dict(rtol=t["rtol"], atol=t["atol"] * max(1.0, reduce_len ** 0.5) * scale)


def layout(a, kind):
    """The same values in another memory layout: "C", "F" (Fortran) or "strided"."""
    if kind == "F":
        return np.asfortranarray(a)
    if kind == "strided":
        wide = np.zeros((a.shape[0], 2 * a.shape[1]), a.dtype)
        wide[:, ::2] = a
        return wide[:, ::2]
    return a


def assert_close(comp, ref, dtype, reduce_len=1, scale=1.0):
    """comp has the dtype and matches ref within ``tol``."""
    assert comp.dtype == np.dtype(dtype), (comp.dtype, dtype)
    np.testing.assert_allclose(comp, ref, **tol(dtype, reduce_len, scale))


def random_problem(N, D, H, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, D)).astype(dtype)
    W = (rng.standard_normal((D, H)) / np.sqrt(D)).astype(dtype)
    b = (0.1 * rng.standard_normal(H)).astype(dtype)
    return x, W, b


def one_hot(labels, C, dtype=np.float64):
    out = np.zeros((labels.size, C), dtype)
    out[np.arange(labels.size), labels] = 1
    return out


class BookRelu:
    def __init__(self):
        self.mask = None

    def forward(self, x):
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout):
        dout[self.mask] = 0
        return dout


class BookAffine:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        self.x = x
        return np.dot(x, self.W) + self.b

    def backward(self, dout):
        self.dW = np.dot(self.x.T, dout)
        self.db = np.sum(dout, axis=0)
        return np.dot(dout, self.W.T)


class BookSoftmaxWithLoss:
    def forward(self, x, t):
        self.t = t
        e = np.exp(x - x.max(axis=1, keepdims=True))
        self.y = e / e.sum(axis=1, keepdims=True)
        n = x.shape[0]
        labels = t.argmax(axis=1) if t.ndim == 2 else t
        return -np.sum(np.log(self.y[np.arange(n), labels] + 1e-7)) / n

    def backward(self, dout=1):
        n = self.t.shape[0]
        t = self.t if self.t.ndim == 2 else one_hot(self.t, self.y.shape[1])
        return (self.y - t) / n


class BookSequential:
    """The seed article's network, written from its description: the baseline users have."""

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01):
        self.n = len(hidden_size)
        sizes = [input_size, *hidden_size, output_size]
        self.params = {}
        for i in range(1, self.n + 2):
            self.params[f"W{i}"] = weight_init_std * np.random.randn(sizes[i - 1], sizes[i])
            self.params[f"b{i}"] = np.zeros(sizes[i])
        self.layers = OrderedDict()
        for i in range(1, self.n + 1):
            self.layers[f"Affine{i}"] = BookAffine(self.params[f"W{i}"], self.params[f"b{i}"])
            self.layers[f"Relu{i}"] = BookRelu()
        last = self.n + 1
        self.layers[f"Affine{last}"] = BookAffine(self.params[f"W{last}"], self.params[f"b{last}"])
        self.lastLayer = BookSoftmaxWithLoss()

    def predict(self, x):
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x, t):
        return self.lastLayer.forward(self.predict(x), t)

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.lastLayer.backward(1)
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        grads = {}
        for i in range(1, self.n + 2):
            grads[f"W{i}"] = self.layers[f"Affine{i}"].dW
            grads[f"b{i}"] = self.layers[f"Affine{i}"].db
        return grads

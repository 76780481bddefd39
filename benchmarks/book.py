"""The baseline users come from: the seed article's network, written from its description.

Plain NumPy layer objects (Affine, Relu, SoftmaxWithLoss) chained through an OrderedDict,
allocating as the book's code does. ``compare.py`` times it against ``Sequential`` to
show the drop-in speed-up, and ``seed_article.py`` runs the article's whole job with it
(neither is an asv benchmark). The tests keep their own copy.
"""

from collections import OrderedDict

import numpy as np


class _Affine:
    def __init__(self, W, b):
        self.W, self.b, self.x = W, b, None

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout):
        self.dW = self.x.T @ dout
        self.db = dout.sum(axis=0)
        return dout @ self.W.T


class _Relu:
    def forward(self, x):
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout):
        dout[self.mask] = 0
        return dout


class _SoftmaxWithLoss:
    def forward(self, x, t):
        if t.ndim == 1:
            t = np.eye(x.shape[1])[t]
        self.t = t
        shifted = x - x.max(axis=1, keepdims=True)
        self.y = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        return -np.sum(t * np.log(self.y + 1e-7)) / x.shape[0]

    def backward(self, dout=1):
        return (self.y - self.t) / self.t.shape[0]


class BookSequential:
    """Affine -> Relu -> ... -> Affine -> SoftmaxWithLoss, with the seed article's API."""

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01):
        sizes = [input_size, *hidden_size, output_size]
        self.n = len(hidden_size)
        self.params = {}
        for i in range(1, self.n + 2):
            self.params[f"W{i}"] = weight_init_std * np.random.randn(sizes[i - 1], sizes[i])
            self.params[f"b{i}"] = np.zeros(sizes[i])
        self.layers = OrderedDict()
        for i in range(1, self.n + 2):
            self.layers[f"Affine{i}"] = _Affine(self.params[f"W{i}"], self.params[f"b{i}"])
            if i <= self.n:
                self.layers[f"Relu{i}"] = _Relu()
        self.last_layer = _SoftmaxWithLoss()

    def predict(self, x):
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x, t):
        return self.last_layer.forward(self.predict(x), t)

    def accuracy(self, x, t):
        y = np.argmax(self.predict(x), axis=1)
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        return np.sum(y == t) / float(x.shape[0])

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last_layer.backward()
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
        grads = {}
        for i in range(1, self.n + 2):
            grads[f"W{i}"] = self.layers[f"Affine{i}"].dW
            grads[f"b{i}"] = self.layers[f"Affine{i}"].db
        return grads

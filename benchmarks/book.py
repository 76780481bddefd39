"""The code users come from, written from the book's and the seed article's description
of their classes: the baselines that tests compare fastnn with and benchmarks time.

Plain NumPy layer objects chained through an OrderedDict, allocating as the book's code
does, every draw from NumPy's global random state in the book's order: the weights
W1..WL at construction, one ``np.random.rand(N, H) > ratio`` mask per Dropout layer in
each training forward, one ``np.random.choice(N, B)`` per training iteration.

* ``BookSequential``: the seed article's network (chapter 5's layers);
* ``Net``: the book's ``MultiLayerNet(Extend)`` (weight decay, Dropout, BatchNorm);
* ``SGD`` ... ``Adam``: the book's optimizers; ``train``: its ``Trainer`` loop.

Tests import it as ``book`` (``tests/conftest.py`` puts this folder on the path);
``compare.py``'s reports and ``seed_article.py`` as ``benchmarks.book``. Not an asv
benchmark.
"""

from collections import OrderedDict

import numpy as np


class Affine:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x, train=False):
        self.x = x
        return np.dot(x, self.W) + self.b

    def backward(self, dout):
        self.dW = np.dot(self.x.T, dout)
        self.db = np.sum(dout, axis=0)
        return np.dot(dout, self.W.T)


class Relu:
    def forward(self, x, train=False):
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout):  # (in place, as the book's: dout is not used again)
        dout[self.mask] = 0
        return dout


class Sigmoid:
    def forward(self, x, train=False):
        self.out = 1 / (1 + np.exp(-x))
        return self.out

    def backward(self, dout):
        return dout * (1.0 - self.out) * self.out


class Dropout:
    def __init__(self, ratio):
        self.ratio = ratio

    def forward(self, x, train=False):
        if train:
            self.mask = np.random.rand(*x.shape) > self.ratio
            return x * self.mask
        return x * (1.0 - self.ratio)

    def backward(self, dout):
        return dout * self.mask


class BatchNorm:
    def __init__(self, gamma, beta):
        self.gamma, self.beta = gamma, beta
        self.running_mean = self.running_var = None

    def forward(self, x, train=False):
        if self.running_mean is None:
            self.running_mean = np.zeros(x.shape[1])
            self.running_var = np.zeros(x.shape[1])
        if train:
            mu = x.mean(axis=0)
            self.xc = x - mu
            var = np.mean(self.xc ** 2, axis=0)
            self.std = np.sqrt(var + 10e-7)
            self.xn = self.xc / self.std
            self.n = x.shape[0]
            self.running_mean = 0.9 * self.running_mean + 0.1 * mu
            self.running_var = 0.9 * self.running_var + 0.1 * var
            xn = self.xn
        else:
            xn = (x - self.running_mean) / np.sqrt(self.running_var + 10e-7)
        return self.gamma * xn + self.beta

    def backward(self, dout):
        self.dbeta = dout.sum(axis=0)
        self.dgamma = np.sum(self.xn * dout, axis=0)
        dxn = self.gamma * dout
        dxc = dxn / self.std
        dstd = -np.sum((dxn * self.xc) / (self.std * self.std), axis=0)
        dvar = 0.5 * dstd / self.std
        dxc += (2.0 / self.n) * self.xc * dvar
        dmu = np.sum(dxc, axis=0)
        return dxc - dmu / self.n


class SoftmaxWithLoss:
    """Softmax and cross-entropy; targets are class indices or one-hot rows."""

    def forward(self, x, t):
        x = x - np.max(x, axis=1, keepdims=True)
        self.y = np.exp(x) / np.sum(np.exp(x), axis=1, keepdims=True)
        self.t = t if t.ndim == 1 else np.argmax(t, axis=1)
        N = x.shape[0]
        return -np.sum(np.log(self.y[np.arange(N), self.t] + 1e-7)) / N

    def backward(self, dout=1):
        N = self.t.shape[0]
        dx = self.y.copy()
        dx[np.arange(N), self.t] -= 1
        return dx / N


class Net:
    """Affine -> [BatchNorm] -> activation -> [Dropout] per hidden layer, then Affine."""

    def __init__(self, input_size, hidden, output_size, activation="relu", init="relu",
                 decay=0.0, dropout=None, batchnorm=False):
        sizes = [input_size, *hidden, output_size]
        self.params, self.decay = {}, decay
        for i in range(1, len(sizes)):
            scale = init
            if str(init).lower() in ("relu", "he"):
                scale = np.sqrt(2.0 / sizes[i - 1])
            elif str(init).lower() in ("sigmoid", "xavier"):
                scale = np.sqrt(1.0 / sizes[i - 1])
            self.params[f"W{i}"] = scale * np.random.randn(sizes[i - 1], sizes[i])
            self.params[f"b{i}"] = np.zeros(sizes[i])
        self.layers = OrderedDict()
        self.L = len(sizes) - 1
        for i in range(1, self.L):
            self.layers[f"Affine{i}"] = Affine(self.params[f"W{i}"], self.params[f"b{i}"])
            if batchnorm:
                self.params[f"gamma{i}"] = np.ones(sizes[i])
                self.params[f"beta{i}"] = np.zeros(sizes[i])
                self.layers[f"BatchNorm{i}"] = BatchNorm(self.params[f"gamma{i}"],
                                                         self.params[f"beta{i}"])
            # (the article's names: Relu1, Sigmoid1, ...)
            self.layers[f"{activation.capitalize()}{i}"] = Relu() if activation == "relu" \
                else Sigmoid()
            if dropout is not None:
                self.layers[f"Dropout{i}"] = Dropout(dropout)
        self.layers[f"Affine{self.L}"] = Affine(self.params[f"W{self.L}"],
                                                self.params[f"b{self.L}"])
        self.last = SoftmaxWithLoss()

    def predict(self, x, train=False):
        for layer in self.layers.values():
            x = layer.forward(x, train)
        return x

    def loss(self, x, t, train=False):
        wd = 0.0
        for i in range(1, self.L + 1):
            wd += 0.5 * self.decay * np.sum(self.params[f"W{i}"] ** 2)
        return self.last.forward(self.predict(x, train), t) + wd

    def accuracy(self, x, t):
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        return float(np.sum(np.argmax(self.predict(x), axis=1) == t)) / x.shape[0]

    def gradient(self, x, t):
        self.loss(x, t, train=True)
        dout = self.last.backward()
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        grads = {}
        for i in range(1, self.L + 1):
            a = self.layers[f"Affine{i}"]
            grads[f"W{i}"] = a.dW + self.decay * a.W
            grads[f"b{i}"] = a.db
        for i in range(1, self.L):
            if f"BatchNorm{i}" in self.layers:
                grads[f"gamma{i}"] = self.layers[f"BatchNorm{i}"].dgamma
                grads[f"beta{i}"] = self.layers[f"BatchNorm{i}"].dbeta
        return grads


class BookSequential(Net):
    """The seed article's ``Sequential(input_size, hidden_size, output_size,
    weight_init_std=0.01)``: Affine -> Relu per hidden layer, then Affine and
    SoftmaxWithLoss (``lastLayer``), the weights ``weight_init_std * np.random.randn``."""

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01):
        super().__init__(input_size, list(hidden_size), output_size, init=weight_init_std)
        self.lastLayer = self.last


class Adam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2, self.iter, self.m = lr, beta1, beta2, 0, None

    def update(self, params, grads):
        if self.m is None:
            self.m = {k: np.zeros_like(v) for k, v in params.items()}
            self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        for k in params:
            self.m[k] += (1 - self.beta1) * (grads[k] - self.m[k])
            self.v[k] += (1 - self.beta2) * (grads[k] ** 2 - self.v[k])
            params[k] -= lr_t * self.m[k] / (np.sqrt(self.v[k]) + 1e-7)


class Momentum:
    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, None

    def update(self, params, grads):
        if self.v is None:
            self.v = {k: np.zeros_like(v) for k, v in params.items()}
        for k in params:
            self.v[k] = self.momentum * self.v[k] - self.lr * grads[k]
            params[k] += self.v[k]


class SGD:
    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for k in params:
            params[k] -= self.lr * grads[k]


class Nesterov:
    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, None

    def update(self, params, grads):
        if self.v is None:
            self.v = {k: np.zeros_like(v) for k, v in params.items()}
        for k in params:
            params[k] += self.momentum * self.momentum * self.v[k]
            params[k] -= (1 + self.momentum) * self.lr * grads[k]
            self.v[k] *= self.momentum
            self.v[k] -= self.lr * grads[k]


def _scaled_step(params, grads, h, lr):
    for k in params:
        params[k] -= lr * grads[k] / (np.sqrt(h[k]) + 1e-7)


class AdaGrad:
    def __init__(self, lr=0.01):
        self.lr, self.h = lr, None

    def update(self, params, grads):
        if self.h is None:
            self.h = {k: np.zeros_like(v) for k, v in params.items()}
        for k in params:
            self.h[k] += grads[k] * grads[k]
        _scaled_step(params, grads, self.h, self.lr)


class RMSprop(AdaGrad):
    def __init__(self, lr=0.01, decay_rate=0.99):
        super().__init__(lr)
        self.decay_rate = decay_rate

    def update(self, params, grads):
        if self.h is None:
            self.h = {k: np.zeros_like(v) for k, v in params.items()}
        for k in params:
            self.h[k] *= self.decay_rate
            self.h[k] += (1 - self.decay_rate) * grads[k] * grads[k]
        _scaled_step(params, grads, self.h, self.lr)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "nesterov": Nesterov, "adagrad": AdaGrad,
              "rmsprop": RMSprop, "adam": Adam}


def train(net, optimizer, x, t, x_test, t_test, epochs, batch, eval_rows=None):
    """The book's Trainer loop: (train losses, train accuracies, test accuracies)."""
    n = x.shape[0]
    per_epoch = max(n / batch, 1)
    losses, train_acc, test_acc = [], [], []
    for it in range(int(epochs * per_epoch)):
        idx = np.random.choice(n, batch)
        grads = net.gradient(x[idx], t[idx])
        optimizer.update(net.params, grads)
        losses.append(net.loss(x[idx], t[idx]))
        if it % per_epoch == 0:
            xs, ts = (x, t) if eval_rows is None else (x[:eval_rows], t[:eval_rows])
            xt, tt = (x_test, t_test) if eval_rows is None else (x_test[:eval_rows],
                                                                 t_test[:eval_rows])
            train_acc.append(net.accuracy(xs, ts))
            test_acc.append(net.accuracy(xt, tt))
    return losses, train_acc, test_acc

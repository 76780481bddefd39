"""The book's convolutional networks (chapters 7 and 8), written from its description:
the baseline that tests compare fastnn's ``SimpleConvNet`` / ``DeepConvNet`` with and
that benchmarks time.

Plain NumPy, allocating as the book's code does: ``im2col`` / ``col2im`` building the
float64 patch matrix, ``Convolution`` as one GEMM on it with its output a transposed
view, max ``Pooling`` by ``argmax`` over each window's column (the first maximum gets
the gradient), Affine flattening its (N, C, H, W) input. Every draw comes from NumPy's
global state in the book's order: the weights ``W1, W2, ...`` at construction (biases
are zeros, nothing drawn), one ``np.random.rand(*x.shape) > 0.5`` per Dropout layer in
each training forward (``DeepConvNet.loss`` always trains, as the book's does).

The book's quirks that change numbers are kept: ``accuracy`` counts only
``int(N / batch_size)`` whole batches but divides by N. The ones that would crash on
shapes its authors never used are not (Affine's fan-in is computed from the actual
shapes; for the book's defaults it is the book's ``pool_output_size`` and
``64 * 4 * 4``).

Tests import it as ``book_conv`` (``tests/conftest.py`` puts this folder on the path);
benchmarks as ``benchmarks.book_conv``. The optimizers and the Trainer loop are
``book.py``'s. Not an asv benchmark.
"""

import pickle
from collections import OrderedDict

import numpy as np

try:  # (as a package module from the repository root, or with benchmarks/ on the path)
    from . import book
except ImportError:
    import book


def out_size(size, filter_size, stride, pad):
    return (size + 2 * pad - filter_size) // stride + 1


def im2col(input_data, filter_h, filter_w, stride=1, pad=0):
    """(N, C, H, W) -> (N * OH * OW, C * FH * FW): rows (n, oy, ox), columns (c, fh, fw)."""
    N, C, H, W = input_data.shape
    OH, OW = out_size(H, filter_h, stride, pad), out_size(W, filter_w, stride, pad)
    padded = np.pad(input_data, [(0, 0), (0, 0), (pad, pad), (pad, pad)], "constant")
    col = np.zeros((N, C, filter_h, filter_w, OH, OW))
    for fy in range(filter_h):
        for fx in range(filter_w):
            col[:, :, fy, fx, :, :] = padded[:, :, fy:fy + stride * OH:stride,
                                             fx:fx + stride * OW:stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(N * OH * OW, -1)


def col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0):
    """The adjoint of im2col: each patch column added back where it came from."""
    N, C, H, W = input_shape
    OH, OW = out_size(H, filter_h, stride, pad), out_size(W, filter_w, stride, pad)
    col = col.reshape(N, OH, OW, C, filter_h, filter_w).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((N, C, H + 2 * pad + stride - 1, W + 2 * pad + stride - 1))
    for fy in range(filter_h):
        for fx in range(filter_w):
            img[:, :, fy:fy + stride * OH:stride, fx:fx + stride * OW:stride] += \
                col[:, :, fy, fx, :, :]
    return img[:, :, pad:H + pad, pad:W + pad]


class Convolution:
    def __init__(self, W, b, stride=1, pad=0):
        self.W, self.b, self.stride, self.pad = W, b, stride, pad

    def forward(self, x, train=False):
        FN, C, FH, FW = self.W.shape
        N, _, H, W = x.shape
        OH, OW = out_size(H, FH, self.stride, self.pad), out_size(W, FW, self.stride, self.pad)
        self.x = x
        self.col = im2col(x, FH, FW, self.stride, self.pad)
        self.col_W = self.W.reshape(FN, -1).T
        out = np.dot(self.col, self.col_W) + self.b
        return out.reshape(N, OH, OW, -1).transpose(0, 3, 1, 2)

    def backward(self, dout):
        FN, C, FH, FW = self.W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, FN)
        self.db = np.sum(dout, axis=0)
        self.dW = np.dot(self.col.T, dout).transpose(1, 0).reshape(FN, C, FH, FW)
        dcol = np.dot(dout, self.col_W.T)
        return col2im(dcol, self.x.shape, FH, FW, self.stride, self.pad)


class Pooling:
    def __init__(self, pool_h, pool_w, stride=2, pad=0):
        self.pool_h, self.pool_w, self.stride, self.pad = pool_h, pool_w, stride, pad

    def forward(self, x, train=False):
        N, C, H, W = x.shape
        OH = (H - self.pool_h) // self.stride + 1
        OW = (W - self.pool_w) // self.stride + 1
        col = im2col(x, self.pool_h, self.pool_w, self.stride, self.pad)
        col = col.reshape(-1, self.pool_h * self.pool_w)
        self.x = x
        self.arg_max = np.argmax(col, axis=1)
        out = np.max(col, axis=1)
        return out.reshape(N, OH, OW, C).transpose(0, 3, 1, 2)

    def backward(self, dout):
        dout = dout.transpose(0, 2, 3, 1)
        size = self.pool_h * self.pool_w
        dmax = np.zeros((dout.size, size))
        dmax[np.arange(self.arg_max.size), self.arg_max.flatten()] = dout.flatten()
        dcol = dmax.reshape(dout.shape[0] * dout.shape[1] * dout.shape[2], -1)
        return col2im(dcol, self.x.shape, self.pool_h, self.pool_w, self.stride, self.pad)


class Affine(book.Affine):
    """The book's common/layers.py Affine: (N, ...) inputs flattened, dx shaped back."""

    def forward(self, x, train=False):
        self.x_shape = x.shape
        return super().forward(x.reshape(x.shape[0], -1), train)

    def backward(self, dout):
        return super().backward(dout).reshape(self.x_shape)


class _ConvNet:
    """predict / loss / accuracy / gradient over ``self.sequence`` (the layers in order)
    and ``self.param_layers`` (the layer holding W{i}, b{i}, i = 1, 2, ...)."""

    loss_trains = False  # DeepConvNet's loss runs Dropout in training mode

    def predict(self, x, train_flg=False):
        for layer in self.sequence:
            x = layer.forward(x, train_flg)
        return x

    def loss(self, x, t):
        return self.last_layer.forward(self.predict(x, self.loss_trains), t)

    def accuracy(self, x, t, batch_size=100):
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        acc = 0.0
        for i in range(int(x.shape[0] / batch_size)):
            tx = x[i * batch_size:(i + 1) * batch_size]
            tt = t[i * batch_size:(i + 1) * batch_size]
            acc += np.sum(np.argmax(self.predict(tx), axis=1) == tt)
        return acc / x.shape[0]

    def gradient(self, x, t):
        self.last_layer.forward(self.predict(x, True), t)
        dout = self.last_layer.backward(1)
        for layer in reversed(self.sequence):
            dout = layer.backward(dout)
        grads = {}
        for i, layer in enumerate(self.param_layers, start=1):
            grads[f"W{i}"], grads[f"b{i}"] = layer.dW, layer.db
        return grads

    def save_params(self, file_name="params.pkl"):
        """The book's: ``params`` pickled as a dict of arrays."""
        with open(file_name, "wb") as f:
            pickle.dump(dict(self.params), f)

    def load_params(self, file_name="params.pkl"):
        """The book's: the pickled dict read back, each layer given its W and b."""
        with open(file_name, "rb") as f:
            self.params.update(pickle.load(f))
        for i, layer in enumerate(self.param_layers, start=1):
            layer.W, layer.b = self.params[f"W{i}"], self.params[f"b{i}"]


class SimpleConvNet(_ConvNet):
    """ch07: conv - relu - pool - affine - relu - affine - softmax."""

    def __init__(self, input_dim=(1, 28, 28),
                 conv_param={"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1},  # noqa: B006
                 hidden_size=100, output_size=10, weight_init_std=0.01):
        FN, FS = conv_param["filter_num"], conv_param["filter_size"]
        pad, stride = conv_param["pad"], conv_param["stride"]
        C, H, W = input_dim
        OH, OW = out_size(H, FS, stride, pad), out_size(W, FS, stride, pad)
        pooled = FN * ((OH - 2) // 2 + 1) * ((OW - 2) // 2 + 1)
        p = self.params = {}
        p["W1"] = weight_init_std * np.random.randn(FN, C, FS, FS)
        p["b1"] = np.zeros(FN)
        p["W2"] = weight_init_std * np.random.randn(pooled, hidden_size)
        p["b2"] = np.zeros(hidden_size)
        p["W3"] = weight_init_std * np.random.randn(hidden_size, output_size)
        p["b3"] = np.zeros(output_size)
        self.layers = OrderedDict()
        self.layers["Conv1"] = Convolution(p["W1"], p["b1"], stride, pad)
        self.layers["Relu1"] = book.Relu()
        self.layers["Pool1"] = Pooling(2, 2, 2)
        self.layers["Affine1"] = Affine(p["W2"], p["b2"])
        self.layers["Relu2"] = book.Relu()
        self.layers["Affine2"] = Affine(p["W3"], p["b3"])
        self.last_layer = book.SoftmaxWithLoss()
        self.sequence = list(self.layers.values())
        self.param_layers = [self.layers[k] for k in ("Conv1", "Affine1", "Affine2")]


DEEP_DEFAULTS = [(16, 1), (16, 1), (32, 1), (32, 2), (64, 1), (64, 1)]  # (filters, pad)


class DeepConvNet(_ConvNet):
    """ch08: (conv - relu - conv - relu - pool) x 3, affine - relu - dropout - affine -
    dropout - softmax; He initialisation from each layer's fan-in (pre_node_nums)."""

    loss_trains = True

    def __init__(self, input_dim=(1, 28, 28), conv_params=None, hidden_size=50,
                 output_size=10):
        if conv_params is None:
            conv_params = [{"filter_num": n, "filter_size": 3, "pad": pad, "stride": 1}
                           for n, pad in DEEP_DEFAULTS]
        C, H, W = input_dim
        fan_ins, shapes = [], []
        for i, cp in enumerate(conv_params):
            FN, FS = cp["filter_num"], cp["filter_size"]
            fan_ins.append(C * FS * FS)
            shapes.append((FN, C, FS, FS))
            C = FN
            H, W = out_size(H, FS, cp["stride"], cp["pad"]), out_size(W, FS, cp["stride"],
                                                                     cp["pad"])
            if i % 2 == 1:  # a pooling layer after every second convolution
                H, W = (H - 2) // 2 + 1, (W - 2) // 2 + 1
        fan_ins += [C * H * W, hidden_size]
        shapes += [(C * H * W, hidden_size), (hidden_size, output_size)]
        scales = np.sqrt(2.0 / np.array(fan_ins))
        self.params = {}
        for i, shape in enumerate(shapes, start=1):
            self.params[f"W{i}"] = scales[i - 1] * np.random.randn(*shape)
            self.params[f"b{i}"] = np.zeros(shape[0] if len(shape) == 4 else shape[1])
        p = self.params
        self.layers = []
        for i, cp in enumerate(conv_params, start=1):
            self.layers.append(Convolution(p[f"W{i}"], p[f"b{i}"], cp["stride"], cp["pad"]))
            self.layers.append(book.Relu())
            if i % 2 == 0:
                self.layers.append(Pooling(2, 2, 2))
        n = len(conv_params)
        self.layers += [Affine(p[f"W{n + 1}"], p[f"b{n + 1}"]), book.Relu(), book.Dropout(0.5),
                        Affine(p[f"W{n + 2}"], p[f"b{n + 2}"]), book.Dropout(0.5)]
        self.last_layer = book.SoftmaxWithLoss()
        self.sequence = self.layers
        self.param_layers = [layer for layer in self.layers
                             if isinstance(layer, (Convolution, Affine))]


class Trainer:
    """The book's ``common/trainer.py`` on ``book.train``'s loop: the three lists
    (``train_loss_list`` every iteration, ``train_acc_list`` and ``test_acc_list`` every
    epoch, on the first ``evaluate_sample_num_per_epoch`` rows when given), then
    ``test_acc`` on the whole test set. (Prints nothing: ``verbose`` is accepted.)"""

    def __init__(self, network, x_train, t_train, x_test, t_test, epochs=20,
                 mini_batch_size=100, optimizer="SGD", optimizer_param=None,
                 evaluate_sample_num_per_epoch=None, verbose=True):
        optimizer_param = {"lr": 0.01} if optimizer_param is None else optimizer_param
        self.network, self.data = network, (x_train, t_train, x_test, t_test)
        self.epochs, self.batch_size = epochs, mini_batch_size
        self.optimizer = book.OPTIMIZERS[optimizer.lower()](**optimizer_param)
        self.eval_rows = evaluate_sample_num_per_epoch

    def train(self):
        x, t, x_test, t_test = self.data
        self.train_loss_list, self.train_acc_list, self.test_acc_list = book.train(
            self.network, self.optimizer, x, t, x_test, t_test, self.epochs,
            self.batch_size, self.eval_rows)
        self.test_acc = self.network.accuracy(x_test, t_test)

"""The book's convolutional networks (chapters 7 and 8) as a learner's copy runs them:
the baseline that tests compare fastnn's convnets with and ``compare.py --only convnet``
times. Written for fastnn from the book's description of its code, in its style: plain
NumPy, ``im2col`` by a loop over the filter's positions into a float64 ``col`` matrix
(``np.zeros``' default, whatever the input's dtype), one GEMM per convolution,
pooling as a max over ``im2col``'s rows, every layer allocating its outputs.

* ``im2col`` / ``col2im``: rows (n, out_y, out_x), columns (c, fh, fw); ``col2im`` adds
  the overlapping windows;
* ``Convolution``, ``Pooling`` (max; the first maximum of a window gets the gradient);
* ``SimpleConvNet``: conv - relu - pool - affine - relu - affine - softmax;
* ``DeepConvNet``: 6 3x3 convolutions (16, 16, 32, 32, 64, 64 filters), a pool after
  each pair, affine - relu - dropout - affine - dropout - softmax, He init;
* ``Trainer``: the book's ``common/trainer.py`` on ``book.train``.

Every draw comes from NumPy's global random state in the book's order: the weights in
``params`` order at construction, one ``np.random.rand`` mask per Dropout layer in each
training forward (``loss`` runs in training mode, as the book's ``DeepConvNet.loss``).
The other layers (Affine, Relu, Dropout, SoftmaxWithLoss) and the optimizers are
``book.py``'s. Tests import it as ``book_conv``; not an asv benchmark.
"""

from collections import OrderedDict

import numpy as np

try:  # imported by asv's discovery or compare.py's reports as benchmarks.book_conv
    from . import book
except ImportError:  # tests and scripts: benchmarks/ is on sys.path
    import book


def im2col(input_data, filter_h, filter_w, stride=1, pad=0):
    """(N, C, H, W) -> col (N*out_h*out_w, C*filter_h*filter_w)."""
    N, C, H, W = input_data.shape
    out_h = (H + 2 * pad - filter_h) // stride + 1
    out_w = (W + 2 * pad - filter_w) // stride + 1
    img = np.pad(input_data, [(0, 0), (0, 0), (pad, pad), (pad, pad)], "constant")
    col = np.zeros((N, C, filter_h, filter_w, out_h, out_w))
    for y in range(filter_h):  # one strided slice of every window per filter position
        y_end = y + stride * out_h
        for x in range(filter_w):
            x_end = x + stride * out_w
            col[:, :, y, x, :, :] = img[:, :, y:y_end:stride, x:x_end:stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(N * out_h * out_w, -1)


def col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0):
    """col (N*out_h*out_w, C*filter_h*filter_w) -> (N, C, H, W), windows added."""
    N, C, H, W = input_shape
    out_h = (H + 2 * pad - filter_h) // stride + 1
    out_w = (W + 2 * pad - filter_w) // stride + 1
    col = col.reshape(N, out_h, out_w, C, filter_h, filter_w).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((N, C, H + 2 * pad + stride - 1, W + 2 * pad + stride - 1))
    for y in range(filter_h):
        y_end = y + stride * out_h
        for x in range(filter_w):
            x_end = x + stride * out_w
            img[:, :, y:y_end:stride, x:x_end:stride] += col[:, :, y, x, :, :]
    return img[:, :, pad:H + pad, pad:W + pad]


class Convolution:
    def __init__(self, W, b, stride=1, pad=0):
        self.W, self.b, self.stride, self.pad = W, b, stride, pad

    def forward(self, x, train=False):
        FN, C, FH, FW = self.W.shape
        N, C, H, W = x.shape
        out_h = 1 + (H + 2 * self.pad - FH) // self.stride
        out_w = 1 + (W + 2 * self.pad - FW) // self.stride
        self.x_shape = x.shape
        self.col = im2col(x, FH, FW, self.stride, self.pad)
        self.col_W = self.W.reshape(FN, -1).T
        out = np.dot(self.col, self.col_W) + self.b
        return out.reshape(N, out_h, out_w, -1).transpose(0, 3, 1, 2)

    def backward(self, dout):
        FN, C, FH, FW = self.W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, FN)
        self.db = np.sum(dout, axis=0)
        self.dW = np.dot(self.col.T, dout).transpose(1, 0).reshape(FN, C, FH, FW)
        dcol = np.dot(dout, self.col_W.T)
        return col2im(dcol, self.x_shape, FH, FW, self.stride, self.pad)


class Pooling:
    def __init__(self, pool_h, pool_w, stride=2, pad=0):
        self.pool_h, self.pool_w, self.stride, self.pad = pool_h, pool_w, stride, pad

    def forward(self, x, train=False):
        N, C, H, W = x.shape
        out_h = 1 + (H + 2 * self.pad - self.pool_h) // self.stride
        out_w = 1 + (W + 2 * self.pad - self.pool_w) // self.stride
        col = im2col(x, self.pool_h, self.pool_w, self.stride, self.pad)
        col = col.reshape(-1, self.pool_h * self.pool_w)  # one window a row: (n, oy, ox, c)
        self.x_shape = x.shape
        self.arg_max = np.argmax(col, axis=1)  # (the first maximum: the book's tie rule)
        out = np.max(col, axis=1)
        return out.reshape(N, out_h, out_w, C).transpose(0, 3, 1, 2)

    def backward(self, dout):
        dout = dout.transpose(0, 2, 3, 1)
        size = self.pool_h * self.pool_w
        dmax = np.zeros((dout.size, size))
        dmax[np.arange(self.arg_max.size), self.arg_max.flatten()] = dout.flatten()
        dcol = dmax.reshape(dout.shape[0] * dout.shape[1] * dout.shape[2], -1)
        return col2im(dcol, self.x_shape, self.pool_h, self.pool_w, self.stride, self.pad)


class _ConvNet:
    """What both networks share: predict through the layers, the loss, the book's batched
    accuracy and gradient."""

    def predict(self, x, train_flg=False):
        for layer in self.layers.values():
            x = layer.forward(x, train_flg)
        return x

    def loss(self, x, t):
        return self.last_layer.forward(self.predict(x, self.loss_trains), t)

    def accuracy(self, x, t, batch_size=100):
        """The book's: whole batches of ``batch_size`` (the rows after the last whole
        batch are not counted), divided by all the rows."""
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        acc = 0.0
        for i in range(int(x.shape[0] / batch_size)):
            tx = x[i * batch_size:(i + 1) * batch_size]
            tt = t[i * batch_size:(i + 1) * batch_size]
            y = np.argmax(self.predict(tx), axis=1)
            acc += np.sum(y == tt)
        return acc / x.shape[0]

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        grads = {}
        for i, name in enumerate(self.weighted, start=1):
            grads[f"W{i}"], grads[f"b{i}"] = self.layers[name].dW, self.layers[name].db
        return grads


class SimpleConvNet(_ConvNet):
    """conv - relu - pool(2x2, stride 2) - affine - relu - affine - softmax."""

    loss_trains = False

    def __init__(self, input_dim=(1, 28, 28),
                 conv_param=None, hidden_size=100, output_size=10, weight_init_std=0.01):
        if conv_param is None:  # (the book's default, written as a dict literal there)
            conv_param = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}
        FN, FS = conv_param["filter_num"], conv_param["filter_size"]
        pad, stride = conv_param["pad"], conv_param["stride"]
        size = input_dim[1]
        conv_out = (size - FS + 2 * pad) // stride + 1
        pool_out = int(FN * (conv_out / 2) * (conv_out / 2))
        std = weight_init_std
        self.params = {
            "W1": std * np.random.randn(FN, input_dim[0], FS, FS), "b1": np.zeros(FN),
            "W2": std * np.random.randn(pool_out, hidden_size), "b2": np.zeros(hidden_size),
            "W3": std * np.random.randn(hidden_size, output_size), "b3": np.zeros(output_size),
        }
        p = self.params
        self.layers = OrderedDict()
        self.layers["Conv1"] = Convolution(p["W1"], p["b1"], stride, pad)
        self.layers["Relu1"] = book.Relu()
        self.layers["Pool1"] = Pooling(2, 2, stride=2)
        self.layers["Affine1"] = book.Affine(p["W2"], p["b2"])
        self.layers["Relu2"] = book.Relu()
        self.layers["Affine2"] = book.Affine(p["W3"], p["b3"])
        self.last_layer = book.SoftmaxWithLoss()
        self.weighted = ["Conv1", "Affine1", "Affine2"]


DEEP_CONV_PARAMS = [  # the book's DeepConvNet defaults, conv_param_1 .. conv_param_6
    {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 32, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 32, "filter_size": 3, "pad": 2, "stride": 1},
    {"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
]


class DeepConvNet(_ConvNet):
    """(conv - relu - conv - relu - pool) x 3 - affine - relu - dropout - affine - dropout
    - softmax, for (1, 28, 28) images as the book's (its fan-ins are written for them)."""

    loss_trains = True  # the book's DeepConvNet.loss predicts with train_flg=True

    def __init__(self, input_dim=(1, 28, 28), conv_param_1=DEEP_CONV_PARAMS[0],
                 conv_param_2=DEEP_CONV_PARAMS[1], conv_param_3=DEEP_CONV_PARAMS[2],
                 conv_param_4=DEEP_CONV_PARAMS[3], conv_param_5=DEEP_CONV_PARAMS[4],
                 conv_param_6=DEEP_CONV_PARAMS[5], hidden_size=50, output_size=10):
        pre_node_nums = np.array([1 * 3 * 3, 16 * 3 * 3, 16 * 3 * 3, 32 * 3 * 3, 32 * 3 * 3,
                                  64 * 3 * 3, 64 * 4 * 4, hidden_size])
        scales = np.sqrt(2.0 / pre_node_nums)  # He
        convs = [conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5,
                 conv_param_6]
        self.params = {}
        channels = input_dim[0]
        for i, cp in enumerate(convs):
            self.params[f"W{i + 1}"] = scales[i] * np.random.randn(
                cp["filter_num"], channels, cp["filter_size"], cp["filter_size"])
            self.params[f"b{i + 1}"] = np.zeros(cp["filter_num"])
            channels = cp["filter_num"]
        self.params["W7"] = scales[6] * np.random.randn(64 * 4 * 4, hidden_size)
        self.params["b7"] = np.zeros(hidden_size)
        self.params["W8"] = scales[7] * np.random.randn(hidden_size, output_size)
        self.params["b8"] = np.zeros(output_size)
        p = self.params
        self.layers = OrderedDict()
        self.weighted = []
        for i, cp in enumerate(convs):
            name = f"Conv{i + 1}"
            self.layers[name] = Convolution(p[f"W{i + 1}"], p[f"b{i + 1}"], cp["stride"],
                                            cp["pad"])
            self.layers[f"Relu{i + 1}"] = book.Relu()
            self.weighted.append(name)
            if i % 2 == 1:
                self.layers[f"Pool{i // 2 + 1}"] = Pooling(2, 2, stride=2)
        self.layers["Affine1"] = book.Affine(p["W7"], p["b7"])
        self.layers["Relu7"] = book.Relu()
        self.layers["Dropout1"] = book.Dropout(0.5)
        self.layers["Affine2"] = book.Affine(p["W8"], p["b8"])
        self.layers["Dropout2"] = book.Dropout(0.5)
        self.last_layer = book.SoftmaxWithLoss()
        self.weighted += ["Affine1", "Affine2"]


class Trainer:
    """The book's ``common/trainer.py`` (``book.train``'s loop): the three lists, then the
    test accuracy on the whole test set."""

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

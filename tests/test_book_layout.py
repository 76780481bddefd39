"""The book's module layout: a chapter-5/6 script runs on fastnn by replacing ``common.``
with ``fastnn.common.`` in its imports, and nothing else.

Each script below is a small version of one of the book's (its import lines and its
first iterations, on the digits). Where a book-style baseline exists (benchmarks/
book.py), the same text runs twice: once against a stand-in
``common`` package made of those baselines, once with the import lines swapped to
``fastnn.common``; the numbers must agree.
"""

import sys
import types

import book
import numpy as np
import pytest

import fastnn


def swap(script: str) -> str:
    """The mechanical swap the README promises."""
    return script.replace("from common.", "from fastnn.common.").replace(
        "from two_layer_net import", "from fastnn.common.two_layer_net import")


def run(script: str, **data) -> dict:
    namespace = dict(data)  # a script's own globals: nothing but the data it loads
    exec(compile(script, "<book script>", "exec"), namespace)
    return namespace


@pytest.fixture
def book_common(monkeypatch):
    """A ``common`` package (and ch05's ``two_layer_net``) made of the book-style
    baselines, importable under the book's module names for one test."""
    from fastnn.common import util

    class MultiLayerNet(book.Net):
        def __init__(self, input_size, hidden_size_list, output_size, activation="relu",
                     weight_init_std="relu", weight_decay_lambda=0):
            super().__init__(input_size, hidden_size_list, output_size, activation,
                             weight_init_std, weight_decay_lambda)

    class TwoLayerNet(book.BookSequential):
        def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01):
            super().__init__(input_size, [hidden_size], output_size, weight_init_std)

        def accuracy(self, x, t):
            return np.sum(np.argmax(self.predict(x), axis=1) == t) / float(x.shape[0])

    modules = {
        "common": {},
        "common.optimizer": {"np": np, "SGD": book.SGD, "Momentum": book.Momentum,
                             "Nesterov": book.Nesterov, "AdaGrad": book.AdaGrad,
                             "RMSprop": book.RMSprop, "Adam": book.Adam},
        "common.multi_layer_net": {"np": np, "MultiLayerNet": MultiLayerNet},
        "common.util": {"np": np, "smooth_curve": util.smooth_curve},
        "two_layer_net": {"np": np, "TwoLayerNet": TwoLayerNet},
    }
    for name, names in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(names)
        monkeypatch.setitem(sys.modules, name, module)


@pytest.fixture(scope="module")
def data():
    (x, t), (x_test, t_test) = fastnn.datasets.load_digits()
    return {"x_train": x, "t_train": t, "x_test": x_test, "t_test": t_test}


# --- what the book's modules give ---------------------------------------------------------

BOOK_NAMES = {
    "optimizer": ["np", "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"],
    "layers": ["np", "Affine", "Relu", "Sigmoid", "SoftmaxWithLoss", "Dropout",
               "BatchNormalization", "Convolution", "Pooling", "im2col", "col2im",
               "softmax", "cross_entropy_error", "sigmoid"],
    "multi_layer_net": ["np", "MultiLayerNet", "OrderedDict", "numerical_gradient", "Affine",
                        "Relu", "SoftmaxWithLoss"],
    "multi_layer_net_extend": ["np", "MultiLayerNetExtend", "OrderedDict",
                               "numerical_gradient", "BatchNormalization", "Dropout"],
    "trainer": ["np", "Trainer", "SGD", "Adam"],
    "util": ["np", "smooth_curve", "shuffle_dataset", "conv_output_size", "im2col", "col2im"],
    "gradient": ["np", "numerical_gradient", "numerical_gradient_2d"],
    "functions": ["np", "identity_function", "step_function", "sigmoid", "sigmoid_grad",
                  "relu", "relu_grad", "softmax", "sum_squared_error",
                  "cross_entropy_error", "softmax_loss"],
    "two_layer_net": ["np", "TwoLayerNet"],
    "simple_convnet": ["np", "pickle", "OrderedDict", "SimpleConvNet", "Convolution",
                       "Pooling", "Affine", "Relu", "SoftmaxWithLoss", "numerical_gradient"],
    "deep_convnet": ["np", "pickle", "OrderedDict", "DeepConvNet", "Convolution", "Pooling",
                     "Affine", "Relu", "Dropout", "SoftmaxWithLoss"],
}


@pytest.mark.parametrize("module", sorted(BOOK_NAMES))
def test_star_imports_give_what_the_books_modules_give(module):
    namespace = run(f"from fastnn.common.{module} import *")
    missing = [name for name in BOOK_NAMES[module] if name not in namespace]
    assert not missing
    assert namespace["np"] is np


def test_the_classes_are_fastnns_own():
    from fastnn.common import layers, multi_layer_net_extend, optimizer, trainer

    assert optimizer.Adam is fastnn.Adam and trainer.Trainer is fastnn.Trainer
    assert multi_layer_net_extend.MultiLayerNetExtend is fastnn.MultiLayerNetExtend
    assert layers.Affine is fastnn.Affine


def test_functions_match_fastnns_reference():
    from fastnn.common import functions as F

    x = np.array([[1.0, -2.0, 0.0, 3.0], [1e3, 0.0, -1e3, 2.0]])
    np.testing.assert_allclose(F.softmax(x), fastnn.reference.softmax(x))
    np.testing.assert_allclose(F.softmax(x[0]), fastnn.reference.softmax(x[:1])[0])
    s = F.sigmoid(x[0])
    np.testing.assert_allclose(F.sigmoid_grad(x[0]), s * (1 - s))
    np.testing.assert_array_equal(F.relu_grad(np.array([-1.0, 0.0, 2.0])), [0, 1, 1])
    np.testing.assert_array_equal(F.step_function(np.array([-1.0, 0.5])), [0, 1])
    t = np.array([3, 0])
    loss, _ = fastnn.reference.softmax_cross_entropy(x, t)
    assert abs(F.softmax_loss(x, t) - loss) < 1e-6  # the book's + 1e-7 inside its log
    assert F.cross_entropy_error(F.softmax(x), np.eye(4)[t]) == F.softmax_loss(x, t)
    assert F.sum_squared_error(np.ones(3), np.zeros(3)) == 1.5


def test_util_and_gradient():
    from fastnn.common.gradient import numerical_gradient, numerical_gradient_2d
    from fastnn.common.util import shuffle_dataset, smooth_curve

    curve = np.linspace(1, 0, 50) + 0.1 * np.sin(np.arange(50))
    smooth = smooth_curve(curve)
    assert smooth.shape == curve.shape and np.ptp(np.diff(smooth)) < np.ptp(np.diff(curve))
    np.testing.assert_allclose(smooth_curve(np.full(30, 2.0)), 2.0)
    x, t = np.arange(12.0).reshape(6, 2), np.arange(6)
    np.random.seed(3)
    xs, ts = shuffle_dataset(x, t)
    np.random.seed(3)
    order = np.random.permutation(6)
    np.testing.assert_array_equal(xs, x[order]) and np.testing.assert_array_equal(ts, order)
    w = np.array([[1.0, 2.0], [3.0, -1.0]])
    np.testing.assert_allclose(numerical_gradient(lambda a: np.sum(a ** 2), w), 2 * w,
                               rtol=1e-6)
    np.testing.assert_allclose(numerical_gradient_2d(lambda row: np.sum(row ** 3), w),
                               3 * w ** 2, rtol=1e-6)


# --- chapter 5 ----------------------------------------------------------------------------

CH05_TRAIN = """
import numpy as np
from two_layer_net import TwoLayerNet

x_train, t_train = x_train[:1400], t_train[:1400]  # 14 iterations an epoch
np.random.seed(0)
network = TwoLayerNet(input_size=64, hidden_size=50, output_size=10)
iters_num, train_size, batch_size, learning_rate = 120, x_train.shape[0], 100, 0.1
train_loss_list, train_acc_list, test_acc_list = [], [], []
iter_per_epoch = max(train_size / batch_size, 1)
for i in range(iters_num):
    batch_mask = np.random.choice(train_size, batch_size)
    x_batch, t_batch = x_train[batch_mask], t_train[batch_mask]
    grad = network.gradient(x_batch, t_batch)
    for key in ('W1', 'b1', 'W2', 'b2'):
        network.params[key] -= learning_rate * grad[key]
    train_loss_list.append(network.loss(x_batch, t_batch))
    if i % iter_per_epoch == 0:
        train_acc_list.append(network.accuracy(x_train, t_train))
        test_acc_list.append(network.accuracy(x_test, t_test))
"""


def test_ch05_train_neuralnet_swapped(book_common, data):
    ours = run(swap(CH05_TRAIN), **data)
    theirs = run(CH05_TRAIN, **data)
    assert isinstance(ours["network"], fastnn.Sequential)
    assert list(ours["network"].params) == ["W1", "b1", "W2", "b2"]
    for key in ("W1", "b1", "W2", "b2"):
        np.testing.assert_allclose(ours["network"].params[key], theirs["network"].params[key],
                                   rtol=1e-9, atol=1e-12)
    assert ours["train_acc_list"] == theirs["train_acc_list"]
    assert ours["test_acc_list"] == theirs["test_acc_list"] and len(ours["test_acc_list"]) == 9
    assert ours["test_acc_list"][-1] > ours["test_acc_list"][0] + 0.2  # it learns


CH05_GRADIENT_CHECK = """
import numpy as np
from two_layer_net import TwoLayerNet

np.random.seed(1)
network = TwoLayerNet(input_size=64, hidden_size=10, output_size=10)
x_batch, t_batch = x_train[:3], t_train[:3]
grad_numerical = network.numerical_gradient(x_batch, t_batch)
grad_backprop = network.gradient(x_batch, t_batch)
diff = {key: np.average(np.abs(grad_backprop[key] - grad_numerical[key]))
        for key in grad_numerical.keys()}
"""


def test_ch05_gradient_check_swapped(data):
    ours = run(swap(CH05_GRADIENT_CHECK), **data)
    assert sorted(ours["diff"]) == ["W1", "W2", "b1", "b2"]
    assert max(ours["diff"].values()) < 1e-9


# --- chapter 6 ----------------------------------------------------------------------------

CH06_OPTIMIZER_COMPARE = """
from common.util import smooth_curve
from common.multi_layer_net import MultiLayerNet
from common.optimizer import *

np.random.seed(0)
train_size, batch_size, max_iterations = x_train.shape[0], 32, 30
optimizers = {'SGD': SGD(), 'Momentum': Momentum(), 'AdaGrad': AdaGrad(), 'Adam': Adam()}
networks, train_loss = {}, {}
for key in optimizers.keys():
    networks[key] = MultiLayerNet(input_size=64, hidden_size_list=[20, 20], output_size=10)
    train_loss[key] = []
for i in range(max_iterations):
    batch_mask = np.random.choice(train_size, batch_size)
    x_batch, t_batch = x_train[batch_mask], t_train[batch_mask]
    for key in optimizers.keys():
        grads = networks[key].gradient(x_batch, t_batch)
        optimizers[key].update(networks[key].params, grads)
        train_loss[key].append(networks[key].loss(x_batch, t_batch))
smoothed = {key: smooth_curve(train_loss[key]) for key in optimizers}
"""


def test_ch06_optimizer_compare_swapped(book_common, data):
    ours = run(swap(CH06_OPTIMIZER_COMPARE), **data)  # np comes from the star import
    theirs = run(CH06_OPTIMIZER_COMPARE, **data)
    for key in ours["optimizers"]:
        np.testing.assert_allclose(ours["train_loss"][key], theirs["train_loss"][key],
                                   rtol=1e-6)  # (the book's log adds 1e-7)
        for name, p in ours["networks"][key].params.items():
            np.testing.assert_allclose(p, theirs["networks"][key].params[name], rtol=1e-9,
                                       atol=1e-12)
        assert ours["smoothed"][key].shape == (30,)


CH06_OPTIMIZER_NAIVE = """
from collections import OrderedDict
from common.optimizer import *

def df(x, y):
    return x / 10.0, 2.0 * y

init_pos = (-7.0, 2.0)
params, grads = {}, {}
optimizers = OrderedDict()
optimizers["SGD"] = SGD(lr=0.95)
optimizers["Momentum"] = Momentum(lr=0.1)
optimizers["AdaGrad"] = AdaGrad(lr=1.5)
optimizers["Adam"] = Adam(lr=0.3)
history = {}
for key in optimizers:
    optimizer = optimizers[key]
    params['x'], params['y'] = init_pos[0], init_pos[1]
    history[key] = []
    for i in range(30):
        history[key].append((params['x'], params['y']))
        grads['x'], grads['y'] = df(params['x'], params['y'])
        optimizer.update(params, grads)
x = np.arange(-10, 10, 0.01)  # (np: from the star import)
"""


def test_ch06_optimizer_compare_naive_swapped(book_common):
    """The book's optimizers on a dict of plain numbers, not arrays."""
    ours = run(swap(CH06_OPTIMIZER_NAIVE))
    theirs = run(CH06_OPTIMIZER_NAIVE)
    for key, path in theirs["history"].items():
        np.testing.assert_allclose(ours["history"][key], path, rtol=1e-12)
        assert all(type(v) is float for v in ours["history"][key][-1])


CH06_SCRIPTS = {
    "weight_init_compare": """
import numpy as np
from common.util import smooth_curve
from common.multi_layer_net import MultiLayerNet
from common.optimizer import SGD

np.random.seed(0)
weight_init_types = {'std=0.01': 0.01, 'Xavier': 'sigmoid', 'He': 'relu'}
optimizer = SGD(lr=0.01)
networks, train_loss = {}, {}
for key, weight_type in weight_init_types.items():
    networks[key] = MultiLayerNet(input_size=64, hidden_size_list=[20, 20, 20],
                                  output_size=10, weight_init_std=weight_type)
    train_loss[key] = []
for i in range(20):
    batch_mask = np.random.choice(x_train.shape[0], 32)
    for key in weight_init_types.keys():
        grads = networks[key].gradient(x_train[batch_mask], t_train[batch_mask])
        optimizer.update(networks[key].params, grads)
        train_loss[key].append(networks[key].loss(x_train[batch_mask], t_train[batch_mask]))
result = {key: smooth_curve(v)[-1] for key, v in train_loss.items()}
""",
    "overfit_weight_decay": """
import numpy as np
from common.multi_layer_net import MultiLayerNet
from common.optimizer import SGD

np.random.seed(0)
x_small, t_small = x_train[:300], t_train[:300]
network = MultiLayerNet(input_size=64, hidden_size_list=[20, 20], output_size=10,
                        weight_decay_lambda=0.1)
optimizer = SGD(lr=0.01)
train_acc_list = []
for i in range(30):
    batch_mask = np.random.choice(300, 100)
    grads = network.gradient(x_small[batch_mask], t_small[batch_mask])
    optimizer.update(network.params, grads)
    if i % 3 == 0:
        train_acc_list.append(network.accuracy(x_small, t_small))
result = train_acc_list
""",
    "overfit_dropout": """
import numpy as np
from common.multi_layer_net_extend import MultiLayerNetExtend
from common.trainer import Trainer

np.random.seed(0)
network = MultiLayerNetExtend(input_size=64, hidden_size_list=[20, 20], output_size=10,
                              use_dropout=True, dropout_ration=0.2)
trainer = Trainer(network, x_train[:300], t_train[:300], x_test, t_test, epochs=3,
                  mini_batch_size=100, optimizer='sgd', optimizer_param={'lr': 0.01},
                  verbose=False)
trainer.train()
result = trainer.test_acc_list
""",
    "hyperparameter_optimization": """
import numpy as np
from common.multi_layer_net import MultiLayerNet
from common.util import shuffle_dataset
from common.trainer import Trainer

np.random.seed(0)
x, t = shuffle_dataset(x_train[:300], t_train[:300])
x_val, t_val, x_tr, t_tr = x[:60], t[:60], x[60:], t[60:]
result = []
for _ in range(2):
    weight_decay = 10 ** np.random.uniform(-8, -4)
    lr = 10 ** np.random.uniform(-6, -2)
    network = MultiLayerNet(input_size=64, hidden_size_list=[20, 20], output_size=10,
                            weight_decay_lambda=weight_decay)
    trainer = Trainer(network, x_tr, t_tr, x_val, t_val, epochs=2, mini_batch_size=60,
                      optimizer='sgd', optimizer_param={'lr': lr}, verbose=False)
    trainer.train()
    result.append(trainer.test_acc_list[-1])
""",
    "batch_norm_test": """
import numpy as np
from common.multi_layer_net_extend import MultiLayerNetExtend
from common.optimizer import SGD, Adam

np.random.seed(0)
bn_network = MultiLayerNetExtend(input_size=64, hidden_size_list=[20, 20], output_size=10,
                                 weight_init_std=0.1, use_batchnorm=True)
optimizer = SGD(lr=0.01)
result = []
for i in range(20):
    batch_mask = np.random.choice(300, 50)
    grads = bn_network.gradient(x_train[batch_mask], t_train[batch_mask])
    optimizer.update(bn_network.params, grads)
    if i % 5 == 0:
        result.append(bn_network.accuracy(x_train[:300], t_train[:300]))
""",
    "batch_norm_gradient_check": """
import numpy as np
from common.multi_layer_net_extend import MultiLayerNetExtend

np.random.seed(0)
network = MultiLayerNetExtend(input_size=64, hidden_size_list=[8, 8], output_size=10,
                              use_batchnorm=True)
x_batch, t_batch = x_train[:2], t_train[:2]
grad_backprop = network.gradient(x_batch, t_batch)
grad_numerical = network.numerical_gradient(x_batch, t_batch)
result = {key: np.average(np.abs(grad_backprop[key] - grad_numerical[key]))
          for key in grad_numerical.keys()}
""",
}


@pytest.mark.parametrize("name", sorted(CH06_SCRIPTS))
def test_ch06_scripts_run_swapped(name, data):
    script = CH06_SCRIPTS[name]
    swapped = swap(script)
    assert "from common." not in swapped
    first = run(swapped, **data)["result"]
    again = run(swapped, **data)["result"]  # np.random.seed at the top: the same numbers
    if isinstance(first, dict):
        assert first.keys() == again.keys()
        assert all(first[k] == again[k] for k in first)
    else:
        assert first == again and len(first) > 0
    if name == "batch_norm_gradient_check":
        assert max(first.values()) < 1e-6

"""Bad input: a clear ValueError/TypeError naming the argument, on both backends."""

import numpy as np
import pytest

import fastnn


@pytest.fixture
def net(backend):
    return fastnn.Sequential(4, [5], 3, backend=backend, seed=0)


X = np.ones((2, 4))
T = np.array([0, 2])


def call(net, method, *args):
    """net.<method>(*args); train_step also gets an optimizer and must change nothing."""
    if method != "train_step":
        return getattr(net, method)(*args)
    before = net.params.flat.copy()
    try:
        return net.train_step(*args, fastnn.SGD(0.1))
    finally:
        np.testing.assert_array_equal(net.params.flat, before)


@pytest.mark.parametrize("method", ["predict", "loss", "accuracy", "gradient", "train_step"])
@pytest.mark.parametrize("x, exc, match", [
    (np.ones((2, 5)), ValueError, r"x: has 5 features per sample \(shape \(2, 5\)\), but the network expects 4"),
    (np.ones(4), ValueError, r"x: expected a 2-D array .*got a 1-D array.*reshape\(1, -1\)"),
    (np.ones((0, 4)), ValueError, r"x: found an empty batch"),
    (np.array([[1, 2, np.nan, 4], [1, 2, 3, 4]]), ValueError, r"x: contains NaN or infinity .*sample 0, feature 2"),
    (np.array([[1, 2, 3, 4], [1, 2, 3, np.inf]]), ValueError, r"x: contains NaN or infinity .*sample 1, feature 3"),
    (np.array([["a", "b", "c", "d"]] * 2), TypeError, r"x: expected an array of real numbers.*<U1"),
    (np.ones((2, 4), dtype=complex), TypeError, r"x: expected an array of real numbers.*complex128"),
    ("not an array", TypeError, r"x: expected an array of real numbers"),
])
def test_bad_x(net, method, x, exc, match):
    args = (x,) if method == "predict" else (x, T[: len(x)] if len(x) else T)
    with pytest.raises(exc, match=match):
        call(net, method, *args)


@pytest.mark.parametrize("method", ["loss", "accuracy", "gradient", "train_step"])
@pytest.mark.parametrize("t, exc, match", [
    (np.array([0, 3]), ValueError, r"t: class labels must lie in \[0, 2\]; label 3 at index 1"),
    (np.array([-1, 0]), ValueError, r"t: class labels must lie in \[0, 2\]; label -1 at index 0"),
    (np.array([0, 2**63], dtype=np.uint64), ValueError, r"label 9223372036854775808 at index 1"),
    (np.array([0.0, 1.0]), TypeError, r"t: expected integer class labels, got dtype float64"),
    (np.array([0, 1, 2]), ValueError, r"t: expected one target per sample of x \(2\), got 3"),
    (np.eye(4)[:2], ValueError, r"t: expected integer labels of shape \(2,\) or one-hot rows of shape \(2, 3\), got shape \(2, 4\)"),
    (np.array(["a", "b"]), TypeError, r"t: expected an array of real numbers"),
])
def test_bad_labels(net, method, t, exc, match):
    with pytest.raises(exc, match=match):
        call(net, method, X, t)


def test_one_hot_rows_must_be_distributions(net):
    with pytest.raises(ValueError, match=r"t: one-hot rows must be non-negative and sum to 1; row 1"):
        net.loss(X, np.array([[0, 0, 1.0], [0, 1.0, 1.0]]))


def test_regression_targets(backend):
    net = fastnn.Sequential(4, [5], 2, loss="mse", backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"t: expected regression targets of shape \(2, 2\), got \(2, 3\)"):
        net.loss(X, np.ones((2, 3)))
    with pytest.raises(ValueError, match="t: contains NaN"):
        net.loss(X, np.array([[0, np.nan], [0, 0]]))
    one = fastnn.Sequential(4, [5], 1, loss="mse", backend=backend, seed=0)
    assert one.loss(X, np.ones(2)) == one.loss(X, np.ones((2, 1)))


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(hidden_size=[]), TypeError, "hidden_size: expected a non-empty list of positive integers"),
    (dict(hidden_size="128"), TypeError, "hidden_size: expected a non-empty list"),
    (dict(hidden_size=[128, 0]), ValueError, r"hidden_size\[1\]: expected a positive integer, got 0"),
    (dict(hidden_size=[12.5]), TypeError, r"hidden_size\[0\]: expected a positive integer, got 12.5"),
    (dict(input_size=0), ValueError, "input_size: expected a positive integer, got 0"),
    (dict(output_size="10"), TypeError, "output_size: expected a positive integer"),
    (dict(activation="softsign"), ValueError, "activation: expected one of 'relu', 'sigmoid', 'tanh', got 'softsign'"),
    (dict(loss="hinge"), ValueError, "loss: expected one of 'softmax', 'mse', 'sse', got 'hinge'"),
    (dict(backend="torch"), ValueError, "backend: expected one of 'numba', 'numpy', got 'torch'"),
    (dict(dtype=np.float16), ValueError, "dtype: expected np.float32 or np.float64"),
    (dict(dtype="int"), ValueError, "dtype: expected np.float32 or np.float64"),
    (dict(dtype="x"), ValueError, "dtype: expected np.float32 or np.float64, got 'x'"),
    (dict(dtype=3), ValueError, "dtype: expected np.float32 or np.float64, got 3"),
    (dict(weight_init_std=-1), ValueError, "weight_init_std: expected a positive finite number"),
    (dict(weight_init_std="kaiming"), ValueError, "weight_init_std: expected a positive number or one of"),
    (dict(seed=1.5), TypeError, "seed: expected a non-negative int or None"),
    (dict(seed=-3), ValueError, "seed: expected a non-negative int or None, got -3"),
])
def test_bad_constructor_arguments(kwargs, exc, match):
    args = dict(input_size=4, hidden_size=[5], output_size=3)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        fastnn.Sequential(**args)


@pytest.mark.parametrize("lr, exc", [(0, ValueError), (-0.1, ValueError), (float("nan"), ValueError),
                                     (float("inf"), ValueError), ("0.1", TypeError), (None, TypeError)])
def test_bad_learning_rate(lr, exc):
    with pytest.raises(exc, match="lr: expected a positive finite number"):
        fastnn.SGD(lr=lr)


def test_sgd_rejects_bad_gradients_before_changing_anything(net):
    grads = net.gradient(X, T)
    before = net.params.flat.copy()
    bad_grads = [
        ({k: v for k, v in grads.items() if k != "b2"}, ValueError, "grads: missing the gradient for parameter 'b2'"),
        ({**grads, "W2": np.ones((3, 5))}, ValueError, r"grads\['W2'\]: expected shape \(5, 3\)"),
        ({**grads, "b2": "zeros"}, TypeError, r"grads\['b2'\]: expected a real-valued ndarray"),
        ([1, 2], TypeError, "grads: expected a dict of arrays"),
    ]
    for bad, exc, match in bad_grads:
        with pytest.raises(exc, match=match):
            fastnn.SGD(0.1).update(net.params, bad)
        np.testing.assert_array_equal(net.params.flat, before)


def test_train_step_rejects_a_non_optimizer(net):
    before = net.params.flat.copy()
    with pytest.raises(TypeError, match="optimizer: expected a fastnn optimizer .*got float"):
        net.train_step(X, T, 0.1)
    np.testing.assert_array_equal(net.params.flat, before)

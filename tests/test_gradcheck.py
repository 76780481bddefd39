"""Backpropagation against central differences, float64, both backends."""

import numpy as np
import pytest
from _helpers import HIDDEN_ACTIVATIONS, one_hot

import fastnn


@pytest.mark.parametrize("hidden", [[5], [6, 4], [5, 4, 6], [4, 5, 3, 4]], ids=lambda h: f"depth{len(h)}")
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("loss", ["softmax", "mse"])
@pytest.mark.parametrize("labels", ["int", "onehot"])
def test_gradient_check_float64(hidden, activation, loss, labels, backend):
    rng = np.random.default_rng(len(hidden) * 7 + 3)
    D, C, N = 7, 3, 6
    net = fastnn.Sequential(D, hidden, C, "he", activation=activation, loss=loss,
                            backend=backend, seed=len(hidden))
    for i in range(1, len(hidden) + 2):  # non-zero biases exercise db and shift the kinks
        net.params[f"b{i}"][...] = 0.1 * rng.standard_normal(net.params[f"b{i}"].shape)
    x = rng.standard_normal((N, D))
    cls = rng.integers(0, C, N)
    if loss == "mse":
        t = rng.standard_normal((N, C)) if labels == "int" else one_hot(cls, C)
    else:
        t = cls if labels == "int" else one_hot(cls, C)
    errors = fastnn.gradient_check(net, x, t)
    assert set(errors) == set(net.params)
    assert max(errors.values()) < 1e-6, errors


def test_gradient_check_float32_against_float64_differences(backend):
    rng = np.random.default_rng(1)
    net = fastnn.Sequential(5, [6, 4], 3, "he", backend=backend, dtype=np.float32, seed=2)
    x, t = rng.standard_normal((4, 5)), rng.integers(0, 3, 4)
    errors = fastnn.gradient_check(net, x, t)
    assert max(errors.values()) < 1e-4, errors


def test_numerical_gradient_matches_gradient_book_h(backend):
    rng = np.random.default_rng(5)
    net = fastnn.Sequential(4, [5], 3, "he", backend=backend, seed=3)
    x, t = rng.standard_normal((3, 4)), rng.integers(0, 3, 3)
    num, ana = net.numerical_gradient(x, t), net.gradient(x, t)
    for key in net.params:
        np.testing.assert_allclose(num[key], ana[key], rtol=1e-5, atol=1e-8)


def test_gradient_check_detects_a_wrong_backward(monkeypatch):
    """The check can fail: corrupt one gradient and it must report it."""
    net = fastnn.Sequential(4, [5], 3, "he", backend="numpy", seed=3)
    x, t = np.random.default_rng(0).standard_normal((3, 4)), np.array([0, 1, 2])
    real = net.gradient

    def wrong(x, t):
        grads = real(x, t)
        grads["W1"][0, 0] += 1e-3
        return grads

    monkeypatch.setattr(net, "gradient", wrong)
    errors = fastnn.gradient_check(net, x, t)
    assert errors["W1"] > 1e-4 and errors["W2"] < 1e-6

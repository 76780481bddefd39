"""Whole networks: the numba backend follows the numpy backend step for step."""

import numpy as np
import pytest
from _helpers import HIDDEN_ACTIVATIONS, one_hot

import fastnn


def train(backend, hidden, activation, loss, dtype=np.float64, steps=50, seed=0):
    rng = np.random.default_rng(seed)
    D, C, N = 11, 4, 17
    net = fastnn.Sequential(D, hidden, C, "he", activation=activation, loss=loss,
                            backend=backend, dtype=dtype, seed=seed)
    x_all = rng.standard_normal((200, D))
    y_all = rng.integers(0, C, 200)
    t_all = one_hot(y_all, C) if loss == "mse" else y_all
    opt = fastnn.SGD(lr=0.2)
    for _ in range(steps):
        idx = rng.choice(200, N)
        opt.update(net.params, net.gradient(x_all[idx], t_all[idx]))
    return net


@pytest.mark.parametrize("hidden", [[13], [9, 7], [8, 6, 5], [7, 6, 5, 9]], ids=lambda h: f"depth{len(h)}")
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("loss", ["softmax", "mse"])
def test_50_steps_same_parameters_float64(hidden, activation, loss):
    ref = train("numpy", hidden, activation, loss)
    comp = train("numba", hidden, activation, loss)
    for key in ref.params:
        np.testing.assert_allclose(comp.params[key], ref.params[key], rtol=1e-9, atol=1e-12)


def test_50_steps_float32_stay_close():
    ref = train("numpy", [9, 7], "relu", "softmax", dtype=np.float32)
    comp = train("numba", [9, 7], "relu", "softmax", dtype=np.float32)
    np.testing.assert_allclose(comp.params.flat, ref.params.flat, rtol=1e-4, atol=1e-5)


def test_same_seed_same_bits():
    a = train("numba", [9, 7], "relu", "softmax", seed=3)
    b = train("numba", [9, 7], "relu", "softmax", seed=3)
    np.testing.assert_array_equal(a.params.flat, b.params.flat)


def test_thread_count_does_not_change_results():
    """Only BLAS uses threads; its sums may round differently, nothing else changes."""

    results = []
    try:
        for threads in sorted({1, min(2, fastnn.kernels._threads.usable_cores())}):
            fastnn.set_num_threads(threads)
            results.append(train("numba", [64, 48], "sigmoid", "softmax").params.flat.copy())
    finally:
        fastnn.set_num_threads(None)  # the automatic policy again
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12, atol=1e-14)
    ref = train("numpy", [64, 48], "sigmoid", "softmax")
    np.testing.assert_allclose(results[1], ref.params.flat, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("hidden", [[13], [9, 7], [8, 6, 5], [7, 6, 5, 9]], ids=lambda h: f"depth{len(h)}")
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("loss", ["softmax", "mse"])
def test_train_step_equals_gradient_then_update(hidden, activation, loss):
    """train_step (sgd_step: one compiled call on numba, W's step inside its GEMM) ==
    the book's step, gradients then ``params[key] -= lr * grad[key]``, for 50 steps."""
    rng = np.random.default_rng(7)
    nets = {kind: fastnn.Sequential(11, hidden, 4, "he", activation=activation, loss=loss,
                                    backend=backend, seed=1)
            for kind, backend in (("book", "numpy"), ("numpy", "numpy"), ("numba", "numba"))}
    opt = fastnn.SGD(0.2)
    for _ in range(50):
        x = rng.standard_normal((17, 11))
        t = one_hot(rng.integers(0, 4, 17), 4) if loss == "mse" else rng.integers(0, 4, 17)
        grads = nets["book"].gradient(x, t)
        for key in nets["book"].params:
            nets["book"].params[key] -= 0.2 * grads[key]
        nets["numpy"].train_step(x, t, opt)
        nets["numba"].train_step(x, t, opt)
    book = nets["book"].params.flat
    np.testing.assert_array_equal(nets["numpy"].params.flat, book)  # the same operations
    np.testing.assert_allclose(nets["numba"].params.flat, book, rtol=1e-9, atol=1e-12)

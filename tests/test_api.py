"""The stable Sequential / SGD contract (the API reference), on both backends."""

import numpy as np
import pytest
from _helpers import one_hot

import fastnn


def test_params_keys_shapes_and_dtype(backend, dtype):
    net = fastnn.Sequential(7, [5, 4, 3], 2, backend=backend, dtype=dtype, seed=0)
    assert list(net.params) == ["W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4"]
    shapes = [(7, 5), (5,), (5, 4), (4,), (4, 3), (3,), (3, 2), (2,)]
    assert [p.shape for p in net.params.values()] == shapes
    assert all(p.dtype == dtype for p in net.params.values())
    assert all(not p.any() for k, p in net.params.items() if k.startswith("b"))
    assert list(net.layers) == ["Affine1", "Relu1", "Affine2", "Relu2", "Affine3", "Relu3",
                                "Affine4"]
    assert net.n_params == sum(p.size for p in net.params.values())


def test_seed_none_draws_like_the_book_from_the_global_state():
    np.random.seed(3)
    expected = [0.01 * np.random.randn(6, 4), 0.01 * np.random.randn(4, 2)]
    np.random.seed(3)
    net = fastnn.Sequential(6, [4], 2, backend="numpy")
    np.testing.assert_array_equal(net.params["W1"], expected[0])
    np.testing.assert_array_equal(net.params["W2"], expected[1])


def test_int_seed_uses_a_private_generator():
    np.random.seed(11)
    before = np.random.get_state()[1].copy()
    a = fastnn.Sequential(6, [4], 2, backend="numpy", seed=5)
    b = fastnn.Sequential(6, [4], 2, backend="numpy", seed=5)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    np.testing.assert_array_equal(a.params.flat, b.params.flat)
    assert not np.array_equal(a.params["W1"],
                              fastnn.Sequential(6, [4], 2, backend="numpy", seed=6).params["W1"])


@pytest.mark.parametrize("init, k", [("he", 2.0), ("relu", 2.0), ("xavier", 1.0), ("sigmoid", 1.0)])
def test_named_initialisations(init, k):
    net = fastnn.Sequential(400, [300], 2, init, backend="numpy", seed=0)
    assert net.params["W1"].std() == pytest.approx(np.sqrt(k / 400), rel=0.02)
    assert net.params["W2"].std() == pytest.approx(np.sqrt(k / 300), rel=0.2)


def test_in_place_update_of_params_changes_the_network(backend):
    net = fastnn.Sequential(3, [4], 2, backend=backend, seed=0)
    x = np.ones((2, 3))
    before = net.predict(x)
    grads = net.gradient(x, np.array([0, 1]))
    for key in net.params:
        net.params[key] -= 10.0 * grads[key]
    assert not np.allclose(net.predict(x), before)
    assert net.layers["Affine1"].W is net.params["W1"]


def test_assigning_a_new_array_copies_into_the_network(backend):
    net = fastnn.Sequential(3, [4], 2, backend=backend, seed=0)
    view = net.params["W1"]
    net.params["W1"] = np.full((3, 4), 0.5)
    assert net.params["W1"] is view and np.all(view == 0.5)
    with pytest.raises(ValueError, match=r"params\['W1'\]: expected shape \(3, 4\)"):
        net.params["W1"] = np.zeros((4, 3))
    with pytest.raises(KeyError, match="no parameter 'W9'"):
        net.params["W9"] = np.zeros(1)
    with pytest.raises(TypeError):
        del net.params["W1"]


def test_layers_chained_by_hand_give_predict(backend, dtype):
    rng = np.random.default_rng(0)
    net = fastnn.Sequential(5, [6, 4], 3, "he", backend=backend, dtype=dtype, seed=1)
    x = rng.standard_normal((4, 5)).astype(dtype)
    h = x
    for layer in net.layers.values():
        h = layer.forward(h)
    np.testing.assert_allclose(h, net.predict(x), rtol=1e-6)
    t = np.array([0, 1, 2, 0])
    net.lastLayer.forward(h, t)
    dout = net.lastLayer.backward(1)
    for layer in reversed(list(net.layers.values())):
        dout = layer.backward(dout)
    grads = net.gradient(x, t)
    for i in (1, 2, 3):
        np.testing.assert_allclose(net.layers[f"Affine{i}"].dW, grads[f"W{i}"], rtol=1e-5,
                                   atol=1e-7)


def test_layer_backward_does_not_mutate_dout(backend):
    net = fastnn.Sequential(4, [5], 3, backend=backend, seed=0)
    relu = net.layers["Relu1"]
    relu.forward(np.array([[-1.0, 2.0, 0.0, 3.0, -4.0]]))
    dout = np.ones((1, 5))
    dx = relu.backward(dout)
    assert np.all(dout == 1) and dx.tolist() == [[0, 1, 0, 1, 0]]


def test_accuracy_takes_integer_and_one_hot_labels(backend):
    net = fastnn.Sequential(3, [4], 3, backend=backend, seed=0)
    x = np.random.default_rng(0).standard_normal((10, 3))
    pred = net.predict(x).argmax(axis=1)
    labels = pred.copy()
    labels[:3] = (labels[:3] + 1) % 3
    assert net.accuracy(x, labels) == pytest.approx(0.7)
    assert net.accuracy(x, one_hot(labels, 3)) == pytest.approx(0.7)
    assert net.accuracy(x, labels.astype(np.uint8)) == pytest.approx(0.7)


def test_loss_values_follow_the_documented_conventions(backend):
    net = fastnn.Sequential(2, [3], 2, backend=backend, seed=0)
    net.params.flat[...] = 0  # scores all zero: cross-entropy is log(C)
    x = np.ones((5, 2))
    assert net.loss(x, np.zeros(5, int)) == pytest.approx(np.log(2))
    reg = fastnn.Sequential(2, [3], 2, loss="mse", backend=backend, seed=0)
    reg.params.flat[...] = 0
    t = np.full((5, 2), 2.0)
    assert reg.loss(x, t) == pytest.approx(0.5 * 2 * 4)  # mean_n 0.5 * sum_c (0 - 2)^2


def test_unusual_but_valid_inputs_work_and_are_not_modified(backend):
    rng = np.random.default_rng(0)
    net = fastnn.Sequential(16, [8], 3, backend=backend, seed=0)
    x64 = rng.random((6, 16))
    t = rng.integers(0, 3, 6)
    ref = net.loss(x64, t)
    images = rng.integers(0, 255, (6, 4, 4), dtype=np.uint8)
    cases = {
        "float32": x64.astype(np.float32),
        "fortran": np.asfortranarray(x64),
        "strided": np.repeat(x64, 2, axis=1)[:, ::2],
        "n-d": x64.reshape(6, 4, 4),
    }
    for name, x in cases.items():
        saved = x.copy()
        got = net.loss(x, t)
        assert got == pytest.approx(ref, rel=1e-6), name
        np.testing.assert_array_equal(x, saved)
    assert np.isfinite(net.loss(images, t.astype(np.int8)))
    assert net.predict(images).shape == (6, 3)
    saved_t = t.copy()
    net.gradient(x64, t)
    np.testing.assert_array_equal(t, saved_t)


def test_sgd_updates_in_place_through_the_network(backend):
    net = fastnn.Sequential(3, [4], 2, backend=backend, seed=0)
    before = {k: v.copy() for k, v in net.params.items()}
    grads = net.gradient(np.ones((2, 3)), np.array([0, 1]))
    fastnn.SGD(lr=0.5).update(net.params, grads)
    for key in net.params:
        np.testing.assert_allclose(net.params[key], before[key] - 0.5 * grads[key])


def test_sgd_on_plain_dicts_and_replaced_gradients():
    params = {"w": np.ones(3), "b": np.zeros((2, 2))}
    fastnn.SGD(0.1).update(params, {"w": np.ones(3), "b": np.ones((2, 2))})
    np.testing.assert_allclose(params["w"], 0.9)
    np.testing.assert_allclose(params["b"], -0.1)
    net = fastnn.Sequential(3, [4], 2, backend="numba", seed=0)
    grads = net.gradient(np.ones((2, 3)), np.array([0, 1]))
    grads["W1"] = np.ones((3, 4))  # no longer a view of grads.flat: key-by-key path
    w1 = net.params["W1"].copy()
    fastnn.SGD(0.1).update(net.params, grads)
    np.testing.assert_allclose(net.params["W1"], w1 - 0.1)


def test_copy_is_independent_and_can_change_backend_and_dtype():
    net = fastnn.Sequential(3, [4], 2, backend="numpy", seed=0)
    clone = net.copy(backend="numba", dtype=np.float32)
    assert clone.backend == "numba" and clone.dtype == np.float32
    np.testing.assert_allclose(clone.params["W1"], net.params["W1"], rtol=1e-7)
    clone.params["W1"] += 1
    assert not np.allclose(clone.params["W1"], net.params["W1"])
    assert "Sequential(3, [4], 2" in repr(net)


def test_gradient_returns_new_arrays_each_call(backend):
    """A gradient dict stays valid while held: later calls never reuse its memory."""
    rng = np.random.default_rng(0)
    net = fastnn.Sequential(5, [4], 3, backend=backend, seed=0)
    x1, x2 = rng.standard_normal((2, 6, 5))
    t = np.arange(6) % 3
    g1 = net.gradient(x1, t)
    snapshot = {k: v.copy() for k, v in g1.items()}
    for _ in range(3):
        g2 = net.gradient(x2, t)
    for key in g1:
        np.testing.assert_array_equal(g1[key], snapshot[key])
    assert not np.shares_memory(g1.flat, g2.flat)
    assert not np.array_equal(g2["W1"], snapshot["W1"])


def test_nan_input_gives_the_error_without_runtime_warnings(backend):
    import warnings

    net = fastnn.Sequential(4, [5], 3, backend=backend, seed=0)
    x = np.ones((3, 4))
    x[2, 1] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="sample 2, feature 1"):
            net.gradient(x, np.array([0, 1, 2]))


def test_overflowing_but_finite_input_is_not_reported_as_nan(backend):
    net = fastnn.Sequential(2, [3], 2, 1.0, backend=backend, seed=0)
    with np.errstate(over="ignore", invalid="ignore"):
        scores = net.predict(np.full((1, 2), 1e308))
    assert scores.shape == (1, 2)  # no ValueError: x itself is finite


def test_a_network_pickles_with_its_parameters_and_layout(backend):
    import pickle

    net = fastnn.Sequential(5, [4, 3], 2, "he", activation="sigmoid", loss="mse",
                            backend=backend, dtype=np.float32, seed=0)
    x = np.random.default_rng(0).standard_normal((6, 5))
    clone = pickle.loads(pickle.dumps(net))
    assert repr(clone) == repr(net)
    np.testing.assert_array_equal(clone.params.flat, net.params.flat)
    np.testing.assert_array_equal(clone.predict(x), net.predict(x))
    clone.params["W1"] += 1  # still views of the clone's own flat buffer
    assert clone.params.flat[0] == net.params.flat[0] + 1


def test_an_activation_is_registered_once_and_read_everywhere():
    """tanh, added as two bodies and one registration: Sequential, its init default, the
    layers and the command line's choices all know it."""
    from fastnn.cli import build_parser
    from fastnn.layers import ACTIVATIONS
    from fastnn.recipe import resolve

    net = fastnn.Sequential(4, [5], 3, activation="tanh", seed=0)
    assert isinstance(net.layers["Tanh1"], fastnn.Tanh)
    assert resolve("digits", activation="tanh")["init"] == ACTIVATIONS["tanh"].init == "xavier"
    args = build_parser().parse_args(["train", "--activation", "tanh"])
    assert args.activation == "tanh"
    std = fastnn.Sequential(100, [5], 3, "tanh", seed=0).params["W1"].std()
    assert 0.07 < std < 0.13  # xavier: sqrt(1 / 100)
    with pytest.raises(ValueError, match="activation: .*'tanh'"):
        fastnn.Sequential(4, [5], 3, activation="softsign")

"""Seeds 004 and 002 as drop-ins, and what they need: networks without biases, the sum
of squared errors ("sse"), biases drawn like the weights, the global per-epoch shuffle.

The articles' loops are ``_articles.py`` (plain NumPy, the articles' order of draws and
arithmetic); kernel == reference for the new loss and the bias-free layers.
"""

import json

import numpy as np
import pytest
from _articles import sine_002, sine_data, warmup_004, warmup_004_fastnn
from _helpers import BACKENDS, DTYPES, assert_close, layout, random_problem, tol

import fastnn
from fastnn import kernels, recipe, reference
from fastnn.params import layout_of

# --- the sum of squared errors: kernel == reference -------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, C", [(1, 1), (3, 7), (63, 1), (127, 10)])
@pytest.mark.parametrize("kind", ["C", "F", "strided"])
@pytest.mark.parametrize("scale", [1.0, 1e-30, 1e15])
def test_sum_squared_error(N, C, dtype, kind, scale):
    rng = np.random.default_rng(N * C)
    y, t = (scale * rng.standard_normal((2, N, C))).astype(dtype)
    ref_loss, ref_grad = reference.sum_squared_error(y, t)
    loss, grad = kernels.sum_squared_error(layout(y, kind), layout(t, kind))
    assert np.isfinite(loss) and isinstance(loss, float)
    assert loss == pytest.approx(ref_loss, rel=1e-12 if dtype == np.float64 else 1e-6)
    np.testing.assert_array_equal(grad, ref_grad)  # 2 * (y - t): exact in both
    assert grad.dtype == dtype
    # its relation to the book's mean squared error (half of it, per row)
    mse = reference.squared_error(y, t)[0]
    assert ref_loss == pytest.approx(2 * N * mse, rel=1e-12)


@pytest.mark.parametrize("module", [reference, kernels], ids=BACKENDS)
def test_sum_squared_error_into_a_buffer(module):
    y, t = np.random.default_rng(1).standard_normal((2, 5, 3))
    dy = np.empty((5, 3))
    loss, got = module.sum_squared_error(y, t, dy)
    assert got is dy
    np.testing.assert_array_equal(dy, 2.0 * (y - t))
    assert loss == pytest.approx(np.square(y - t).sum(), rel=1e-14)


# --- affine layers without bias: kernel == reference ------------------------------------


SHAPES = [(1, 1, 1), (3, 13, 7), (7, 1, 13), (127, 13, 3)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, D, H", SHAPES)
@pytest.mark.parametrize("op", ["affine_forward", "affine_relu_forward", "affine_sigmoid_forward"])
@pytest.mark.parametrize("kind", ["C", "F", "strided"])
def test_affine_act_forward_without_bias(op, N, D, H, dtype, kind):
    x, W, _ = random_problem(N, D, H, dtype, seed=N + D + H)
    ref = getattr(reference, op)(x, W, None)
    comp = getattr(kernels, op)(layout(x, kind), layout(W, kind), None)
    assert_close(comp, ref, dtype, reduce_len=D)
    np.testing.assert_allclose(reference.affine_forward(x, W, None), x @ W, rtol=1e-15)


@pytest.mark.parametrize("module", [reference, kernels], ids=BACKENDS)
def test_affine_without_bias_keeps_extremes(module):
    """No bias means no ``+ 0``: -0.0, huge and NaN pre-activations come out as x @ W."""
    x = np.array([[1.0, 0.0], [1e300, 0.0], [np.nan, 0.0]])
    W = np.array([[-0.0, 1e10], [1.0, 1.0]])
    with np.errstate(over="ignore", invalid="ignore"):
        out, bad = module.affine_act_forward_checked(x, W, None, "identity")
        expected = x @ W
    np.testing.assert_array_equal(out, expected)
    assert np.signbit(out[0, 0]) == np.signbit(expected[0, 0])
    assert bad == int(np.count_nonzero(~np.isfinite(expected)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["identity", "relu", "sigmoid"])
@pytest.mark.parametrize("kind", ["C", "strided"])
def test_affine_act_backward_sgd_without_bias(act, dtype, kind):
    N, D, H = 7, 13, 5
    x, W, _ = random_problem(N, D, H, dtype, seed=5)
    out = None if act == "identity" else getattr(reference, f"affine_{act}_forward")(x, W, None)
    dout = np.random.default_rng(6).standard_normal((N, H)).astype(dtype)
    ref_W, ref_dout = W.copy(), dout.copy()
    ref_dx = reference.affine_act_backward_sgd(ref_dout, x, ref_W, None, out, act, 0.05)
    comp_W, comp_dout = W.copy(), layout(dout, kind)
    dx = kernels.affine_act_backward_sgd(comp_dout, layout(x, kind), comp_W, None,
                                         None if out is None else layout(out, kind), act, 0.05)
    assert_close(comp_dout, ref_dout, dtype)
    assert_close(dx, ref_dx, dtype, reduce_len=H)
    assert_close(comp_W, ref_W, dtype, reduce_len=N, scale=np.sqrt(N))


# --- whole networks without bias, every loss: kernel == reference -----------------------


def bias_free_problem(N, sizes, dtype, loss, seed):
    rng = np.random.default_rng(seed)
    params = np.concatenate([rng.standard_normal(i * o) / np.sqrt(i)
                             for i, o in zip(sizes[:-1], sizes[1:])]).astype(dtype)
    x = rng.standard_normal((N, sizes[0])).astype(dtype)
    if loss == "softmax":
        t = rng.integers(0, sizes[-1], N)
    else:
        t = rng.standard_normal((N, sizes[-1])).astype(dtype)
    return x, t, params


NETWORKS = [(1, [3, 1, 2]), (7, [5, 13, 3]), (13, [4, 7, 5, 9, 3])]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, sizes", NETWORKS)
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("loss", ["softmax", "mse", "sse"])
def test_network_without_bias_matches_reference(N, sizes, activation, loss, dtype):
    """forward, evaluate, gradient and the fused SGD step of a bias-free network."""
    x, t, params = bias_free_problem(N, sizes, dtype, loss, seed=N)
    lay = layout_of(sizes, bias=False)
    assert (lay[:, 3] == -1).all() and params.size == sum(
        i * o for i, o in zip(sizes[:-1], sizes[1:]))
    out = {}
    for module in (reference, kernels):
        acts = np.empty(N * sum(sizes[1:]), dtype)
        dacts = np.empty_like(acts)
        assert module.forward(x, params, lay, acts, activation) == 0
        scores = acts[N * sum(sizes[1:-1]):].copy()
        value, correct, bad, at = module.evaluate(x, t, params, lay, acts, dacts, activation,
                                                  loss)
        grads = np.full_like(params, np.nan)
        g_value, g_bad, g_at = module.gradient(x, t, params, lay, acts, dacts, grads,
                                               activation, loss)
        assert (bad, at, g_bad, g_at) == (0, -1, 0, -1) and g_value == value
        stepped = params.copy()
        s_value, s_bad, s_at = module.sgd_step(x, t, stepped, lay, acts, dacts, activation,
                                               loss, 0.01)
        assert (s_bad, s_at) == (0, -1) and s_value == value
        out[module] = scores, value, grads, stepped
    ref, comp = out[reference], out[kernels]
    assert_close(comp[0], ref[0], dtype, reduce_len=max(sizes), scale=3)
    rel = 1e-12 if dtype == np.float64 else 1e-5
    assert comp[1] == pytest.approx(ref[1], rel=rel, abs=tol(dtype)["atol"])
    assert not np.isnan(comp[2]).any()
    assert_close(comp[2], ref[2], dtype, reduce_len=N * max(sizes), scale=3)
    assert_close(comp[3], ref[3], dtype, reduce_len=N * max(sizes), scale=3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_train_batches_without_bias_sse(dtype):
    """The compiled loop on a bias-free sse network == the reference's, batch by batch."""
    sizes, n = [6, 9, 4], 23
    x, t, params = bias_free_problem(n, sizes, dtype, "sse", seed=3)
    order = np.random.default_rng(4).permutation(np.tile(np.arange(n), 2)).astype(np.int64)
    starts = np.array([0, 5, 10, 15, 20, 23, 28, 33, 38, 43, 46], np.int64)
    lay = layout_of(sizes, bias=False)
    got, ref = params.copy(), params.copy()
    losses, ref_losses = np.empty(10), np.empty(10)
    assert kernels.train_batches(x, t, order, starts, got, lay, "relu", "sse", 0.01,
                                 losses) == -1
    assert reference.train_batches(x, t, order, starts, ref, lay, "relu", "sse", 0.01,
                                   ref_losses) == -1
    assert_close(got, ref, dtype, reduce_len=n * 9, scale=3)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-11 if dtype == np.float64 else 1e-4)


# --- Sequential(bias=False, loss="sse") -------------------------------------------------


def test_bias_false_has_only_weights(backend):
    net = fastnn.Sequential(5, [4, 3], 2, bias=False, backend=backend, seed=0)
    assert list(net.params) == ["W1", "W2", "W3"]
    assert net.n_params == 5 * 4 + 4 * 3 + 3 * 2
    assert list(net.gradient(np.ones((2, 5)), np.array([0, 1]))) == ["W1", "W2", "W3"]
    assert "bias=False" in repr(net)
    assert net.layers["Affine1"].b is None
    x = np.random.default_rng(0).standard_normal((3, 5))
    h = x
    for i in (1, 2):  # the network computes max(x @ W, 0) ... @ W3
        h = np.maximum(h @ net.params[f"W{i}"], 0)
    np.testing.assert_allclose(net.predict(x), h @ net.params["W3"], rtol=1e-14)


def test_book_layers_without_bias_chain_by_hand(backend):
    """net.layers (the book's loop over layers) works without biases, db stays None."""
    net = fastnn.Sequential(4, [3], 2, bias=False, loss="sse", backend=backend, seed=1)
    x = np.random.default_rng(2).standard_normal((5, 4))
    t = np.random.default_rng(3).standard_normal((5, 2))
    out = x
    for layer in net.layers.values():
        out = layer.forward(out)
    loss = net.lastLayer.forward(out, t)
    assert loss == pytest.approx(net.loss(x, t), rel=1e-12)
    dout = net.lastLayer.backward()
    for layer in reversed(net.layers.values()):
        dout = layer.backward(dout)
    grads = net.gradient(x, t)
    for i in (1, 2):
        np.testing.assert_allclose(net.layers[f"Affine{i}"].dW, grads[f"W{i}"], rtol=1e-12)
        assert net.layers[f"Affine{i}"].db is None


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop",
                                       "adam"])
def test_bias_false_every_optimizer_weight_decay_backends_agree(optimizer):
    """Every optimizer, with weight decay and the sse loss, on a bias-free network: the
    numba backend follows the numpy backend; the gradients pass a numerical check."""
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((9, 6)), rng.standard_normal((9, 2))
    nets = [fastnn.Sequential(6, [5, 4], 2, "he", bias=False, loss="sse",
                              weight_decay_lambda=0.01, backend=b, seed=3) for b in BACKENDS]
    opts = [fastnn.optim.optimizer_named(optimizer) for _ in nets]
    for _ in range(20):
        for net, opt in zip(nets, opts):
            net.train_step(x, t, opt)
    assert list(nets[0].params) == ["W1", "W2", "W3"]
    np.testing.assert_allclose(nets[1].params.flat, nets[0].params.flat, rtol=1e-9, atol=1e-12)
    num = nets[0].numerical_gradient(x[:3], t[:3])
    for net in nets:
        grads = net.gradient(x[:3], t[:3])
        for key in grads:
            np.testing.assert_allclose(grads[key], num[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("use_dropout", [False, True])
def test_bias_false_with_batchnorm_and_dropout(use_dropout):
    """The book's Extend network without biases: BatchNorm's beta shifts each hidden layer
    (a bias before it has zero gradient anyway); both backends agree step for step."""
    rng = np.random.default_rng(1)
    x, t = rng.standard_normal((16, 6)), rng.integers(0, 3, 16)
    nets = [fastnn.MultiLayerNetExtend(6, [5, 4], 3, use_batchnorm=True, bias=False,
                                       use_dropout=use_dropout, dropout_ration=0.2,
                                       weight_decay_lambda=0.001, backend=b, seed=5)
            for b in BACKENDS]
    assert list(nets[0].params) == ["W1", "W2", "W3", "gamma1", "beta1", "gamma2", "beta2"]
    for net in nets:
        with net.engine.fixed_masks():
            for _ in range(10):
                net.train_step(x, t, fastnn.SGD(0.1))
    np.testing.assert_allclose(nets[1].params.flat, nets[0].params.flat, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(nets[1].state, nets[0].state, rtol=1e-9, atol=1e-12)
    # with biases, the bias before BatchNorm gets no gradient: nothing is lost without it
    with_bias = fastnn.MultiLayerNetExtend(6, [5, 4], 3, use_batchnorm=True, seed=5)
    grads = with_bias.gradient(x, t)
    assert np.abs(grads["b1"]).max() < 1e-12 and np.abs(grads["b3"]).max() > 1e-3


def test_bias_false_fit_compiled_and_step_paths_agree():
    rng = np.random.default_rng(2)
    x, t = rng.standard_normal((40, 5)), rng.standard_normal((40, 3))
    results = []
    for backend, compiled in (("numba", True), ("numba", False), ("numpy", None)):
        net = fastnn.Sequential(5, [7], 3, 0.3, bias=False, loss="sse", backend=backend,
                                seed=0)
        h = fastnn.fit(net, x, t, batch_size=8, epochs=3, seed=1, progress=False,
                       compiled=compiled, optimizer=fastnn.SGD(0.001))
        results.append((net.params.flat.copy(), h.loss))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_allclose(results[0][0], results[2][0], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(results[0][1], results[2][1], rtol=1e-10)


@pytest.mark.parametrize("cls", ["Sequential", "MultiLayerNetExtend"])
def test_bias_false_save_load_round_trip(tmp_path, backend, cls):
    if cls == "Sequential":
        net = fastnn.Sequential(4, [3], 2, bias=False, loss="sse", backend=backend, seed=0)
    else:
        net = fastnn.MultiLayerNetExtend(4, [3], 2, use_batchnorm=True, bias=False,
                                         backend=backend, seed=0)
        net.train_step(np.ones((3, 4)), np.array([0, 1, 1]), fastnn.SGD(0.1))
    path = tmp_path / "m.npz"
    net.save(path)
    back = fastnn.load(path, backend=backend)
    assert type(back) is type(net) and not back.bias and back.loss_name == net.loss_name
    assert list(back.params) == list(net.params)
    np.testing.assert_array_equal(back.params.flat, net.params.flat)
    np.testing.assert_array_equal(back.state, net.state)
    x = np.random.default_rng(0).standard_normal((3, 4))
    np.testing.assert_array_equal(back.predict(x), net.predict(x))
    biased = fastnn.Sequential(4, [3], 2, seed=0)  # a file with biases stays as it was
    biased.save(tmp_path / "b.npz")
    assert "b1" in fastnn.load(tmp_path / "b.npz").params


def test_load_refuses_biases_that_do_not_fit(tmp_path):
    """A file that says bias False but holds biases (or the reverse) is refused."""
    from fastnn import serialize

    net = fastnn.Sequential(4, [3], 2, seed=0)
    path = tmp_path / "m.npz"
    net.save(path)
    meta, arrays = serialize.read_model(path)
    meta["bias"] = False
    serialize.write_model(tmp_path / "bad.npz", meta, arrays)
    with pytest.raises(ValueError, match=r"do not match the architecture"):
        fastnn.load(tmp_path / "bad.npz")
    meta["bias"] = "no"
    serialize.write_model(tmp_path / "bad2.npz", meta, arrays)
    with pytest.raises(ValueError, match=r"invalid \(bias 'no'\)"):
        fastnn.load(tmp_path / "bad2.npz")


def test_bad_loss_and_bias_options():
    with pytest.raises(ValueError, match=r"loss: expected one of 'softmax', 'mse', 'sse', "
                                         r"got 'sum'"):
        fastnn.Sequential(3, [2], 1, loss="sum")
    with pytest.raises(TypeError, match="bias: expected True or False"):
        fastnn.Sequential(3, [2], 1, bias="no")
    with pytest.raises(ValueError, match=r"bias_init_std: the network has no biases"):
        fastnn.Sequential(3, [2], 1, bias=False, bias_init_std=0.01)
    with pytest.raises(ValueError, match="bias_init_std"):
        fastnn.Sequential(3, [2], 1, bias_init_std=-1.0)


def test_bias_init_std_draws_each_layers_biases_after_its_weights(backend):
    np.random.seed(7)
    net = fastnn.Sequential(2, [3], 4, 0.5, bias_init_std=0.01, backend=backend)
    np.random.seed(7)
    expected = [0.5 * np.random.randn(2, 3), 0.01 * np.random.randn(3),
                0.5 * np.random.randn(3, 4), 0.01 * np.random.randn(4)]
    for key, value in zip(["W1", "b1", "W2", "b2"], expected):
        np.testing.assert_array_equal(net.params[key], value)
    seeded = fastnn.Sequential(2, [3], 4, 0.5, bias_init_std=0.01, seed=1)
    assert np.all(seeded.params["b1"] != 0)  # the private generator draws them too


def test_regression_losses_take_real_targets():
    net = fastnn.Sequential(3, [2], 2, loss="sse", seed=0)
    with pytest.raises(ValueError, match=r"t: expected regression targets of shape \(4, 2\)"):
        net.loss(np.ones((4, 3)), np.ones((4, 3)))
    x = np.random.default_rng(0).standard_normal((4, 3))
    labels = np.array([0, 1, 0, 1])
    expected = np.mean(np.argmax(net.predict(x), axis=1) == labels)
    assert net.accuracy(x, labels) == expected  # (the highest output is the class)


# --- seed 004: PyTorch's NumPy warm-up, the user's own loop --------------------------------


@pytest.fixture(scope="module")
def warmup():
    return warmup_004(seed=0)


@pytest.mark.parametrize("backend, fused", [
    pytest.param("numba", False, marks=pytest.mark.large),
    pytest.param("numba", True, marks=pytest.mark.large), ("numpy", False)])
def test_seed_004_drop_in(warmup, backend, fused):
    """The warm-up written against fastnn (``_articles.warmup_004_fastnn``: the user's
    own update, or ``train_step`` with SGD): every step's loss within 1e-9 (relative)
    and the final weights within 1e-12 of the article's loop.

    numba: all 500 steps, to the tiny late losses (its GEMMs are another BLAS's, the
    loss sums row after row). numpy: the first 150 (the same NumPy calls as the
    article's; a prefix of the article's run is a shorter run's), to keep the suite fast.
    """
    x_ref, _, losses_ref, w1_ref, w2_ref = warmup
    steps = 500 if backend == "numba" else 150
    x, _, losses, net = warmup_004_fastnn(seed=0, steps=steps, backend=backend, fused=fused)
    assert np.array_equal(x, x_ref) and list(net.params) == ["W1", "W2"]
    np.testing.assert_allclose(losses, losses_ref[:steps], rtol=1e-9, atol=0)
    if steps < 500:
        return
    assert losses_ref[-1] < 1e-9 * losses_ref[0]  # it learned (the article's run: 1e-14)
    np.testing.assert_allclose(net.params["W1"], w1_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(net.params["W2"], w2_ref, rtol=0, atol=1e-12)


# --- seed 002: the sine article, through the recipe -------------------------------------


@pytest.fixture(scope="module")
def sine_run():
    return sine_002(seed=0)  # the article's own loop, 2,001 epochs (a few seconds)


def check_sine(errors, final, ref_errors, ref_final):
    assert sorted(errors) == sorted(ref_errors)
    for epoch, value in ref_errors.items():
        assert errors[epoch] == pytest.approx(value, rel=1e-9), epoch
    for got, expected in zip(final, ref_final):
        np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=0, atol=1e-9)


def test_seed_002_recipe_numba(sine_run):
    net, errors = recipe.sine_article(seed=0)
    final = [net.params[k] for k in ("W1", "b1", "W2", "b2")]
    check_sine(errors, final, *sine_run)
    assert errors[2000] < 1e-4


def test_seed_002_options_numpy_backend(sine_run):
    """The same run spelled with the options (the recipe is these lines), on the numpy
    backend: the first 201 epochs (the article's loop is sequential: its first errors
    are those of a shorter run)."""
    np.random.seed(0)
    x, t = sine_data()
    net = fastnn.Sequential(1, [3], 1, 0.01, bias_init_std=0.01, activation="sigmoid",
                            loss="mse", backend="numpy")
    history = fastnn.fit(net, x, t, batch_size=1, epochs=201, eval_every=63,
                         shuffle="global", optimizer=fastnn.SGD(0.1), progress=False)
    errors = {e: history.loss[e] for e in (0, 200)}
    ref_errors, _ = sine_run
    for epoch in (0, 200):
        assert errors[epoch] == pytest.approx(ref_errors[epoch], rel=1e-9)
    ref_short, ref_final = sine_002(seed=0, epochs=1)  # one epoch: the parameters too
    net1, errors1 = recipe.sine_article(seed=0, epochs=1, backend="numpy")
    assert errors1[0] == pytest.approx(ref_short[0], rel=1e-12)
    for key, expected in zip(("W1", "b1", "W2", "b2"), ref_final):
        np.testing.assert_allclose(net1.params[key].reshape(expected.shape), expected,
                                   rtol=1e-12)


def test_global_shuffle_is_the_scripts_shuffle():
    """shuffle='global': epoch k's order is the k-th ``np.random.shuffle(np.arange(n))``
    after the caller's seed, and the global state ends where the script's would."""
    from fastnn.train import BatchSchedule

    np.random.seed(3)
    schedule = BatchSchedule(5, 2, shuffle="global", sampling="epoch",
                             rng=np.random.default_rng(0))
    order, starts = schedule.take(6)  # two epochs of 3 batches
    after = np.random.rand()
    np.random.seed(3)
    expected = []
    for _ in range(2):
        idx = np.arange(5)
        np.random.shuffle(idx)
        expected.extend(idx.tolist())
    assert order.tolist() == expected and starts.tolist() == [0, 2, 4, 5, 7, 9, 10]
    assert np.random.rand() == after


def test_global_shuffle_bad_options():
    net = fastnn.Sequential(1, [2], 1, loss="mse", seed=0)
    x, t = sine_data()
    with pytest.raises(ValueError, match=r"seed: shuffle='global' draws from NumPy's global"):
        fastnn.fit(net, x, t, shuffle="global", seed=1, progress=False)
    with pytest.raises(ValueError, match=r"shuffle: 'global' shuffles each epoch"):
        fastnn.fit(net, x, t, shuffle="global", sampling="replacement", progress=False)
    with pytest.raises(TypeError, match=r"shuffle: expected True, False or 'global'"):
        fastnn.fit(net, x, t, shuffle="yes", progress=False)


# --- the command line --------------------------------------------------------------------


def test_cli_loss_and_no_bias_train_save_evaluate(tmp_path):
    from test_cli import run

    result = run("train", "--dataset", "sine", "--loss", "sse", "--no-bias", "--epochs", "30",
                 "--json", "--save", "m.npz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["loss_function"] == "sse" and summary["bias"] is False
    assert isinstance(summary["loss"], float)  # the last batch loss, not the loss's name
    net = fastnn.load(tmp_path / "m.npz")
    assert net.loss_name == "sse" and list(net.params) == ["W1", "W2"]
    x, t = sine_data()
    assert summary["train_loss"] == pytest.approx(net.loss(x, t), rel=1e-12)
    again = run("evaluate", "m.npz", "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["test_loss"] == pytest.approx(summary["train_loss"])
    wrong = run("train", "--loss", "sse", "--epochs", "1", cwd=tmp_path)
    assert wrong.returncode == 2
    assert "--loss: digits has class labels; expected softmax" in wrong.stderr
    unknown = run("train", "--loss", "sum", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "invalid choice: 'sum' (choose from 'softmax', 'mse', 'sse')" in unknown.stderr
    assert not (tmp_path / "curves.png").exists()


@pytest.mark.parametrize("module", [reference, kernels], ids=BACKENDS)
def test_whole_network_functions_name_an_unknown_loss(module):
    sizes = [3, 2, 2]
    x, t, params = bias_free_problem(4, sizes, np.float64, "mse", seed=0)
    acts = np.empty(4 * 4)
    before = params.copy()
    with pytest.raises(ValueError, match=r"loss: expected one of 'softmax', 'mse', 'sse', "
                                         r"got 'l1'"):
        module.sgd_step(x, t, params, layout_of(sizes, bias=False), acts, acts.copy(),
                        "relu", "l1", 0.1)
    np.testing.assert_array_equal(params, before)


def test_bias_free_network_extremes(backend):
    """Without biases the first layer still counts non-finite pre-activations: NaN/Inf
    in x raise before any change; an overflowing step changes nothing."""
    net = fastnn.Sequential(3, [4], 2, 1.0, bias=False, loss="sse", backend=backend, seed=0)
    before = net.params.flat.copy()
    x = np.ones((2, 3))
    x[1, 2] = np.inf
    with pytest.raises(ValueError, match=r"x: contains NaN or infinity"):
        net.train_step(x, np.zeros((2, 2)), fastnn.SGD(0.1))
    np.testing.assert_array_equal(net.params.flat, before)
    huge = np.full((2, 3), 1e200)
    loss = net.train_step(huge, np.zeros((2, 2)), fastnn.SGD(0.1))  # (x @ W)**2 overflows
    assert not np.isfinite(loss)
    np.testing.assert_array_equal(net.params.flat, before)
    tiny = np.full((2, 3), 1e-200)
    assert net.loss(tiny, np.zeros((2, 2))) == pytest.approx(0.0, abs=1e-300)

"""SimpleConvNet and DeepConvNet (fastnn.convnet), the Convolution and Pooling layers,
im2col/col2im, save_params/load_params and the .npz model file.

Tiny networks (1x10x10 and 1x8x8 images, a few filters) on both backends: the book's
shapes and draws, numba = numpy, backprop = central differences, the book's numbers from
``np.random.seed`` (the book-style baseline ``benchmarks/book_conv.py``), pickles the
book writes in both NumPy layouts, hostile pickles, and bad input (one error naming the
argument, nothing changed).
"""

import io
import os
import pickle
import stat
import types

import book
import book_conv
import numpy as np
import pytest
from _helpers import busy_process
from numba.core import config as numba_config

import fastnn

SIMPLE_ARGS = dict(input_dim=(1, 10, 10), hidden_size=6, output_size=4,
                   conv_param={"filter_num": 3, "filter_size": 3, "pad": 1, "stride": 1})
DEEP_CONV = [{"filter_num": 2, "filter_size": 3, "pad": 2 if i == 4 else 1, "stride": 1}
             for i in range(1, 7)]
DEEP_ARGS = dict(input_dim=(1, 8, 8), hidden_size=6, output_size=3,
                 **{f"conv_param_{i}": cp for i, cp in enumerate(DEEP_CONV, start=1)})


def simple(backend="numpy", dtype=np.float64, **kw):
    return fastnn.SimpleConvNet(**{**SIMPLE_ARGS, **kw}, backend=backend, dtype=dtype)


def deep(backend="numpy", dtype=np.float64, **kw):
    return fastnn.DeepConvNet(**{**DEEP_ARGS, **kw}, backend=backend, dtype=dtype)


NETS = {"simple": (simple, (1, 10, 10), 4), "deep": (deep, (1, 8, 8), 3)}


def batch(kind, N=5, seed=0):
    _, shape, C = NETS[kind]
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, *shape)), rng.integers(0, C, N)


def relative(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


# --- the book's architecture and draws -------------------------------------------------


def test_default_networks_have_the_books_params_and_layers():
    net = fastnn.SimpleConvNet(backend="numpy", seed=0)
    assert [(k, v.shape) for k, v in net.params.items()] == [
        ("W1", (30, 1, 5, 5)), ("b1", (30,)), ("W2", (4320, 100)), ("b2", (100,)),
        ("W3", (100, 10)), ("b3", (10,))]
    assert list(net.layers) == ["Conv1", "Relu1", "Pool1", "Affine1", "Relu2", "Affine2"]
    assert isinstance(net.last_layer, fastnn.SoftmaxWithLoss)
    assert net.layers["Conv1"].W is not None and net.layers["Conv1"].stride == 1
    deep_net = fastnn.DeepConvNet(backend="numpy", seed=0)
    shapes = [v.shape for k, v in deep_net.params.items() if k.startswith("W")]
    assert shapes == [(16, 1, 3, 3), (16, 16, 3, 3), (32, 16, 3, 3), (32, 32, 3, 3),
                      (64, 32, 3, 3), (64, 64, 3, 3), (1024, 50), (50, 10)]
    assert list(deep_net.params)[:4] == ["W1", "b1", "W2", "b2"]
    kinds = [type(layer).__name__ for layer in deep_net.layers]  # a list, as the book's
    assert kinds == ["Convolution", "Relu", "Convolution", "Relu", "Pooling"] * 3 + [
        "Affine", "Relu", "Dropout", "Affine", "Dropout"]
    assert [deep_net.layers[i].pad for i in (0, 2, 5, 7, 10, 12)] == [1, 1, 1, 2, 1, 1]
    assert all(layer.dropout_ratio == 0.5 for layer in deep_net.layers
               if isinstance(layer, fastnn.Dropout))


def test_seed_none_draws_the_books_weights_in_the_books_order():
    # the book's pre_node_nums, written out: He's std sqrt(2 / fan-in) per weight
    pre_node_nums = np.array([1 * 3 * 3, 16 * 3 * 3, 16 * 3 * 3, 32 * 3 * 3, 32 * 3 * 3,
                              64 * 3 * 3, 64 * 4 * 4, 50])
    np.random.seed(3)
    net = fastnn.DeepConvNet(backend="numpy")
    np.random.seed(3)
    for i, scale in enumerate(np.sqrt(2.0 / pre_node_nums), start=1):
        W = net.params[f"W{i}"]
        np.testing.assert_array_equal(W, scale * np.random.randn(*W.shape))
        assert not net.params[f"b{i}"].any()
    np.random.seed(4)
    net = simple(weight_init_std=0.05)
    np.random.seed(4)
    ref = book_conv.SimpleConvNet(**SIMPLE_ARGS, weight_init_std=0.05)
    for key, value in ref.params.items():
        np.testing.assert_array_equal(net.params[key], value)


def test_an_int_seed_leaves_the_global_state_alone():
    np.random.seed(5)
    before = np.random.get_state()[1].copy()
    a, b = deep(seed=7), deep(seed=7)
    np.testing.assert_array_equal(a.params.flat, b.params.flat)
    x, t = batch("deep")
    a.gradient(x, t)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


@pytest.mark.parametrize("kind", ["simple", "deep"])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_fifty_adam_iterations_give_the_books_numbers(kind, backend):
    """A book training loop (random batches, gradient, Adam, the batch's loss), the same
    code on the book's classes and on fastnn's: parameters agree to 1e-9, losses within
    the book's 1e-7 inside its log (its loss is -log(p + 1e-7), its gradient p - t)."""
    rng = np.random.default_rng(11)
    shape = NETS[kind][1]
    x, t = rng.standard_normal((40, *shape)), rng.integers(0, NETS[kind][2], 40)

    def train(network, optimizer):
        losses = []
        for _ in range(50):
            idx = np.random.choice(40, 8)
            grads = network.gradient(x[idx], t[idx])
            optimizer.update(network.params, grads)
            losses.append(network.loss(x[idx], t[idx]))
        return losses

    args = SIMPLE_ARGS if kind == "simple" else dict(
        input_dim=(1, 8, 8), conv_params=DEEP_CONV, hidden_size=6, output_size=3)
    np.random.seed(0)
    ref = (book_conv.SimpleConvNet if kind == "simple" else book_conv.DeepConvNet)(**args)
    ref_losses = train(ref, book.Adam(lr=0.01))
    np.random.seed(0)
    net = NETS[kind][0](backend)
    losses = train(net, fastnn.Adam(lr=0.01))
    np.testing.assert_allclose(losses, ref_losses, rtol=2e-6)
    for key, value in ref.params.items():
        assert relative(net.params[key], value) < 1e-9, key


def test_trainer_runs_the_books_train_convnet_loop():
    """``Trainer`` on a SimpleConvNet: the book's Trainer loop's losses and accuracies."""
    rng = np.random.default_rng(12)
    x, t = rng.standard_normal((100, 1, 10, 10)), rng.integers(0, 4, 100)
    xt, tt = rng.standard_normal((100, 1, 10, 10)), rng.integers(0, 4, 100)
    np.random.seed(1)
    ref = book_conv.SimpleConvNet(**SIMPLE_ARGS)
    losses, train_acc, test_acc = book.train(ref, book.Adam(lr=0.01), x, t, xt, tt, 2, 25)
    np.random.seed(1)
    net = simple()
    trainer = fastnn.Trainer(net, x, t, xt, tt, epochs=2, mini_batch_size=25,
                             optimizer="Adam", optimizer_param={"lr": 0.01}, verbose=False)
    trainer.train()
    np.testing.assert_allclose(trainer.train_loss_list, losses, rtol=2e-6)
    assert trainer.train_acc_list == train_acc and trainer.test_acc_list == test_acc
    assert relative(net.params.flat, np.concatenate(
        [v.ravel() for v in ref.params.values()])) < 1e-9


# --- backends and gradients --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["simple", "deep"])
def test_numba_and_numpy_backends_agree(kind, dtype):
    make = NETS[kind][0]
    ref, net = make("numpy", dtype, seed=2), make("numba", dtype, seed=2)
    x, t = batch(kind, 6)
    rtol = 1e-10 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(net.predict(x), ref.predict(x), rtol=rtol, atol=rtol)
    assert net.predict(x).dtype == dtype
    with ref.engine.fixed_masks() as draws:
        ref_grads = ref.gradient(x, t)
    with net.engine.fixed_masks(draws):  # the same Dropout masks on both
        grads = net.gradient(x, t)
    for key, value in ref_grads.items():
        assert grads[key].dtype == dtype
        np.testing.assert_allclose(grads[key], value, rtol=rtol, atol=rtol * 10, err_msg=key)
    assert net.accuracy(x, t, batch_size=4) == ref.accuracy(x, t, batch_size=4)
    one_hot = np.eye(NETS[kind][2])[t]
    assert net.accuracy(x, one_hot) == net.accuracy(x, t)
    assert net.loss(x, one_hot, train_flg=False) == pytest.approx(
        net.loss(x, t, train_flg=False), rel=1e-6)


@pytest.mark.parametrize("kind", ["simple", "deep"])
def test_backprop_matches_central_differences(kind, backend):
    make = NETS[kind][0]
    net = make(backend, seed=3) if kind == "deep" else make(backend, seed=3,
                                                              weight_init_std="he")
    rng = np.random.default_rng(4)
    for key in net.params:  # biases off zero: no unit sits on ReLU's kink
        if key.startswith("b"):
            net.params[key][...] = 0.1 * rng.standard_normal(net.params[key].shape)
    x, t = batch(kind, 3)
    # the differences on the NumPy backend (thousands of tiny passes), the same masks
    ref = net.copy(backend="numpy")
    with net.engine.fixed_masks() as draws:
        grads = net.gradient(x, t)
    with ref.engine.fixed_masks(draws):
        numerical = ref.numerical_gradient(x, t, h=1e-6)  # (small: max pooling has kinks)
    for key in net.params:
        np.testing.assert_allclose(grads[key], numerical[key], rtol=1e-4, atol=1e-8,
                                   err_msg=key)


@pytest.mark.parametrize("kind", ["simple", "deep"])
def test_gradient_check_takes_convnets(kind, backend):
    net = NETS[kind][0](backend, np.float32, seed=4)
    x, t = batch(kind, 2)
    errors = fastnn.gradient_check(net, x, t, h=1e-6)
    assert list(errors) == list(net.params)
    assert max(errors.values()) < 1e-4  # float32 backprop against float64 differences


def test_train_step_is_gradient_then_update():
    a, b = simple(seed=5), simple(seed=5)
    x, t = batch("simple", 4)
    opt_a, opt_b = fastnn.Adam(lr=0.01), fastnn.Adam(lr=0.01)
    for _ in range(3):
        loss = a.train_step(x, t, opt_a)
        expected = b.loss(x, t)
        opt_b.update(b.params, b.gradient(x, t))
        assert loss == pytest.approx(expected, rel=1e-12)
    np.testing.assert_array_equal(a.params.flat, b.params.flat)
    a2, opt_a2 = pickle.loads(pickle.dumps((a, opt_a)))  # (a Dask worker's copy)
    a2.train_step(x, t, opt_a2)
    a.train_step(x, t, opt_a)
    np.testing.assert_array_equal(a2.params.flat, a.params.flat)
    assert list(opt_a.state["m"]) == list(a.params)
    other = simple(seed=6)
    with pytest.raises(ValueError, match="params"):
        other.train_step(x, t, opt_a)  # another network's Adam state


def test_layers_are_views_of_params_and_see_assignments():
    net = simple(seed=1)
    net.params["W1"] = np.ones((3, 1, 3, 3))
    assert net.layers["Conv1"].W is not None
    np.testing.assert_array_equal(net.layers["Conv1"].W, 1.0)
    net.params["W2"] *= 0
    assert not net.layers["Affine1"].W.any()


# --- layers and im2col --------------------------------------------------------------------


def test_im2col_col2im_are_the_books(dtype):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 5, 7)).astype(dtype)
    col = fastnn.im2col(x, 3, 2, stride=2, pad=1)
    assert col.dtype == dtype
    np.testing.assert_allclose(col, book_conv.im2col(x, 3, 2, 2, 1), rtol=1e-6)
    img = fastnn.col2im(col, x.shape, 3, 2, stride=2, pad=1)
    np.testing.assert_allclose(img, book_conv.col2im(col, x.shape, 3, 2, 2, 1), rtol=1e-6)
    from fastnn.common.util import col2im, im2col

    assert im2col is fastnn.im2col and col2im is fastnn.col2im


def test_convolution_and_pooling_layers_are_the_books(backend):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 6, 5))
    W, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    conv = fastnn.Convolution(W, b, stride=1, pad=1, backend=backend)
    ref = book_conv.Convolution(W, b, 1, 1)
    x_before = x.copy()
    out = conv.forward(x)
    np.testing.assert_allclose(out, ref.forward(x), rtol=1e-12)
    dout = rng.standard_normal(out.shape)
    dout_before = dout.copy()
    np.testing.assert_allclose(conv.backward(dout), ref.backward(dout.copy()), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(conv.dW, ref.dW, rtol=1e-12)
    np.testing.assert_allclose(conv.db, ref.db, rtol=1e-12)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(dout, dout_before)
    mixed = fastnn.Convolution(W.astype(np.float32), b, pad=1, backend=backend)  # b: f8
    assert mixed.forward(x).dtype == np.float32 and mixed.backward(dout).dtype == np.float32
    zero_bias = fastnn.Convolution(W, 0, backend=backend)  # the book's apply_filter.py
    np.testing.assert_allclose(zero_bias.forward(x), book_conv.Convolution(W, 0).forward(x),
                               rtol=1e-12)
    pool = fastnn.Pooling(2, 2, stride=2, backend=backend)
    ref_pool = book_conv.Pooling(2, 2, 2)
    out = pool.forward(x)
    np.testing.assert_array_equal(out, ref_pool.forward(x))
    dout = rng.standard_normal(out.shape)
    np.testing.assert_array_equal(pool.backward(dout), ref_pool.backward(dout))


# --- the book's pickles ---------------------------------------------------------------------


class NumPy1Pickler(pickle._Pickler):
    """Pickles arrays as NumPy 1.x did: its reconstructors under ``numpy.core`` (NumPy 2
    writes ``numpy._core``)."""

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[types.FunctionType] = lambda self, obj: self.save_global(obj)

    def save_global(self, obj, name=None):
        module = getattr(obj, "__module__", "") or ""
        if not module.startswith("numpy._core"):
            return super().save_global(obj, name)
        module, name = module.replace("numpy._core", "numpy.core"), name or obj.__qualname__
        if self.proto >= 4:
            self.save(module)
            self.save(name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        self.memoize(obj)


def write_pickle(path, obj, protocol, numpy1=False):
    f = io.BytesIO()
    (NumPy1Pickler if numpy1 else pickle.Pickler)(f, protocol=protocol).dump(obj)
    path.write_bytes(f.getvalue())
    return path


def test_save_params_writes_the_books_plain_pickle(tmp_path):
    net = simple(seed=8)
    path = tmp_path / "params.pkl"
    net.save_params(str(path))
    with open(path, "rb") as f:
        loaded = pickle.load(f)  # what the book's load_params does
    assert type(loaded) is dict and list(loaded) == list(net.params)
    for key, value in loaded.items():
        assert type(value) is np.ndarray
        np.testing.assert_array_equal(value, net.params[key])
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    other = simple(seed=9)
    other.load_params(str(path))
    np.testing.assert_array_equal(other.params.flat, net.params.flat)
    x, _ = batch("simple")
    np.testing.assert_array_equal(other.predict(x), net.predict(x))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("numpy1", [True, False], ids=["numpy1", "numpy2"])
def test_load_params_reads_both_numpy_layouts(tmp_path, protocol, numpy1):
    np.random.seed(10)
    ref = book_conv.DeepConvNet(input_dim=(1, 8, 8), conv_params=DEEP_CONV, hidden_size=6,
                                output_size=3)
    path = write_pickle(tmp_path / "deep.pkl", dict(ref.params), protocol, numpy1)
    net = deep(seed=0)
    net.load_params(str(path))
    for key, value in ref.params.items():
        np.testing.assert_array_equal(net.params[key], value)
    x, _ = batch("deep")
    np.testing.assert_allclose(net.predict(x), ref.predict(x), rtol=1e-12)


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class Evals:
    def __reduce__(self):
        return eval, ("__import__('os').getpid()",)


def hostile(tmp_path, marker):
    W1 = np.zeros((3, 1, 3, 3))
    return {
        "os.system in a value": {"W1": RunsCode(marker)},
        "os.system at the top": RunsCode(marker),
        "eval": {"W1": Evals()},
        "a list": [W1],
        "an int key": {1: W1},
        "a str value": {"W1": "W1"},
        "an object array": {"W1": np.array([1.0, "x"], dtype=object)},
        "a numpy scalar": {"W1": np.float64(1.0)},
        "an int array": {"W1": np.zeros(3, np.int64)},
    }


def test_load_params_runs_no_code_and_changes_nothing(tmp_path):
    marker = tmp_path / "ran"
    net = simple(seed=11)
    before = net.params.flat.copy()
    for what, obj in hostile(tmp_path, marker).items():
        path = write_pickle(tmp_path / "evil.pkl", obj, 4)
        with pytest.raises(ValueError, match=r"evil\.pkl: not a parameter file"):
            net.load_params(str(path))
        assert not marker.exists(), what
        np.testing.assert_array_equal(net.params.flat, before, err_msg=what)
    for data in (b"", b"\x80\x04garbage", pickle.dumps({"W1": np.zeros(3)})[:-5]):
        (tmp_path / "bad.pkl").write_bytes(data)
        with pytest.raises(ValueError, match=r"bad\.pkl: not a parameter file"):
            net.load_params(str(tmp_path / "bad.pkl"))
    with pytest.raises(FileNotFoundError, match="missing.pkl"):
        net.load_params(str(tmp_path / "missing.pkl"))
    np.testing.assert_array_equal(net.params.flat, before)


def test_load_params_checks_keys_shapes_and_values(tmp_path):
    net = simple(seed=12)
    before = net.params.flat.copy()
    good = {k: np.array(v) for k, v in net.params.items()}
    cases = {
        "a key missing": ({k: v for k, v in good.items() if k != "b3"}, "do not match"),
        "an extra key": ({**good, "W4": np.zeros(2)}, "do not match"),
        "a wrong shape": ({**good, "W1": np.zeros((3, 1, 5, 5))}, "W1 has shape"),
        "NaN": ({**good, "b2": np.full(6, np.nan)}, "b2 contains NaN"),
    }
    for what, (params, match) in cases.items():
        path = write_pickle(tmp_path / "p.pkl", params, 4)
        with pytest.raises(ValueError, match=rf"p\.pkl: .*{match}"):
            net.load_params(str(path))
        np.testing.assert_array_equal(net.params.flat, before, err_msg=what)
    net32 = simple(dtype=np.float32, seed=12)
    path = write_pickle(tmp_path / "p.pkl", {**good, "W3": np.full((6, 4), 1e300)}, 4)
    with pytest.raises(ValueError, match=r"p\.pkl: parameter W3 holds values beyond"):
        net32.load_params(str(path))
    f32 = {k: v.astype(np.float32) for k, v in good.items()}  # cast to the network's dtype
    net.load_params(str(write_pickle(tmp_path / "p.pkl", f32, 4)))
    np.testing.assert_allclose(net.params.flat, before, rtol=1e-7)


# --- the .npz model file and pickling -------------------------------------------------------


@pytest.mark.parametrize("kind", ["simple", "deep"])
def test_save_and_load_round_trip(tmp_path, kind, dtype):
    net = NETS[kind][0]("numpy", dtype, seed=13)
    net.save(tmp_path / "net.npz")
    loaded = fastnn.load(tmp_path / "net.npz", backend="numpy")
    assert type(loaded) is type(net) and loaded.dtype == dtype
    assert repr(loaded) == repr(net)
    np.testing.assert_array_equal(loaded.params.flat, net.params.flat)
    x, _ = batch(kind)
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    clone = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(clone.params.flat, net.params.flat)
    copy = net.copy(dtype=np.float64)
    assert copy.dtype == np.float64 and copy.params.flat.dtype == np.float64
    np.testing.assert_array_equal(copy.params.flat, net.params.flat.astype(np.float64))
    copy.params.flat[...] = 0
    assert net.params.flat.any()


def test_a_tampered_model_file_is_refused_before_allocating(tmp_path):
    from fastnn import serialize

    net = simple(seed=14)
    net.save(tmp_path / "net.npz")
    meta, arrays = serialize.read_model(tmp_path / "net.npz")
    cases = {
        "huge": dict(meta, arguments=dict(meta["arguments"], hidden_size=10 ** 12)),
        "bad conv_param": dict(meta, arguments=dict(meta["arguments"], conv_param={})),
        "class": dict(meta, **{"class": "os.system"}),
        "version": dict(meta, version=99),
    }
    for bad in cases.values():
        serialize.write_model(tmp_path / "bad.npz", bad, arrays)
        with pytest.raises(ValueError, match=r"bad\.npz"):
            fastnn.load(tmp_path / "bad.npz")


# --- bad input --------------------------------------------------------------------------------

BAD_NETWORKS = [
    (dict(conv_param={"filter_num": 3, "filter_size": 3, "pad": 0}), ValueError,
     r"conv_param: .*missing 'stride'"),
    (dict(conv_param={"filter_num": 3, "filter_size": 3, "pad": 0, "stride": 1, "x": 1}),
     ValueError, r"conv_param: .*unknown 'x'"),
    (dict(conv_param={"filter_num": 3, "filter_size": 2.5, "pad": 0, "stride": 1}),
     TypeError, r"conv_param\['filter_size'\]: expected a positive integer"),
    (dict(conv_param={"filter_num": 3, "filter_size": 3, "pad": 0, "stride": 0}),
     ValueError, r"conv_param\['stride'\]: expected a positive integer, got 0"),
    (dict(conv_param={"filter_num": 3, "filter_size": 3, "pad": -1, "stride": 1}),
     ValueError, r"conv_param\['pad'\]: expected a non-negative integer"),
    (dict(conv_param={"filter_num": 3, "filter_size": 13, "pad": 1, "stride": 1}),
     ValueError, r"conv_param: the filter \(13x13\) is larger than the padded input"),
    (dict(input_dim=(1, 3, 3), conv_param={"filter_num": 3, "filter_size": 3, "pad": 0,
                                           "stride": 1}),
     ValueError, r"input_dim: \(1, 3, 3\) is too small .*pooling window"),
    (dict(input_dim=(10, 10)), ValueError, r"input_dim: expected \(channels, height, width\)"),
    (dict(input_dim=(1, 0, 10)), ValueError, r"input_dim\[1\]: expected a positive integer"),
    (dict(input_dim=(1, 10.0, 10)), TypeError, r"input_dim\[1\]: expected a positive integer"),
    (dict(hidden_size=0), ValueError, r"hidden_size: expected a positive integer"),
    (dict(conv_param=[3, 3, 0, 1]), TypeError, r"conv_param: expected a dict"),
    (dict(backend="torch"), ValueError, r"backend: expected one of"),
]


@pytest.mark.parametrize("kwargs, error, match", BAD_NETWORKS)
def test_bad_network_arguments_name_the_argument_and_draw_nothing(kwargs, error, match):
    np.random.seed(15)
    before = np.random.get_state()[1].copy()
    with pytest.raises(error, match=match):
        simple(**kwargs)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_deep_convnet_names_the_conv_param_at_fault():
    with pytest.raises(ValueError, match=r"conv_param_6\['filter_num'\]"):
        deep(conv_param_6={"filter_num": 0, "filter_size": 3, "pad": 1, "stride": 1})
    with pytest.raises(ValueError, match=r"conv_param_5: the filter \(9x9\) is larger"):
        deep(conv_param_5={"filter_num": 2, "filter_size": 9, "pad": 1, "stride": 1})


BAD_X = [
    (lambda x: x.reshape(5, -1), r"x: expected a 4-D array"),
    (lambda x: np.concatenate([x, x], axis=1), r"x: has 2 channel\(s\)"),
    (lambda x: x[:, :, :8, :], r"x: has images of 8x10"),
    (lambda x: np.where(x > 1, np.nan, x), r"x: contains NaN or infinity"),
    (lambda x: x[:0], r"x: expected a non-empty batch"),
]


@pytest.mark.parametrize("change, match", BAD_X)
def test_bad_x_is_refused_before_anything_changes(change, match):
    np.random.seed(16)
    net = deep(input_dim=(1, 10, 10))
    x, t = batch("simple")
    before, state = net.params.flat.copy(), np.random.get_state()[1].copy()
    for call in (lambda: net.predict(change(x)), lambda: net.loss(change(x), t),
                 lambda: net.gradient(change(x), t), lambda: net.accuracy(change(x), t)):
        with pytest.raises(ValueError, match=match):
            call()
    np.testing.assert_array_equal(net.params.flat, before)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_bad_labels_and_batch_size():
    net = simple(seed=17)
    x, t = batch("simple")
    with pytest.raises(ValueError, match=r"t: class labels must lie in \[0, 3\]"):
        net.loss(x, t + 4)
    with pytest.raises(ValueError, match=r"batch_size: expected a positive integer"):
        net.accuracy(x, t, batch_size=0)
    with pytest.raises(TypeError, match="train_flg"):
        net.predict(x, train_flg="yes")


def test_layer_and_im2col_arguments_are_checked():
    W, b = np.zeros((2, 1, 3, 3)), np.zeros(2)
    cases = [
        (lambda: fastnn.Convolution(W[0], b), ValueError, r"W: expected a non-empty array"),
        (lambda: fastnn.Convolution(W, np.zeros(3)), ValueError, r"b: expected one bias"),
        (lambda: fastnn.Convolution(W, b, stride=0), ValueError, r"stride: expected a posit"),
        (lambda: fastnn.Convolution(W, b, pad=-1), ValueError, r"pad: expected a non-neg"),
        (lambda: fastnn.Convolution(W.astype(int), b), TypeError, r"W: expected a float"),
        (lambda: fastnn.Convolution(W.astype(np.float16), b), TypeError, r"W: expected a f"),
        (lambda: fastnn.Convolution(W, b).forward(np.zeros((1, 2, 5, 5))), ValueError,
         r"x: has 2 channel\(s\)"),
        (lambda: fastnn.Convolution(W, b).forward(np.zeros((1, 1, 2, 5))), ValueError,
         r"x: the filter \(3x3\) is larger than the padded input \(2x5"),
        (lambda: fastnn.Convolution(W, b).forward(np.zeros((1, 5, 5))), ValueError,
         r"x: expected a 4-D array"),
        (lambda: fastnn.Convolution(W, b).backward(np.zeros((1, 2, 3, 3))), ValueError,
         r"call forward first"),
        (lambda: fastnn.Pooling(0, 2), ValueError, r"pool_h: expected a positive integer"),
        (lambda: fastnn.Pooling(2, 2, stride=-1), ValueError, r"stride: expected a positive"),
        (lambda: fastnn.Pooling(3, 3).forward(np.zeros((1, 1, 2, 2))), ValueError,
         r"x: the pooling window \(3x3\) is larger"),
        (lambda: fastnn.im2col(np.zeros((1, 1, 4, 4)), 5, 5), ValueError,
         r"input_data: the filter \(5x5\) is larger"),
        (lambda: fastnn.im2col(np.zeros((1, 1, 4, 4)), 2, 2, stride=0), ValueError,
         r"stride: expected a positive integer"),
        (lambda: fastnn.col2im(np.zeros((5, 4)), (1, 1, 3, 3), 2, 2), ValueError,
         r"col: expected shape \(4, 4\) for input_shape"),
        (lambda: fastnn.col2im(np.zeros((4, 4)), (1, 3, 3), 2, 2), ValueError,
         r"input_shape: expected \(N, C, H, W\)"),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()
    conv = fastnn.Convolution(W, b)
    out = conv.forward(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"dout: expected the shape of the forward's output"):
        conv.backward(np.zeros((1, 2, 3, 3)))
    assert out.shape == (1, 2, 2, 2)


# --- threads and load -------------------------------------------------------------------------


def test_the_bits_do_not_depend_on_threads_or_load(monkeypatch):
    """A convnet whose batches span several fixed blocks of images: the same bits (the
    parameters, predictions, and fit's History) on one thread, on every core, and beside
    a busy process (the blocks' sums run in order). The parallel forms are compiled in
    the call, so the runs on several threads do run on them (counted)."""
    from fastnn.kernels import _blocks, conv

    monkeypatch.setattr(_blocks, "BACKGROUND", False)
    on_threads = set()
    real = _blocks.when_compiled  # (what a pass of several blocks on threads calls)
    monkeypatch.setattr(_blocks, "when_compiled",
                        lambda kernel, *a: on_threads.add(kernel) or real(kernel, *a))
    rng = np.random.default_rng(18)
    # (28x28 images: about 10 a block, kernels._blocks.grain; 30 rows, batches of 20)
    x, t = rng.random((30, 1, 28, 28)), rng.integers(0, 10, 30)

    def run(threads=None):
        fastnn.set_num_threads(threads)
        try:
            net = fastnn.SimpleConvNet(hidden_size=10, seed=0)
            opt = fastnn.Adam()
            for _ in range(2):
                net.train_step(x, t, opt)
            history = fastnn.fit(net, x, t, x_test=x[:12], t_test=t[:12], batch_size=20,
                                 epochs=2, optimizer=opt, seed=0, progress=False)
            record = history.to_dict()
            return (net.params.flat.copy(), net.predict(x),
                    {k: v for k, v in record.items() if "seconds" not in k})
        finally:
            fastnn.set_num_threads(None)

    quiet = run()
    for other in (run(1), run(fastnn.threads.usable_cores())):
        np.testing.assert_array_equal(other[0], quiet[0])
        np.testing.assert_array_equal(other[1], quiet[1])
        assert other[2] == quiet[2]
    with busy_process():
        loaded = run()
    np.testing.assert_array_equal(loaded[0], quiet[0])
    np.testing.assert_array_equal(loaded[1], quiet[1])
    assert loaded[2] == quiet[2]
    if fastnn.threads.usable_cores() > 1 and not numba_config.DISABLE_JIT:
        # (the runs on every core ran the convolution's passes on threads)
        assert {conv._RUN[body].parallel for body in (conv._conv_forward_block,
                                                      conv._conv_backward_block)} <= on_threads


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["simple", "deep"])
def test_the_fused_conv_relu_pool_passes_give_the_layers_bits(kind, dtype, monkeypatch):
    """ConvEngine runs each (Convolution, Relu[, Pooling]) as one fused pass: the same
    loss, gradients, predictions and layer state as the layer objects' own passes, on
    one thread and on two (the parallel forms compiled in the call)."""
    from fastnn.kernels import _blocks

    from fastnn.conv_engine import ConvReluRun

    monkeypatch.setattr(_blocks, "BACKGROUND", False)
    # (the book's image size: batches of several blocks, kernels._blocks.grain)
    N = 40 if kind == "simple" else 16
    rng = np.random.default_rng(21)
    x, t = rng.standard_normal((N, 1, 28, 28)).astype(dtype), rng.integers(0, 10, N)

    def make(backend, dtype, seed):
        cls = fastnn.SimpleConvNet if kind == "simple" else fastnn.DeepConvNet
        return cls(hidden_size=10, backend=backend, dtype=dtype, seed=seed)
    runs = []
    for threads in (1, 2):
        for fuse in (True, False):
            fastnn.set_num_threads(threads)
            try:
                net = make("numba", dtype, seed=3)
                fused = [p for p in net.engine.passes if isinstance(p, ConvReluRun)]
                assert len(fused) == (1 if kind == "simple" else 6)
                if not fuse:
                    net.engine.passes = list(net.engine.sequence)
                with net.engine.fixed_masks():
                    loss, grads = net.engine.gradient(x, t)
                conv1 = net.layers["Conv1"] if kind == "simple" else net.layers[0]
                runs.append((loss, grads.flat.copy(), net.predict(x), conv1.dW.copy()))
            finally:
                fastnn.set_num_threads(None)
    for other in runs[1:]:
        assert other[0] == runs[0][0]
        for a, b in zip(other[1:], runs[0][1:]):
            np.testing.assert_array_equal(a, b)

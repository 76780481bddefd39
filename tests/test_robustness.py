"""Nothing bad escapes: non-finite parameters, half-done failed calls, saved files, threads."""

import os
import stat
import threading

import numpy as np
import pytest

import fastnn

# --- fit never returns non-finite parameters --------------------------------------------


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_fit_never_returns_non_finite_parameters(compiled, activation):
    """The issue's examples and a sweep around them: fit() raises TrainingDiverged with
    finite parameters, or returns finite ones; never returns inf/NaN weights."""
    cases = [
        (dict(sizes=(2, [7], 2), init="he", seed=144), np.array([[234.71, -76.46], [47.12, -46.96]]),
         np.array([0, 1]), "softmax", 1.5e192, dict(batch_size=1, iters=60, eval_every=5)),
        (dict(sizes=(1, [1], 1), init=1.0, seed=0), np.array([[1e3]]), np.array([[1e3]]), "mse",
         1e306, dict(batch_size=1, iters=1)),
    ]
    rng = np.random.default_rng(0)
    for lr in (1e10, 1e50, 1e150, 1e300):  # more than the two examples
        x = rng.standard_normal((8, 3)) * 100
        cases.append((dict(sizes=(3, [5], 2), init="he", seed=1), x, rng.integers(0, 2, 8),
                      "softmax", lr, dict(batch_size=2, iters=12, eval_every=3)))
    for arch, x, t, loss, lr, kw in cases:
        net = fastnn.Sequential(*arch["sizes"], arch["init"], activation=activation, loss=loss,
                                seed=arch["seed"])
        try:
            fastnn.fit(net, x, t, optimizer=fastnn.SGD(lr), progress=False, compiled=compiled,
                       **kw)
        except fastnn.TrainingDiverged:
            pass
        assert np.all(np.isfinite(net.params.flat)), (arch, lr)


def test_a_learning_rate_beyond_float32_is_refused():
    net = fastnn.Sequential(2, [3], 2, dtype=np.float32, seed=0)
    x, t = np.ones((4, 2)), np.array([0, 1, 0, 1])
    before = net.params.flat.copy()
    with pytest.raises(ValueError, match=r"lr: 1e\+39 is outside the range of float32"):
        fastnn.fit(net, x, t, optimizer=fastnn.SGD(1e39), batch_size=2, progress=False)
    with pytest.raises(ValueError, match="lr: .* outside the range of float32"):
        net.train_step(x, t, fastnn.SGD(1e-50))  # rounds to 0
    np.testing.assert_array_equal(net.params.flat, before)


def test_the_learning_rate_is_checked_again_when_it_or_the_dtype_changes():
    """lr_for checks each (dtype, lr) once (a step calls it every time): a new lr, or the
    same optimizer on a network of another dtype, is checked anew."""
    x, t = np.ones((4, 2)), np.array([0, 1, 0, 1])
    net32 = fastnn.Sequential(2, [3], 2, dtype=np.float32, seed=0)
    net64 = fastnn.Sequential(2, [3], 2, dtype=np.float64, seed=0)
    opt = fastnn.SGD(0.1)
    net32.train_step(x, t, opt)
    net32.train_step(x, t, opt)
    opt.lr = 1e-50  # (a positive finite number: 0 in float32)
    before = net32.params.flat.copy()
    with pytest.raises(ValueError, match="lr: .* outside the range of float32"):
        net32.train_step(x, t, opt)
    np.testing.assert_array_equal(net32.params.flat, before)
    net64.train_step(x, t, opt)  # (float64 holds it)
    with pytest.raises(ValueError, match="lr: .* outside the range of float32"):
        net32.train_step(x, t, opt)


@pytest.mark.parametrize("value", [0, -1.0, float("inf"), float("nan"), "0.1"])
def test_lr_is_checked_whenever_it_is_set(value):
    opt = fastnn.SGD(0.1)
    with pytest.raises((ValueError, TypeError), match="lr: expected a positive finite number"):
        opt.lr = value
    assert opt.lr == 0.1


# --- a call that raises changes nothing ---------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_numerical_gradient_with_nan_input_leaves_the_parameters(backend):
    net = fastnn.Sequential(3, [4], 2, backend=backend, seed=0)
    before = net.params.flat.copy()
    x = np.ones((2, 3))
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match="x: contains NaN"):
        net.numerical_gradient(x, np.array([0, 1]))
    np.testing.assert_array_equal(net.params.flat, before)


@pytest.mark.parametrize("bad", ["read-only", "integer"])
@pytest.mark.parametrize("position", [0, 2])
def test_sgd_update_on_a_plain_dict_changes_nothing_when_one_entry_is_bad(bad, position):
    params = {f"p{i}": np.ones(3) for i in range(3)}
    key = f"p{position}"
    if bad == "read-only":
        params[key].flags.writeable = False
    else:
        params[key] = np.ones(3, dtype=np.int64)
    grads = {k: np.ones(3) for k in params}
    before = {k: v.copy() for k, v in params.items()}
    with pytest.raises((ValueError, TypeError), match=rf"params\['{key}'\]"):
        fastnn.SGD(0.1).update(params, grads)
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])


def test_paramdict_update_is_all_or_nothing():
    net = fastnn.Sequential(3, [4], 2, seed=0)
    before = net.params.flat.copy()
    for bad in ({"W1": np.zeros((3, 4)), "b1": np.zeros(5)},
                {"W1": np.zeros((3, 4)), "W9": np.zeros(1)},
                {"b1": np.zeros(4), "W2": np.array([["a"] * 2] * 4)}):
        with pytest.raises((ValueError, KeyError, TypeError)):
            net.params.update(bad)
        np.testing.assert_array_equal(net.params.flat, before)
    net.params.update({"b1": np.full(4, 2.0), "b2": np.full(2, 3.0)})
    assert np.all(net.params["b1"] == 2) and np.all(net.params["b2"] == 3)


# --- clear errors --------------------------------------------------------------------------


def test_arguments_of_the_wrong_kind_name_themselves():
    net = fastnn.Sequential(3, [4], 2, seed=0)
    x, t = np.ones((2, 3)), np.array([0, 1])
    with pytest.raises(TypeError, match="callbacks: expected a sequence of callables"):
        fastnn.fit(net, x, t, batch_size=2, callbacks=None, progress=False)
    with pytest.raises(TypeError, match="net: expected a fastnn.Sequential, SimpleConvNet or "
                                        "DeepConvNet, got str"):
        fastnn.gradient_check("net", x, t)
    with pytest.raises(TypeError, match="net: expected a fastnn.Sequential, SimpleConvNet or "
                                        "DeepConvNet, got str"):
        fastnn.evaluate("net", x, t)
    with pytest.raises(ValueError, match="hidden_size: a 3-99999999999-2 network has"):
        fastnn.Sequential(3, [99999999999], 2)


@pytest.mark.parametrize("value", [1e39, -4e38])
def test_finite_input_beyond_float32_is_not_called_infinite(value):
    net = fastnn.Sequential(3, [4], 2, dtype=np.float32, seed=0)
    x = np.ones((2, 3))
    x[1, 0] = value
    with pytest.raises(ValueError, match=r"x: value .* at sample 1, feature 0 exceeds the "
                                         r"range of this float32 network"):
        net.predict(x)


# --- saved files ---------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_files_get_normal_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = tmp_path / "model.npz"
        fastnn.Sequential(3, [2], 2, seed=0).save(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
        path.chmod(0o640)  # a replaced file keeps its own mode
        fastnn.Sequential(3, [2], 2, seed=1).save(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    finally:
        os.umask(old)


def test_a_read_only_model_is_not_replaced(tmp_path):
    path = tmp_path / "model.npz"
    fastnn.Sequential(3, [2], 2, seed=0).save(path)
    path.chmod(0o444)
    content = path.read_bytes()
    with pytest.raises(PermissionError, match="read-only"):
        fastnn.Sequential(3, [2], 2, seed=1).save(path)
    assert path.read_bytes() == content


def test_saving_through_a_symlink_replaces_its_target(tmp_path):
    target = tmp_path / "real.npz"
    link = tmp_path / "link.npz"
    fastnn.Sequential(3, [2], 2, seed=0).save(target)
    link.symlink_to(target)
    net = fastnn.Sequential(3, [2], 2, seed=1)
    net.save(link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    np.testing.assert_array_equal(fastnn.load(target).params.flat, net.params.flat)


def test_stale_temporaries_of_dead_saves_are_cleaned_up(tmp_path):
    path = tmp_path / "model.npz"
    from fastnn.serialize import _TAG  # (this machine's: see test_real_world for others)

    dead = tmp_path / f".model.npz.{_TAG}-999999999.abcdef.tmp"  # no such process
    alive = tmp_path / f".model.npz.{_TAG}-{os.getppid()}.abcdef.tmp"  # a live process's
    other = tmp_path / f".other.npz.{_TAG}-999999999.abcdef.tmp"
    for f in (dead, alive, other):
        f.write_bytes(b"partial")
    fastnn.Sequential(3, [2], 2, seed=0).save(path)
    assert not dead.exists() and alive.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == \
        sorted([alive.name, other.name])


def test_saving_to_a_folder_names_the_problem(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder"):
        fastnn.Sequential(3, [2], 2, seed=0).save(tmp_path)


# --- threads -------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_one_network_from_two_threads_gives_each_its_own_gradients(backend):
    net = fastnn.Sequential(20, [32], 5, backend=backend, seed=0)
    rng = np.random.default_rng(0)
    inputs = [(rng.standard_normal((64, 20)), rng.integers(0, 5, 64)) for _ in range(2)]
    expected = [net.gradient(x, t)["W1"].copy() for x, t in inputs]
    wrong = []

    def work(i):
        x, t = inputs[i]
        for _ in range(20):
            if not np.array_equal(net.gradient(x, t)["W1"], expected[i]):
                wrong.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert wrong == []


# --- bounded memory ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_predict_accuracy_and_loss_on_a_large_set_use_bounded_memory(backend):
    import tracemalloc

    net = fastnn.Sequential(200, [128, 128], 10, "he", backend=backend, seed=0)
    rng = np.random.default_rng(0)
    x = rng.random((30_000, 200))  # 48 MB
    t = rng.integers(0, 10, 30_000)
    net.accuracy(x[:10], t[:10])  # compile outside the measurement
    tracemalloc.start()
    try:
        for _ in range(3):
            net.accuracy(x, t)
            net.loss(x, t)
        peak = tracemalloc.get_traced_memory()[1]
        scores = net.predict(x)
        held = sum(ws.acts.nbytes + ws.dacts.nbytes
                   for ws in net.engine._workspaces.values())
    finally:
        tracemalloc.stop()
    assert scores.shape == (30_000, 10)
    assert peak < 16 * 2**20, peak  # work buffers of 1,024 rows, not of the whole set
    assert held < 8 * 2**20, held


def test_a_model_with_non_finite_parameters_is_not_saved(tmp_path):
    net = fastnn.Sequential(3, [2], 2, seed=0)
    path = tmp_path / "model.npz"
    net.save(path)
    content = path.read_bytes()
    net.params["b2"][1] = np.inf
    with pytest.raises(ValueError, match=r"params\['b2'\]: contains NaN or infinity"):
        net.save(path)
    assert path.read_bytes() == content

"""The compiled training path: the step path's bits on the same batches, and when it runs."""

import numpy as np
import pytest
from _helpers import one_hot

import fastnn
from fastnn.datasets import make_sine
from fastnn.train import choose_path


def fit_both(make_net, x, t, **kw):
    """fit() on the numpy step path, the numba step path and the numba compiled path.

    The two numba paths run one step body on the same batches: their parameters and
    losses must be bit for bit the same. The numpy backend is the reference.
    """
    ref, step, comp = make_net("numpy"), make_net("numba"), make_net("numba")
    h_ref = fastnn.fit(ref, x, t, progress=False, compiled=False, **kw)
    h_step = fastnn.fit(step, x, t, progress=False, compiled=False, **kw)
    h_comp = fastnn.fit(comp, x, t, progress=False, compiled=True, **kw)
    assert h_ref.path == h_step.path == "step" and h_comp.path == "compiled"
    np.testing.assert_array_equal(comp.params.flat, step.params.flat)
    np.testing.assert_array_equal(h_comp.loss, h_step.loss)
    assert h_comp.iteration == h_step.iteration
    return ref, comp, h_ref, h_comp


def test_sine_workload_same_parameters():
    x, t = make_sine()

    def make(backend):
        return fastnn.Sequential(1, [3], 1, 0.01, activation="sigmoid", loss="mse",
                                 backend=backend, seed=0)

    ref, comp, h_ref, h_comp = fit_both(make, x, t, batch_size=1, epochs=100, seed=0,
                                        eval_every=20 * 63)
    np.testing.assert_allclose(comp.params.flat, ref.params.flat, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(h_comp.loss, h_ref.loss, rtol=1e-9)
    assert h_comp.loss[-1] < h_comp.loss[0]


def test_784_128_128_10_classification_same_parameters():
    rng = np.random.default_rng(0)
    x, t = rng.random((200, 784)), rng.integers(0, 10, 200)

    def make(backend):
        return fastnn.Sequential(784, [128, 128], 10, "he", backend=backend, seed=1)

    ref, comp, _, _ = fit_both(make, x, t, batch_size=32, iters=20, seed=2, eval_every=7)
    np.testing.assert_allclose(comp.params.flat, ref.params.flat, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("target", ["labels", "onehot", "mse"])
@pytest.mark.parametrize("batch_size", [1, 7, 40])  # loop GEMMs, partial batches, BLAS
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_configuration_matches_the_step_path(activation, target, batch_size, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((45, 9))
    labels = rng.integers(0, 4, 45)
    t = {"labels": labels, "onehot": one_hot(labels, 4), "mse": rng.standard_normal((45, 4))}[target]
    loss = "mse" if target == "mse" else "softmax"
    hidden = [6, 5] if batch_size < 40 else [64, 48]

    def make(backend):
        return fastnn.Sequential(9, hidden, 4, "he", activation=activation, loss=loss,
                                 backend=backend, dtype=dtype, seed=4)

    ref, comp, h_ref, h_comp = fit_both(make, x, t, batch_size=batch_size, epochs=3, seed=5,
                                        optimizer=fastnn.SGD(0.05))
    tol = dict(rtol=1e-9, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(comp.params.flat, ref.params.flat, **tol)
    assert h_comp.iteration == h_ref.iteration


def test_compiled_divergence_matches_the_step_path():
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((120, 6)), rng.standard_normal((120, 2))
    stops = []
    for compiled in (False, True):
        net = fastnn.Sequential(6, [16], 2, "he", loss="mse", seed=0)
        with pytest.raises(fastnn.TrainingDiverged) as info:
            fastnn.fit(net, x, t, optimizer=fastnn.SGD(5.0), batch_size=10, epochs=50,
                       progress=False, compiled=compiled)
        assert np.all(np.isfinite(net.params.flat))
        stops.append(info.value.iteration)
    # the same stop, give or take the one step where the overflow lands: in an exploding
    # run, last-bit differences between loop and BLAS sums grow without bound (so the
    # parameters, ~1e200 by then, are not compared either)
    assert abs(stops[0] - stops[1]) <= 1


def test_choose_path():
    small = fastnn.Sequential(1, [3], 1, seed=0)
    big = fastnn.Sequential(784, [128, 128], 10, seed=0)
    assert choose_path(small, 1, (), None) == "compiled"
    assert choose_path(big, 1000, (), None) == "step"
    assert choose_path(big, 100, (), None) == "compiled" == choose_path(big, 4, (), None)
    assert choose_path(small, 1, (), False) == "step"
    assert choose_path(fastnn.Sequential(1, [3], 1, backend="numpy", seed=0), 1, (), None) == "step"

    class Stepper:
        def __call__(self, history):
            return False

        def on_step(self, iteration, loss):
            pass

    assert choose_path(small, 1, (Stepper(),), None) == "step"
    with pytest.raises(ValueError, match="compiled: the compiled path cannot be used here: it needs backend='numba'"):
        choose_path(fastnn.Sequential(1, [3], 1, backend="numpy", seed=0), 1, (), True)
    with pytest.raises(ValueError, match="on_step"):
        choose_path(small, 1, (Stepper(),), True)


# --- evaluation inside the compiled loop ---------------------------------------------------

HISTORY_FIELDS = ("iteration", "epoch", "loss", "train_acc", "test_acc", "test_loss")


def _digits_like(seed=0, n=150, n_test=70, d=12, c=5):
    rng = np.random.default_rng(seed)
    x, xt = rng.standard_normal((n, d)), rng.standard_normal((n_test, d))
    w = rng.standard_normal((d, c))
    return x, np.argmax(x @ w, axis=1), xt, np.argmax(xt @ w, axis=1)


@pytest.mark.parametrize("case", ["sine", "labels", "onehot", "mixed", "batchnorm",
                                  "float32-decay"])
def test_history_is_the_step_paths_bit_for_bit(case):
    """The compiled path evaluates inside the kernel; History must not change a bit."""
    if case == "sine":
        x, t = make_sine()
        xt = tt = None

        def make():
            return fastnn.Sequential(1, [3], 1, 0.01, activation="sigmoid", loss="mse", seed=0)
        kw = dict(batch_size=1, epochs=40, seed=0)
    else:
        x, t, xt, tt = _digits_like()
        if case == "onehot":
            t, tt = one_hot(t, 5), one_hot(tt, 5)
        if case == "mixed":  # labels to train on, one-hot test rows: evaluated from Python
            tt = one_hot(tt, 5)
        options = {"batchnorm": dict(use_batchnorm=True),
                   "float32-decay": dict(dtype=np.float32, weight_decay_lambda=0.01)}.get(case, {})

        def make():
            return fastnn.Sequential(12, [16, 8], 5, "he", seed=1, **options)
        kw = dict(batch_size=8, epochs=6, seed=2, eval_every=7)
    runs = []
    for compiled in (False, True):
        net = make()
        h = fastnn.fit(net, x, t, x_test=xt, t_test=tt, progress=False, compiled=compiled, **kw)
        runs.append((net, h))
    (step, h_step), (comp, h_comp) = runs
    assert h_comp.path == "compiled"
    for field in HISTORY_FIELDS:
        assert getattr(h_comp, field) == getattr(h_step, field), field
    np.testing.assert_array_equal(comp.params.flat, step.params.flat)
    np.testing.assert_array_equal(comp.state, step.state)


def test_a_whole_small_fit_is_a_handful_of_kernel_calls(monkeypatch):
    x, t = make_sine()
    net = fastnn.Sequential(1, [3], 1, 0.01, activation="sigmoid", loss="mse", seed=0)
    calls = []
    original = net.engine.train_periods

    def counting(*args, **kwargs):
        calls.append(args[6].shape[0])  # periods in this call
        return original(*args, **kwargs)

    monkeypatch.setattr(net.engine, "train_periods", counting)
    h = fastnn.fit(net, x, t, batch_size=1, epochs=2001, optimizer=fastnn.SGD(0.1),
                   progress=False)
    assert len(h.iteration) == 2001 and sum(calls) == 2001  # (the warm-up ran on a copy)
    assert len(calls) <= 16


def test_callbacks_see_every_evaluation_in_order_and_stop_exactly():
    x, t, xt, tt = _digits_like(3)
    seen = []

    def make():
        return fastnn.Sequential(12, [16], 5, "he", seed=4)

    def stop_at_fifth(h):
        seen.append({f: list(getattr(h, f)) for f in HISTORY_FIELDS})
        return len(h.iteration) == 5

    kw = dict(x_test=xt, t_test=tt, batch_size=10, epochs=20, seed=5, progress=False)
    net = make()
    h = fastnn.fit(net, x, t, callbacks=[stop_at_fifth], compiled=True, **kw)
    assert h.path == "compiled" and len(h.iteration) == 5 and len(seen) == 5
    assert [len(s["iteration"]) for s in seen] == [1, 2, 3, 4, 5]  # in order, as it was then
    for s in seen:
        for field in HISTORY_FIELDS:
            assert s[field] == getattr(h, field)[:len(s["iteration"])]
    # the parameters are those of a run of exactly five periods, period by period
    period_by_period = make()
    fastnn.fit(period_by_period, x, t, compiled=False, **dict(kw, epochs=5))
    np.testing.assert_array_equal(net.params.flat, period_by_period.params.flat)


def test_the_guard_holds_inside_the_kernel():
    """An update that leaves parameters non-finite (the last batch of a period can): the
    kernel stops at that period's end, fit restores the last finite state and raises."""
    x = np.linspace(-1, 1, 40).reshape(-1, 1)
    t = 1e150 * np.ones((40, 1))  # a finite loss, then an update that overflows
    for compiled in (True, False):
        net = fastnn.Sequential(1, [4], 1, 0.5, loss="mse", seed=0)
        before = net.params.flat.copy()
        with pytest.raises(fastnn.TrainingDiverged) as info:
            fastnn.fit(net, x, t, batch_size=40, epochs=3, progress=False, compiled=compiled,
                       optimizer=fastnn.SGD(1e300))
        assert np.all(np.isfinite(net.params.flat))
        assert info.value.iteration == 1
        np.testing.assert_array_equal(net.params.flat, before)  # the last finite state
        assert info.value.history.iteration == []


def test_the_guard_restores_the_last_evaluation_inside_a_multi_period_call(monkeypatch):
    """The guard keeps the parameters at the start of each kernel call; when a call that
    ran several periods ends with non-finite parameters, fit restores that start and
    replays the periods that were evaluated: the parameters of the last evaluation."""
    x, t = make_sine()
    kw = dict(batch_size=1, eval_every=7, seed=2, progress=False, compiled=True,
              optimizer=fastnn.SGD(0.1))
    net = fastnn.Sequential(1, [3], 1, 0.01, activation="sigmoid", loss="mse", seed=0)
    original = net.engine.train_periods
    calls = []

    def poisoned(*args, **kwargs):
        losses, stop, done, not_finite = original(*args, **kwargs)
        calls.append(done)
        ends = args[6]
        if len(calls) == 3 and done >= 3:  # period done - 1 ends with an overflow
            net.params.flat[0] = np.inf
            return losses, int(ends[done - 1]), done - 1, True
        return losses, stop, done, not_finite

    monkeypatch.setattr(net.engine, "train_periods", poisoned)
    with pytest.raises(fastnn.TrainingDiverged) as info:
        fastnn.fit(net, x, t, epochs=50, **kw)
    recorded = info.value.history.iteration
    assert len(calls) == 3 and len(recorded) == sum(calls) - 1
    assert "restored to their values after iteration " + str(recorded[-1]) in str(info.value)
    clean = fastnn.Sequential(1, [3], 1, 0.01, activation="sigmoid", loss="mse", seed=0)
    h = fastnn.fit(clean, x, t, iters=recorded[-1], **kw)
    assert h.iteration == recorded
    np.testing.assert_array_equal(net.params.flat, clean.params.flat)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("target", ["labels", "onehot", "mse"])
@pytest.mark.parametrize("with_test", [True, False])
def test_train_periods_kernel_is_the_reference(dtype, target, with_test):
    from fastnn import kernels, reference

    x, labels, xt, lt = _digits_like(6, n=37, n_test=23)
    x, xt = x.astype(dtype), xt.astype(dtype)
    t, tt = {"labels": (labels, lt), "onehot": (one_hot(labels, 5).astype(dtype),
                                               one_hot(lt, 5).astype(dtype)),
             "mse": (np.random.default_rng(7).standard_normal((37, 5)).astype(dtype),
                     np.random.default_rng(8).standard_normal((23, 5)).astype(dtype))}[target]
    loss = "mse" if target == "mse" else "softmax"
    if not with_test:
        xt = tt = None
    net = fastnn.Sequential(12, [9, 7], 5, "he", loss=loss, dtype=dtype, seed=9)
    rng = np.random.default_rng(10)
    order = np.concatenate([rng.permutation(37) for _ in range(3)]).astype(np.int64)
    starts = np.concatenate([np.arange(0, 111, 6), [111]]).astype(np.int64)  # 19 batches
    ends = np.array([5, 11, 19], np.int64)  # periods of 5, 6 and 8 batches
    out = {}
    for name, backend in (("kernel", kernels), ("reference", reference)):
        params = net.params.flat.copy()
        losses, records = np.empty(19), np.empty((3, 4))
        result = backend.train_periods(x, t, xt, tt, order, starts, ends, params,
                                       net.params.layout, "relu", loss, 0.05, losses,
                                       records, rows=8)
        out[name] = (result, params, losses, records)
    (r_k, p_k, l_k, rec_k), (r_r, p_r, l_r, rec_r) = out["kernel"], out["reference"]
    assert r_k == r_r == (-1, 3, False)
    tol = dict(rtol=1e-9, atol=1e-12) if dtype == np.float64 else dict(rtol=3e-4, atol=3e-5)
    np.testing.assert_allclose(p_k, p_r, **tol)
    np.testing.assert_allclose(l_k, l_r, **tol)
    np.testing.assert_allclose(rec_k, rec_r, **tol)
    if not with_test:
        assert np.isnan(rec_k[:, 2]).all() and (rec_k[:, 3] == 0).all()


def test_train_periods_stops_at_a_period_end_with_non_finite_parameters():
    from fastnn import kernels, reference

    x, t, _, _ = _digits_like(11, n=20)
    net = fastnn.Sequential(12, [6], 5, "he", seed=12)
    for backend in (kernels, reference):
        params = net.params.flat.copy()
        params[3] = np.inf
        losses, before = np.full(4, 7.0), params.copy()
        result = backend.train_periods(x, t, None, None, np.arange(20, dtype=np.int64),
                                       np.arange(0, 21, 5, dtype=np.int64),
                                       np.array([0, 2], np.int64), params, net.params.layout,
                                       "relu", "softmax", 0.1, losses, np.empty((2, 4)), 8)
        assert result == (0, 0, True)  # period 0 ends before any batch: stop there
        assert np.isnan(losses).all()
        np.testing.assert_array_equal(params, before)


def test_train_periods_refuses_a_test_set_unlike_the_training_set():
    """The loop reads x2, t2 as it reads x, t: the engine refuses a mismatch (kernels
    never raise)."""
    x, t, xt, tt = _digits_like(13, n=20, n_test=9)
    net = fastnn.Sequential(12, [6], 5, "he", seed=14)
    before = net.params.flat.copy()
    args = (np.arange(20, dtype=np.int64), np.array([0, 20], np.int64), np.array([1], np.int64),
            0.1, np.empty((1, 4)))
    with pytest.raises(ValueError, match="t2: expected targets like t's"):
        net.engine.train_periods(x, t, xt, one_hot(tt, 5), *args)  # labels and one-hot rows
    with pytest.raises(ValueError, match="x2, t2: expected"):
        net.engine.train_periods(x, t, xt[:, :5], tt, *args)
    np.testing.assert_array_equal(net.params.flat, before)

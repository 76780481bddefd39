"""The compiled training path: the step path's bits on the same batches, and when it runs."""

import numpy as np
import pytest
from _helpers import one_hot

import fastnn
from fastnn.compiled import choose_path
from fastnn.datasets import make_sine


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

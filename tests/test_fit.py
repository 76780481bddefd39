"""fit(): batches, evaluation, history, reproducibility, callbacks, the divergence guard."""

import re

import numpy as np
import pytest

import fastnn
from fastnn.schedule import BatchSchedule


def small_problem(seed=0, n=120, d=6, c=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    t = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    return x, t


def test_fit_learns_digits_and_records_history(digits, backend):
    (x, t), (xt, tt) = digits
    net = fastnn.Sequential(64, [64], 10, "he", backend=backend, seed=0)
    h = fastnn.fit(net, x, t, x_test=xt, t_test=tt, batch_size=32, epochs=8, seed=0,
                   progress=False)
    per_epoch = int(np.ceil(len(x) / 32))
    assert h.iteration == [per_epoch * (e + 1) for e in range(8)]
    assert h.epoch == [float(e + 1) for e in range(8)]
    assert h.test_acc[-1] >= 0.93 and h.train_acc[-1] >= h.train_acc[0]
    assert h.loss[-1] < h.loss[0] and all(s > 0 for s in h.seconds_per_iter)
    assert h.summary()["test_acc"] == h.test_acc[-1] and h.iterations == 8 * per_epoch
    assert h.test_loss[-1] == pytest.approx(net.loss(xt, tt))


def test_same_seed_same_run_and_numba_equals_numpy():
    x, t = small_problem()
    runs = {}
    for backend in ("numpy", "numba"):
        for rep in range(2):
            net = fastnn.Sequential(6, [8], 3, "he", backend=backend, seed=1)
            h = fastnn.fit(net, x, t, batch_size=7, iters=50, eval_every=10, seed=3,
                           progress=False)
            runs[backend, rep] = (net.params.flat.copy(), h.loss)
    np.testing.assert_array_equal(runs["numba", 0][0], runs["numba", 1][0])
    np.testing.assert_allclose(runs["numba", 0][0], runs["numpy", 0][0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(runs["numba", 0][1], runs["numpy", 0][1], rtol=1e-9)


def batches(schedule, *counts):
    out = []
    for k in counts:
        order, starts = schedule.take(k)
        out += [order[starts[i]:starts[i + 1]].tolist() for i in range(k)]
    return out


def test_batch_schedules():
    rng = np.random.default_rng(0)
    got = batches(BatchSchedule(10, 4, shuffle=True, sampling="epoch", rng=rng), 2, 3, 1)
    assert [len(b) for b in got] == [4, 4, 2, 4, 4, 2]
    assert sorted(sum(got[:3], [])) == list(range(10)) == sorted(sum(got[3:], []))
    assert got[:3] != got[3:]  # a new permutation each epoch
    ordered = batches(BatchSchedule(5, 2, shuffle=False, sampling="epoch", rng=rng), 4)
    assert ordered == [[0, 1], [2, 3], [4], [0, 1]]
    drawn = batches(BatchSchedule(5, 8, shuffle=True, sampling="replacement", rng=rng), 3)
    assert all(len(b) == 8 and max(b) < 5 for b in drawn)


def test_schedule_does_not_depend_on_how_it_is_taken():
    def take_all(counts):
        s = BatchSchedule(7, 3, shuffle=True, sampling="epoch", rng=np.random.default_rng(4))
        return batches(s, *counts)

    assert take_all([12]) == take_all([1, 5, 2, 4]) == take_all([3] * 4)


def test_iters_eval_every_and_callbacks():
    x, t = small_problem()
    seen, steps = [], []

    class Recorder:
        def __call__(self, history):
            seen.append(history.iteration[-1])
            return history.iteration[-1] >= 20  # stop early

        def on_step(self, iteration, loss):
            steps.append(iteration)

    net = fastnn.Sequential(6, [8], 3, seed=0)
    h = fastnn.fit(net, x, t, batch_size=10, iters=100, eval_every=7, callbacks=[Recorder()],
                   progress=False)
    assert seen == [7, 14, 21] and h.iteration == [7, 14, 21]
    assert steps == list(range(1, 22))


def test_divergence_guard_stops_and_keeps_finite_parameters(backend):
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((120, 6)), rng.standard_normal((120, 2))
    net = fastnn.Sequential(6, [16], 2, "he", loss="mse", backend=backend, seed=0)
    with pytest.raises(fastnn.TrainingDiverged) as info:
        fastnn.fit(net, x, t, optimizer=fastnn.SGD(5.0), batch_size=10, epochs=50,
                   progress=False)
    at = info.value.iteration  # which step overflows first depends on summation order
    assert re.search(rf"became (inf|nan) at iteration {at} with learning rate 5; the parameters "
                     rf"are left at their values after iteration {at - 1} \(all finite\)",
                     str(info.value))
    assert np.all(np.isfinite(net.params.flat)) and 3 <= at <= 10
    assert isinstance(info.value.history, fastnn.History)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(batch_size=0), ValueError, "batch_size: expected a positive integer"),
    (dict(batch_size=500), ValueError, r"batch_size: expected at most the number of training samples \(120\)"),
    (dict(epochs=2, iters=5), ValueError, "epochs, iters: give at most one"),
    (dict(x_test=np.ones((2, 6))), ValueError, "x_test, t_test: pass both or neither"),
    (dict(sampling="bootstrap"), ValueError, "sampling: expected one of"),
    (dict(optimizer=0.1), TypeError, "optimizer: expected a fastnn optimizer"),
        (dict(optimizer="adamw"), ValueError, "optimizer: unknown optimizer 'adamw'"),
    (dict(callbacks=[1]), TypeError, "callbacks: expected callables"),
    (dict(compiled="yes"), TypeError, "compiled: expected True, False or None"),
    (dict(seed="0"), TypeError, "seed: expected a non-negative int or None, got '0'"),
    (dict(seed=-1), ValueError, "seed: expected a non-negative int or None, got -1"),
])
def test_fit_rejects_bad_arguments(kwargs, exc, match):
    x, t = small_problem()
    with pytest.raises(exc, match=match):
        fastnn.fit(fastnn.Sequential(6, [4], 3, seed=0), x, t, progress=False, **kwargs)


def test_fit_rejects_nan_in_training_data():
    x, t = small_problem()
    x[57, 2] = np.nan
    with pytest.raises(ValueError, match="x_train: contains NaN or infinity .*sample 57, feature 2"):
        fastnn.fit(fastnn.Sequential(6, [4], 3, seed=0), x, t, progress=False)


def test_regression_fit_has_no_accuracy():
    x, t = fastnn.datasets.make_sine()
    net = fastnn.Sequential(1, [3], 1, 0.5, activation="sigmoid", loss="mse", seed=0)
    h = fastnn.fit(net, x, t, batch_size=1, epochs=20, seed=0, progress=False)
    assert h.train_acc[-1] is None and h.loss[-1] < h.loss[0]


def test_progress_bar_and_lines(capsys):
    x, t = small_problem()
    fastnn.fit(fastnn.Sequential(6, [4], 3, seed=0), x, t, batch_size=20, epochs=2,
               progress=True)
    out = capsys.readouterr()
    assert "iter      6 | loss" in out.out and "train acc" in out.out

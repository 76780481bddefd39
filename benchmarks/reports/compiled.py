"""``--only compiled``: small networks, whole stretches of training in one kernel."""

from __future__ import annotations

import time

import numba
import numpy as np

try:  # imported by asv's discovery as benchmarks.reports.*
    from ..timing import interleaved
except ImportError:  # run from compare.py as a script: benchmarks/ is on sys.path
    from timing import interleaved



def _fit_seconds(make_net, x, t, repeat: int = 3, **kw) -> float:
    """Best training time (History.train_seconds) of ``repeat`` fits after a warm-up fit."""
    from fastnn import fit

    warm = dict(kw, epochs=1) if "epochs" in kw else dict(kw, iters=2)
    fit(make_net(), x, t, progress=False, **warm)  # compile outside the timing
    return min(fit(make_net(), x, t, progress=False, **kw).train_seconds
               for _ in range(repeat))


def _fit_wall(make_net, x, t, repeat: int = 3, **kw) -> float:
    """Best wall time of the whole fit() call (of ``repeat``), after a warm-up fit that
    compiled everything (so compilation is excluded)."""
    from fastnn import SGD, fit

    warm = dict(kw, epochs=1) if "epochs" in kw else dict(kw, iters=2)
    fit(make_net(), x, t, progress=False, optimizer=SGD(0.1), **warm)
    best = float("inf")
    for _ in range(repeat):
        net = make_net()
        t0 = time.perf_counter()
        fit(net, x, t, progress=False, optimizer=SGD(0.1), **kw)
        best = min(best, time.perf_counter() - t0)
    return best


@numba.njit(cache=True)
def _hand_loop(x, t, order, W1, b1, W2, b2, lr):
    """The physical reference: SGD on the 1-3-1 sigmoid network written out by hand, its
    sizes fixed, one sample per step (forward, squared error, backward, update)."""
    h = np.empty(3)
    total = 0.0
    for s in range(order.shape[0]):
        r = order[s]
        xi = x[r, 0]
        for j in range(3):
            h[j] = 1.0 / (1.0 + np.exp(-(xi * W1[0, j] + b1[j])))
        y = b2[0]
        for j in range(3):
            y += h[j] * W2[j, 0]
        d = y - t[r, 0]
        total += 0.5 * d * d
        for j in range(3):
            dh = d * W2[j, 0] * h[j] * (1.0 - h[j])
            W2[j, 0] -= lr * d * h[j]
            W1[0, j] -= lr * dh * xi
            b1[j] -= lr * dh
        b2[0] -= lr * d
    return total


def _step_against_hand_loop(rounds: int) -> tuple[float, float]:
    """Seconds per step: the compiled path's kernel (``train_batches``) and the hand
    loop, on the sine's 126,063 one-sample batches, interleaved (medians)."""
    from fastnn import Sequential
    from fastnn.datasets import make_sine

    x, t = make_sine()
    net = Sequential(1, [3], 1, 0.01, activation="sigmoid", loss="mse", seed=0)
    xv, tv = net.validate(x, t)
    rng = np.random.default_rng(0)
    order = np.concatenate([rng.permutation(63) for _ in range(2001)]).astype(np.int64)
    starts = np.arange(order.shape[0] + 1, dtype=np.int64)
    p = {k: v.copy() for k, v in net.params.items()}
    engine = net.engine
    engine.train_batches(xv, tv, order[:4], starts[:5], 1e-3)
    _hand_loop(xv, tv, order[:4], p["W1"], p["b1"], p["W2"], p["b2"], 1e-3)
    r = interleaved({
        "kernel": lambda: engine.train_batches(xv, tv, order, starts, 1e-3),
        "hand": lambda: _hand_loop(xv, tv, order, p["W1"], p["b1"], p["W2"], p["b2"], 1e-3),
    }, rounds)
    return r["kernel"] / order.shape[0], r["hand"] / order.shape[0]


def report_compiled(quick: bool = False) -> None:
    """The compiled path against the numpy backend and the step path (fit() timings)."""
    from fastnn import SGD, Sequential
    from fastnn.datasets import make_regression, make_sine
    from fastnn.train import choose_path

    print("## Small networks: whole stretches of training in one kernel (fit timings)\n")
    x, t = make_sine()

    def sine_net(backend):
        return lambda: Sequential(1, [3], 1, 0.01, activation="sigmoid", loss="mse",
                                  backend=backend, seed=0)

    epochs, numpy_epochs = (201, 10) if quick else (2001, 100)
    print("| workload | numpy backend | numba (compiled path) | speed-up |\n|---|---|---|---|")
    for label, common in (("evaluating each epoch (fit()'s default)", dict(batch_size=1, seed=0)),
                          ("evaluating every 200 epochs", dict(batch_size=1, seed=0,
                                                               eval_every=200 * 63))):
        # best of 7 (each about 25 ms) and of 2: the minimum is the run least disturbed by
        # the machine's other work, whose noise is larger than the short fit itself
        compiled = _fit_wall(sine_net("numba"), x, t, repeat=3 if quick else 7, epochs=epochs,
                             **common)
        numpy = _fit_wall(sine_net("numpy"), x, t, repeat=1 if quick else 2,
                          epochs=numpy_epochs, **common)
        numpy_scaled = numpy * epochs / numpy_epochs
        print(f"| sine 1-3-1, batch 1, {epochs} epochs x 63, {label}: whole fit() call | "
              f"{numpy_scaled:.2f} s (measured {numpy_epochs} epochs: {numpy:.3f} s, scaled) | "
              f"{compiled * 1e3:.1f} ms | {numpy_scaled / compiled:.0f} |")
    kernel, hand = _step_against_hand_loop(2 if quick else 7)
    print(f"| the compiled loop's time per step against a hand-written 1-3-1 loop (numba, "
          f"sizes fixed) | | {kernel * 1e9:.0f} ns against {hand * 1e9:.0f} ns | "
          f"{kernel / hand:.1f}x the hand loop |")

    # PyTorch's NumPy warm-up: 64 x 1000 -> 100 -> 10, ReLU, sum of squared errors,
    # lr 1e-6, 500 full-batch steps; fastnn's loss is 0.5 * mean, so lr * 2 * 64.
    xr, tr = make_regression(64, 1000, 10, seed=0)
    steps = 50 if quick else 500

    def warmup_net(backend):
        return lambda: Sequential(1000, [100], 10, 1.0, loss="mse", backend=backend, seed=0)

    kw = dict(batch_size=64, iters=steps, eval_every=steps, optimizer=SGD(1e-6 * 2 * 64))
    w_numba = _fit_seconds(warmup_net("numba"), xr, tr, **kw)
    w_numpy = _fit_seconds(warmup_net("numpy"), xr, tr, **kw)
    path = choose_path(warmup_net("numba")(), 64, (), None)
    print(f"| PyTorch warm-up 1000-100-10, batch 64, {steps} steps | {w_numpy * 1e3:.1f} ms | "
          f"{w_numba * 1e3:.1f} ms ({path} path) | {w_numpy / w_numba:.2f} |\n")

    print("float64, random data; us per iteration of fit() on each path (the crossover "
          "sets fastnn.train.COMPILED_MAX_WORK):\n")
    print("| network | batch | multiply-adds per step | step path | compiled path | faster | "
          "fit() picks |\n|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    cases = [((784, 128, 128, 10), (32,))] if quick else [
        ((64, 32, 10), (32, 128, 512)), ((64, 128, 128, 10), (4, 16, 32, 64)),
        ((784, 128, 128, 10), (2, 4, 8, 32, 100))]
    for sizes, batches in cases:
        xs, ts = rng.random((2000, sizes[0])), rng.integers(0, sizes[-1], 2000)
        for B in batches:
            iters = 60 if quick else 300

            def net(sizes=sizes):
                return Sequential(sizes[0], list(sizes[1:-1]), sizes[-1], "he", seed=0)

            kw = dict(batch_size=B, iters=iters, eval_every=iters, seed=0)
            step = _fit_seconds(net, xs, ts, compiled=False, **kw) / iters
            comp = _fit_seconds(net, xs, ts, compiled=True, **kw) / iters
            faster = "compiled" if comp < step else "step"
            work = B * sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))
            print(f"| {'-'.join(map(str, sizes))} | {B} | {work:,} | {step * 1e6:.1f} | "
                  f"{comp * 1e6:.1f} | {faster} | {choose_path(net(), B, (), None)} |")
    print()

"""Side-by-side timings: ``python benchmarks/compare.py`` (``fastnn bench`` in a checkout).

Everything that is compared is timed in one process, interleaved round by round (so a
noisy neighbour slows all contenders alike), and reported as medians and ratios:

* the training step (forward, backward, SGD update: ``net.train_step``, as fit() runs
  it) of 784-128-128-10 at batch 32, 100 and 1000, float32 and float64: numpy backend,
  numba backend, and the GEMM-only lower bound (the same step's eight matrix products
  into preallocated outputs);
* the seed article's loop (its ``gradient()`` + ``params[key] -= lr * grad[key]``) with
  the article's class against the same loop with ``fastnn.Sequential``;
* steady-state memory: the peak allocated inside one step (tracemalloc), per batch size;
* first use: the compile time of a training step, cold and from numba's cache;
* with ``--only chapter6``: the book's overfit_dropout shape through ``fastnn.Trainer``
  against a book-style baseline (``book_ch6.py``), each optimizer's step beside the
  GEMM-only bound and its update beside the memory-traffic bound, and the cold compile
  of an extended network;
* with ``--only sweep``: a sweep's trials in this process against a local Dask cluster of
  one and two single-threaded workers, quiet and beside busy processes, and the
  cluster's cost per trial;
* with ``--peers``: PyTorch eager CPU and scikit-learn's MLPClassifier, each in its own
  block (their thread pools and OpenBLAS's slow each other when interleaved).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numba
import numpy as np

if __package__:  # imported by asv's discovery as benchmarks.compare
    from . import book_ch6
    from .book import BookSequential
    from .timing import interleaved
else:  # run as a script: benchmarks/ is on sys.path
    import book_ch6
    from book import BookSequential
    from timing import interleaved

SIZES = (784, 128, 128, 10)


def problem(N: int, dtype, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((N, SIZES[0])).astype(dtype)
    t = rng.integers(0, SIZES[-1], N)
    return x, t


def step_cases(N: int, dtype) -> dict:
    """numpy step, numba step and the GEMM-only bound for one batch size and dtype."""
    from fastnn import SGD, Sequential

    x, t = problem(N, dtype)
    opt = SGD(lr=1e-3)  # small: thousands of steps on one batch must not drive it to ~0 loss
    cases = {}
    for backend in ("numpy", "numba"):
        net = Sequential(*SIZES[:1], list(SIZES[1:-1]), SIZES[-1], backend=backend,
                         dtype=dtype, seed=0)

        def step(net=net):  # one training step as fit() runs it
            net.train_step(x, t, opt)

        cases[backend] = step
    W = [net.params[f"W{i}"].copy() for i in (1, 2, 3)]
    h1, h2 = np.empty((N, SIZES[1]), dtype), np.empty((N, SIZES[2]), dtype)
    dh1, dh2 = np.empty_like(h1), np.empty_like(h2)
    s = np.empty((N, SIZES[3]), dtype)
    dW = [np.empty_like(w) for w in W]

    def gemm_only():  # forward 3, backward 5 (the first layer's dx is never needed)
        np.dot(x, W[0], out=h1)
        np.dot(h1, W[1], out=h2)
        np.dot(h2, W[2], out=s)
        np.dot(h2.T, s, out=dW[2])
        np.dot(s, W[2].T, out=dh2)
        np.dot(h1.T, dh2, out=dW[1])
        np.dot(dh2, W[1].T, out=dh1)
        np.dot(x.T, dh1, out=dW[0])

    cases["gemm"] = gemm_only
    return cases


def article_cases(N: int = 1000) -> dict:
    """The article's own loop body with its class and with fastnn's Sequential."""
    from fastnn import Sequential

    x, t = problem(N, np.float64)
    lr = 0.1

    def loop_body(net):
        grad = net.gradient(x, t)
        for key in net.params.keys():
            net.params[key] -= lr * grad[key]

    np.random.seed(0)
    book = BookSequential(SIZES[0], list(SIZES[1:-1]), SIZES[-1])
    np.random.seed(0)
    fast = Sequential(SIZES[0], list(SIZES[1:-1]), SIZES[-1])
    return {"article class": lambda: loop_body(book), "fastnn.Sequential": lambda: loop_body(fast)}


def peak_step_memory(N: int, dtype, backend: str = "numba") -> int:
    """Peak bytes allocated during one steady-state training step (tracemalloc)."""
    cases = step_cases(N, dtype)
    step = cases[backend]
    step()
    step()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    step()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


_COMPILE_SNIPPET = """
import time, numpy as np, fastnn
net = fastnn.Sequential(784, [128, 128], 10, dtype=np.{dtype}, seed=0)
x = np.random.default_rng(0).random((100, 784)).astype(np.{dtype}); t = np.arange(100) % 10
opt = fastnn.SGD(0.01)
def step():  # both ways to train: fit()'s train_step, and the article's loop body
    t0 = time.perf_counter()
    net.train_step(x, t, opt)
    opt.update(net.params, net.gradient(x, t))
    return time.perf_counter() - t0
first = step()
print(first - step())
"""


def compile_times(dtype: str = "float64") -> tuple[float, float]:
    """Seconds the first training step spends compiling: cold cache, then warm cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, FASTNN_NUMBA_CACHE="1")
        code = _COMPILE_SNIPPET.format(dtype=dtype)
        run = [sys.executable, "-c", code]
        cold = float(subprocess.run(run, env=env, check=True, capture_output=True,
                                    text=True).stdout)
        cached = float(subprocess.run(run, env=env, check=True, capture_output=True,
                                      text=True).stdout)
    return cold, cached


def torch_step_times(batches, rounds: int) -> dict[int, float] | None:
    """Median seconds of the same float32 step in PyTorch eager mode, if installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    cases = {}
    for N in batches:
        x, t = problem(N, np.float32)
        xt, tt = torch.from_numpy(x), torch.from_numpy(t)

        def step(xt=xt, tt=tt):
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xt), tt).backward()
            opt.step()

        cases[N] = step
    return interleaved(cases, rounds)


def sklearn_step_times(batches, rounds: int) -> dict[int, float] | None:
    """Median seconds of one MLPClassifier SGD step (partial_fit on one batch), float64."""
    try:
        import warnings

        from sklearn.neural_network import MLPClassifier
    except ImportError:
        return None
    cases = {}
    for N in batches:
        x, t = problem(N, np.float64)
        clf = MLPClassifier(hidden_layer_sizes=SIZES[1:-1], solver="sgd", batch_size=N,
                            learning_rate_init=0.01, momentum=0.0, alpha=0.0, shuffle=False,
                            random_state=0)
        classes = np.arange(SIZES[-1])

        def step(clf=clf, x=x, t=t, classes=classes):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clf.partial_fit(x, t, classes=classes)

        cases[N] = step
    return interleaved(cases, rounds)


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
    from fastnn.compiled import choose_path
    from fastnn.datasets import make_regression, make_sine

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
          "sets fastnn.compiled.COMPILED_MAX_WORK):\n")
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


def report_breakdown(batches, dtypes, rounds: int) -> None:
    """Where a numba step's time goes beyond the GEMMs: stages, 10th percentiles.

    Low percentiles of interleaved reps, for attribution on a noisy machine (medians
    are in the main table): GEMM-only; the compiled step (``kernels.sgd_step``) on
    validated arrays; + input validation (``train_step``, the full step); and for
    comparison ``loss_and_gradient`` (per-layer kernels, gradients into a dict).
    """
    from fastnn import SGD, Sequential, kernels

    print("## Step breakdown (numba), 10th percentile us\n")
    print("| dtype | batch | GEMM-only | sgd_step kernel | + validation (full step) | "
          "full / GEMM | loss_and_gradient |")
    print("|---|---|---|---|---|---|---|")
    for dtype in dtypes:
        for N in batches:
            x, t = problem(N, dtype)
            net = Sequential(*SIZES[:1], list(SIZES[1:-1]), SIZES[-1], dtype=dtype, seed=0)
            opt = SGD(1e-3)
            xv, tv = net.validate(x, t)
            ws, layout = net.engine.workspace(N), net.params.layout

            def kernel(xv=xv, tv=tv, ws=ws, net=net, layout=layout):
                kernels.sgd_step(xv, tv, net.params.flat, layout, ws.acts, ws.dacts,
                                 net.activation, net.loss_name, 1e-3)

            cases = {"gemm": step_cases(N, dtype)["gemm"], "kernel": kernel,
                     "full": lambda x=x, t=t, net=net, opt=opt: net.train_step(x, t, opt),
                     "grads": lambda x=x, t=t, net=net: net.loss_and_gradient(x, t)}
            r = _percentile_times(cases, rounds, 10)
            print(f"| {np.dtype(dtype).name} | {N} | {r['gemm'] * 1e6:.1f} | "
                  f"{r['kernel'] * 1e6:.1f} | {r['full'] * 1e6:.1f} | "
                  f"{r['full'] / r['gemm']:.3f} | {r['grads'] * 1e6:.1f} |")
    print()


def _percentile_times(cases: dict, rounds: int, q: float, reps: int = 40) -> dict:
    samples = {k: [] for k in cases}
    for fn in cases.values():
        fn()
        fn()
    for _ in range(rounds):
        for k, fn in cases.items():
            for _ in range(reps):
                t0 = time.perf_counter()
                fn()
                samples[k].append(time.perf_counter() - t0)
    return {k: float(np.percentile(v, q)) for k, v in samples.items()}


def _peer_table(name, label, dtype, times, steps, batches) -> None:
    """One peer's step times beside fastnn's numba step of the same dtype."""
    if times is None:
        print(f"{name}: not installed, skipped.\n")
        return
    print(f"| batch | {label} {dtype} | fastnn numba {dtype} | {name} / fastnn |")
    print("|---|---|---|---|")
    for N in batches:
        ours = steps.get((dtype, N), {}).get("numba")
        ratio = f"{times[N] / ours:.2f}" if ours else "n/a"
        print(f"| {N} | {_ms(times[N])} | {_ms(ours) if ours else 'n/a'} | {ratio} |")
    print()


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}"


def report_steps(batches, dtypes, rounds: int) -> dict:
    print("## Training step, 784-128-128-10 (forward + backward + SGD update), median ms\n")
    print("| dtype | batch | numpy | numba | GEMM-only | numba / GEMM | numpy / numba |")
    print("|---|---|---|---|---|---|---|")
    results = {}
    for dtype in dtypes:
        for N in batches:
            r = interleaved(step_cases(N, dtype), rounds)
            results[(np.dtype(dtype).name, N)] = r
            print(f"| {np.dtype(dtype).name} | {N} | {_ms(r['numpy'])} | {_ms(r['numba'])} | "
                  f"{_ms(r['gemm'])} | {r['numba'] / r['gemm']:.3f} | "
                  f"{r['numpy'] / r['numba']:.2f} |", flush=True)
    print()
    return results


# --- chapter 6 -------------------------------------------------------------------------

OVERFIT = (784, [100] * 6, 10)  # the book's overfit_dropout / batch_norm_test network


def _trainer_runs(iters_per_run: int, x, t, x_test, t_test):
    """Two callables, each ``iters_per_run`` more iterations of one Trainer run (BatchNorm,
    Dropout 0.2, Adam, batch 100, float64), built once: fastnn's and the book-style
    baseline's. Building the networks is left out of the timing."""
    import fastnn

    epochs = max(1, iters_per_run * 100 // x.shape[0])
    np.random.seed(0)
    net = fastnn.MultiLayerNetExtend(*OVERFIT, use_dropout=True, dropout_ration=0.2,
                                     use_batchnorm=True)
    trainer = fastnn.Trainer(net, x, t, x_test, t_test, epochs=epochs, mini_batch_size=100,
                             optimizer="adam", optimizer_param={"lr": 0.001}, verbose=False)
    np.random.seed(0)
    ref = book_ch6.Net(*OVERFIT, dropout=0.2, batchnorm=True)
    ref_opt = book_ch6.Adam(0.001)

    def book():
        book_ch6.train(ref, ref_opt, x, t, x_test, t_test, epochs, 100)

    return {"fastnn.Trainer": trainer.train, "book-style": book}, trainer.max_iter


def _bandwidth(n: int, dtype) -> float:
    """Copy bandwidth (bytes read + written per second) for arrays of n elements: the
    working set of an update over n parameters, in whatever cache level holds it."""
    a, b = np.ones(n, dtype), np.empty(n, dtype)
    r = interleaved({"copy": lambda: np.copyto(b, a)}, rounds=3)
    return 2 * a.nbytes / r["copy"]


_EXT_COMPILE_SNIPPET = """
import time, numpy as np, fastnn
net = fastnn.MultiLayerNetExtend(784, [100] * 6, 10, use_dropout=True, use_batchnorm=True)
x = np.random.default_rng(0).random((100, 784)); t = np.arange(100) % 10
opt = fastnn.Adam()
def step():
    t0 = time.perf_counter()
    net.train_step(x, t, opt)
    net.loss(x, t)
    return time.perf_counter() - t0
first = step()
print(first - step())
"""


def report_chapter6(quick: bool = False) -> None:
    import fastnn

    rng = np.random.default_rng(0)
    n_test = 1000 if quick else 10000
    x, t = rng.random((300, 784)), rng.integers(0, 10, 300)
    x_test, t_test = rng.random((n_test, 784)), rng.integers(0, 10, n_test)
    runs, iters = _trainer_runs(6 if quick else 30, x, t, x_test, t_test)
    r = interleaved(runs, rounds=2 if quick else 5, budget=0.5, slices=1)
    print(f"## The book's overfit_dropout shape through Trainer: 784-100x6-10, batch 100, "
          f"BatchNorm + Dropout + Adam, float64, 300 training rows, {n_test} test rows "
          f"evaluated every 3 iterations; median ms per iteration ({iters} per run)\n")
    fast, book = r["fastnn.Trainer"] / iters * 1e3, r["book-style"] / iters * 1e3
    print("| book-style | fastnn.Trainer | speed-up |\n|---|---|---|")
    print(f"| {book:.2f} | {fast:.2f} | {book / fast:.2f} |\n")

    N, dtype = 100, np.float32
    xb, tb = problem(N, dtype)
    cases, nets, opts = {}, {}, {}
    for name in fastnn.optim.OPTIMIZERS:
        net = fastnn.Sequential(SIZES[0], list(SIZES[1:-1]), SIZES[-1], dtype=dtype, seed=0)
        opt = fastnn.optim.optimizer_named(name, lr=1e-4)
        nets[name], opts[name] = net, opt
        cases[name] = (lambda net=net, opt=opt: net.engine.step(xb, tb, opt))
    cases["gemm"] = step_cases(N, dtype)["gemm"]
    r = interleaved(cases, 2 if quick else 7)
    n = nets["sgd"].n_params
    bandwidth = _bandwidth(n, dtype)
    traffic = {"sgd": 3, "momentum": 5, "nesterov": 5, "adagrad": 5, "rmsprop": 5, "adam": 7}
    updates = {}
    for name, opt in opts.items():
        if name == "sgd":
            continue
        grads = nets[name].engine._grads
        updates[name] = (lambda net=nets[name], opt=opt, g=grads: opt.update_flat(net.params, g))
    u = interleaved(updates, 2 if quick else 7)
    print(f"## Each optimizer's training step, 784-128-128-10, batch {N}, float32, median us "
          f"(GEMM-only bound {r['gemm'] * 1e6:.0f} us; copy bandwidth "
          f"{bandwidth / 1e9:.1f} GB/s)\n")
    print("| optimizer | step | step / GEMM bound | update alone | update's traffic bound | "
          "update / bound |\n|---|---|---|---|---|---|")
    for name in fastnn.optim.OPTIMIZERS:
        bound = traffic[name] * n * np.dtype(dtype).itemsize / bandwidth
        if name == "sgd":
            upd = "(fused into the backward GEMMs)"
            ratio = "-"
        else:
            upd, ratio = f"{u[name] * 1e6:.1f}", f"{u[name] / bound:.2f}"
        print(f"| {name} | {r[name] * 1e6:.0f} | {r[name] / r['gemm']:.2f} | {upd} | "
              f"{bound * 1e6:.1f} | {ratio} |")
    print(f"\n(traffic: arrays read and written per parameter x {n:,} parameters x 4 bytes)\n")

    if not quick:
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache, FASTNN_NUMBA_CACHE="1")
            run = [sys.executable, "-c", _EXT_COMPILE_SNIPPET]
            cold = float(subprocess.run(run, env=env, check=True, capture_output=True,
                                        text=True).stdout)
            cached = float(subprocess.run(run, env=env, check=True, capture_output=True,
                                          text=True).stdout)
        print("## First use of an extended network (BatchNorm + Dropout + Adam, float64): "
              "compile time\n")
        print(f"| cold | from cache |\n|---|---|\n| {cold:.2f} s | {cached:.2f} s |\n")


# --- load: thread settings beside busy processes --------------------------------------------


def _busy(n: int):
    """Start n busy-loop processes (each holds a core); returns them for _stop."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def _stop(procs) -> None:
    for p in procs:
        p.kill()
        p.wait()


def report_load(rounds: int, quick: bool = False) -> None:
    """Training steps and `fastnn train` under 0, 1, 2 busy processes, for the automatic
    thread policy and each forced count."""
    from fastnn.kernels._threads import usable_cores

    import fastnn

    settings = ["auto", *range(1, usable_cores() + 1)]
    batches = (32,) if quick else (32, 1000)
    loads = (0, 1) if quick else (0, 1, 2)
    print("## Thread settings under load: 784-128-128-10 train_step, float32, median ms "
          "(busy = `python -c \"while True: pass\"` processes started by this script)\n")
    print("| busy processes | batch | " + " | ".join(f"threads {s}" for s in settings) +
          " | auto / best forced |")
    print("|---" * (len(settings) + 3) + "|")
    for load in loads:
        procs = _busy(load)
        try:
            time.sleep(0.3)
            for N in batches:
                x, t = problem(N, np.float32)
                nets = {}
                for setting in settings:
                    nets[setting] = fastnn.Sequential(784, [128, 128], 10, dtype=np.float32,
                                                      seed=0)
                opt = fastnn.SGD(lr=1e-4)

                def case(setting, nets=nets, x=x, t=t, opt=opt):
                    net = nets[setting]
                    xv, tv = net.validate(x, t)

                    def step():
                        fastnn.set_num_threads(None if setting == "auto" else setting)
                        net.engine.step(xv, tv, opt)
                    return step

                r = interleaved({str(s): case(s) for s in settings}, rounds)
                best = min(r[str(s)] for s in settings if s != "auto")
                cells = " | ".join(f"{r[str(s)] * 1e3:.3f}" for s in settings)
                print(f"| {load} | {N} | {cells} | {r['auto'] / best:.2f} |")
            if not quick:
                times = {}
                for setting in settings:
                    out = subprocess.run([sys.executable, "-m", "fastnn.cli", "train", "--json",
                                          "--threads", str(setting)], capture_output=True,
                                         text=True, check=True)
                    times[setting] = json.loads(out.stdout)["train_seconds"]
                print(f"| {load} | `fastnn train` (digits), s | " +
                      " | ".join(f"{times[s]:.2f}" for s in settings) +
                      f" | {times['auto'] / min(v for k, v in times.items() if k != 'auto'):.2f} |")
        finally:
            _stop(procs)
            fastnn.set_num_threads(None)
    print()


# --- sweep: trials on 1 process vs 2 local Dask workers -----------------------------------


def _sweep_seconds(trials: int, client=None, **training) -> float:
    """Seconds from the moment the trials can start (cluster connected) to the last one
    finished, for a sweep in this process (client None) or on ``client``."""
    from fastnn import sweeps as S

    plan = S.prepare(trials=trials, seed=0, client=client, workers=None if client else 1,
                     training=training)
    t = {}
    plan.run(on_start=lambda c: t.setdefault("start", time.perf_counter()),
             progress=lambda *a: t.update(last=time.perf_counter()))
    return t["last"] - t["start"]  # (the best trial's final run for the test set excluded)


_HERE = """
import json, sys, time
import fastnn
from fastnn import sweeps as S
fastnn.set_num_threads(1)
S.sweep(trials=1, workers=1, hidden=[16], epochs=1)  # the kernels loaded, as on a warm worker
plan = S.prepare(trials=int(sys.argv[1]), seed=0, workers=1, training=json.loads(sys.argv[2]))
t = {}
plan.run(on_start=lambda c: t.setdefault("start", time.perf_counter()),
         progress=lambda *a: t.update(last=time.perf_counter()))
print(t["last"] - t["start"])
"""


def _here_seconds(trials: int, **training) -> float:
    """_sweep_seconds in this process's stead: a fresh process that hosts no scheduler
    (the clusters' schedulers run in this one, and their threads would take turns with
    the trials' for the GIL)."""
    out = subprocess.run([sys.executable, "-c", _HERE, str(trials), json.dumps(training)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def report_sweep(quick: bool = False) -> None:
    """The book's random search on digits: one process (in-process trials, as
    ``--workers 1``) vs a local cluster of 1 and 2 single-threaded workers (warm: the
    cluster started and the kernels loaded before the timing), quiet and beside busy
    processes; and the per-trial cost of the cluster."""
    try:
        import distributed
    except ImportError:
        print("## Sweeps: skipped (needs `pip install distributed`)\n")
        return
    import logging

    logging.getLogger("distributed").setLevel(logging.ERROR)  # no INFO lines as clusters close
    trials = 6 if quick else 16
    rounds = 1 if quick else 3
    work = dict(epochs=5 if quick else 40)  # digits' defaults: 128-128, batch 32, SGD
    tiny = dict(hidden=[16], epochs=1)
    clusters = {n: distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                            dashboard_address=":0", silence_logs=logging.ERROR)
                for n in (1, 2)}
    clients = {n: distributed.Client(c) for n, c in clusters.items()}
    try:
        for c in clients.values():  # workers import fastnn and load the kernels once
            _sweep_seconds(2, c, **tiny)
        print(f"## Sweeps: {trials} trials of digits 64-128-128-10, {work['epochs']} epochs "
              f"each (the book's random search), seconds from the first trial's start to the "
              f"last one's end, median of "
              f"{rounds}\n")
        print("| busy processes | in-process | 1 worker | 2 workers | 2 workers vs 1 | "
              "2 workers vs in-process |\n|---|---|---|---|---|---|")
        for load in (0, 1) if quick else (0, 1, 2):
            procs = _busy(load)
            try:
                time.sleep(0.3)
                times = {k: [] for k in ("here", 1, 2)}
                for _ in range(rounds):  # interleaved
                    times["here"].append(_here_seconds(trials, **work))
                    for n, c in clients.items():
                        times[n].append(_sweep_seconds(trials, c, **work))
                med = {k: float(np.median(v)) for k, v in times.items()}
                print(f"| {load} | {med['here']:.2f} | {med[1]:.2f} | {med[2]:.2f} | "
                      f"{med[1] / med[2]:.2f}x | {med['here'] / med[2]:.2f}x |")
            finally:
                _stop(procs)
        short, n_short = dict(epochs=2 if quick else 5), 8 if quick else 32
        times = {k: [] for k in ("here", 1, 2)}
        for _ in range(rounds):
            times["here"].append(_here_seconds(n_short, **short))
            for n, c in clients.items():
                times[n].append(_sweep_seconds(n_short, c, **short))
        med = {k: float(np.median(v)) for k, v in times.items()}
        print(f"\nShort trials ({n_short} trials of {short['epochs']} epochs, about "
              f"{med['here'] / n_short * 1e3:.0f} ms each, quiet): in-process "
              f"{med['here']:.2f} s, 1 worker {med[1]:.2f} s, 2 workers {med[2]:.2f} s: "
              f"2 workers vs 1 {med[1] / med[2]:.2f}x, vs in-process "
              f"{med['here'] / med[2]:.2f}x")
        n_tiny = 10 if quick else 40
        here = float(np.median([_here_seconds(n_tiny, **tiny) for _ in range(rounds)]))
        one = float(np.median([_sweep_seconds(n_tiny, clients[1], **tiny)
                               for _ in range(rounds)]))
        print(f"\nPer-trial cost of the cluster ({n_tiny} trials of 64-16-10 for one epoch, "
              f"one worker vs in-process): {(one - here) / n_tiny * 1e3:.1f} ms a trial "
              f"(in-process {here / n_tiny * 1e3:.1f} ms, 1 worker {one / n_tiny * 1e3:.1f} "
              f"ms a trial)\n")
    finally:
        for c in clients.values():
            c.close()
        for c in clusters.values():
            c.close()
    t0 = time.perf_counter()
    from fastnn import sweeps as S

    S.sweep(trials=2, workers=2, seed=0, **tiny)
    print(f"A whole `fastnn.sweep(workers=2)` of two tiny trials, starting and stopping its "
          f"cluster: {time.perf_counter() - t0:.2f} s\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="fastnn bench" if os.environ.get("FASTNN_BENCH_PROG") else "compare.py",
        description="Side-by-side timings, interleaved in one process and reported as "
                    "medians and ratios: the training step (numpy backend, numba backend, "
                    "GEMM-only bound), the seed article's loop, memory, the compiled path for "
                    "small networks, compile times; with --peers PyTorch and scikit-learn.",
        epilog="Measurements and how to read them: docs/performance.md.")
    parser.add_argument("--batches", default="32,100,1000",
                        help="comma-separated batch sizes (default 32,100,1000)")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per table")
    parser.add_argument("--quick", action="store_true", help="one batch, few rounds: a smoke run")
    parser.add_argument("--peers", action="store_true",
                        help="also time PyTorch and scikit-learn when installed")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile-time run")
    parser.add_argument("--only", choices=("steps", "breakdown", "compiled", "chapter6", "load",
                                           "sweep"),
                        help="only the training-step tables, the per-kernel breakdown, the "
                             "compiled-path tables, the chapter-6 tables, the thread "
                             "settings under load or the sweep tables")
    args = parser.parse_args(argv)
    try:
        batches = [int(b) for b in args.batches.split(",")]
        dtypes = [np.dtype(d) for d in args.dtypes.split(",")]
    except (ValueError, TypeError) as exc:
        parser.error(f"--batches/--dtypes: {exc}")
    if args.quick:
        batches, dtypes, args.rounds = batches[:1], dtypes[:1], 2

    import numba

    print(f"# fastnn bench: numba {numba.__version__}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs, numba threads {numba.get_num_threads()}\n")
    if args.only == "compiled":
        report_compiled(args.quick)
        return 0
    if args.only == "breakdown":
        report_breakdown(batches, dtypes, args.rounds)
        return 0
    if args.only == "chapter6":
        report_chapter6(args.quick)
        return 0
    if args.only == "load":
        report_load(args.rounds, args.quick)
        return 0
    if args.only == "sweep":
        report_sweep(args.quick)
        return 0
    steps = report_steps(batches, dtypes, args.rounds)
    if args.only == "steps":
        return 0

    r = interleaved(article_cases(), args.rounds)
    print("## The seed article's loop, 784-128-128-10, batch 1000, float64, median ms\n")
    print("| article class | fastnn.Sequential | speed-up |\n|---|---|---|")
    print(f"| {_ms(r['article class'])} | {_ms(r['fastnn.Sequential'])} | "
          f"{r['article class'] / r['fastnn.Sequential']:.2f} |\n")

    print("## Peak memory allocated inside one steady-state step (numba, float32)\n")
    print("| batch | peak bytes |\n|---|---|")
    for N in sorted({*batches, 1000}):
        print(f"| {N} | {peak_step_memory(N, np.float32)} |")
    print("\n(gradient and work buffers are reused: nothing allocated grows with the batch)\n")

    report_compiled(args.quick)

    if not args.no_compile and not args.quick:
        cold, cached = compile_times()
        print("## First use: compile time of a training step (train_step, and gradient() + "
              "SGD.update), float64\n")
        print(f"| cold | from cache |\n|---|---|\n| {cold:.2f} s | {cached:.2f} s |\n")

    if args.peers:
        print("## Peers, each timed in its own block, median ms\n")
        _peer_table("PyTorch", "PyTorch eager", "float32",
                    torch_step_times(batches, args.rounds), steps, batches)
        _peer_table("scikit-learn", "MLPClassifier", "float64",
                    sklearn_step_times(batches, args.rounds), steps, batches)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``fastnn.warmup()`` / ``fastnn warmup``: compile every kernel variant ahead of first use.

A kernel compiles on its first call with new argument types (seconds: the network loop
about 6-7 s on a 2-core machine) and is then loaded from numba's cache (about 0.2 s).
Container images, CI jobs and cluster workers warm up once, ahead: each variant
(``VARIANTS``: the network loop, its BatchNorm/Dropout form with every optimizer (and
their update of a large network, in blocks), the per-layer ops, the convnets' conv and
pooling ops, the parallel forms of the network loop, the convolution and the blocked
update (where there are two cores or more); in float32 and float64) runs a tiny
workload in a process of its own, in parallel, so every kernel it calls is compiled into
the cache. A second pass then loads each variant in one process (fast when all is
cached; it compiles again anything two parallel writers of one cache index left out).
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

VARIANTS = ("network", "extended", "layers", "parallel", "convnet")
DTYPES = ("float32", "float64")


def _large_update(dt) -> None:
    """One optimizer update over a buffer of two blocks (``kernels.optim``: networks from
    about half a million parameters), on the thread count in force: its blocks' runner,
    shared by every optimizer, in the form for that count."""
    from . import kernels
    from .kernels._blocks import BLOCK_WORK
    from .kernels.optim import UPDATE_WORK

    p, g, m, v = np.zeros((4, 2 * (BLOCK_WORK // UPDATE_WORK)), dt)
    kernels.adam_update(p, g, m, v, 0.001, 0.9, 0.999, 1)


def run_variant(variant: str, dtype: str) -> None:
    """Run one variant's tiny workload in this process (what compiles its kernels)."""
    import fastnn

    dt = np.dtype(dtype)
    rng = np.random.default_rng(0)
    x = rng.random((12, 6)).astype(dt)
    labels = np.arange(12) % 3
    onehot = np.eye(3, dtype=dt)[labels]
    if variant == "network":
        for activation in ("relu", "sigmoid"):
            for loss, t in (("softmax", labels), ("softmax", onehot), ("mse", onehot)):
                net = fastnn.Sequential(6, [5], 3, activation=activation, loss=loss,
                                        dtype=dt, seed=0)
                net.predict(x)
                net.loss(x, t)
                net.accuracy(x, t)
                fastnn.SGD(0.01).update(net.params, net.gradient(x, t))
                net.train_step(x, t, fastnn.SGD(0.01))
                for compiled in (True, False):
                    fastnn.fit(net, x, t, x_test=x, t_test=t, batch_size=4, epochs=1,
                               progress=False, compiled=compiled)
    elif variant == "extended":
        for options in (dict(use_batchnorm=True), dict(use_dropout=True, dropout_ration=0.2),
                        dict(weight_decay_lambda=0.1)):
            for name in ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"):
                net = fastnn.MultiLayerNetExtend(6, [5, 4], 3, dtype=dt, seed=0, **options)
                net.train_step(x, labels, fastnn.optim.optimizer_named(name))
                net.predict(x, train_flg=False)
                net.accuracy(x, labels)
                fastnn.optim.optimizer_named(name).update(net.params, net.gradient(x, labels))
        _large_update(dt)
    elif variant == "parallel":  # the network kernels' parallel forms (blocks on threads)
        from .kernels import _blocks, _threads
        from .threads import usable_cores

        if usable_cores() < 2:  # (one core: never run here)
            return
        background, forced = _blocks.BACKGROUND, _threads.policy()
        _blocks.BACKGROUND = False  # (compiled in the call, not in the background)
        _threads.set_num_threads(2)
        try:
            for extended in (False, True):
                net = (fastnn.MultiLayerNetExtend(6, [5, 4], 3, dtype=dt, seed=0,
                                                  use_batchnorm=True) if extended else
                       fastnn.Sequential(6, [5], 3, dtype=dt, seed=0))
                net.train_step(x, labels, fastnn.SGD(0.01))
                net.train_step(x, labels, fastnn.SGD(0.01))  # (on the parallel form)
            # the convolution's parallel forms: a batch of several blocks of images
            from . import kernels

            images = rng.random((24, 1, 28, 28)).astype(dt)
            W, b = rng.random((30, 1, 5, 5)).astype(dt), np.zeros(30, dt)
            out, cache = kernels.conv_relu_forward(images, W, b, 1, 0, (2, 2, 2, 0))
            kernels.conv_relu_backward(out, cache, W, 1, 0, (2, 2, 2, 0))
            out, cache = kernels.conv_forward(images, W, b, 1, 0)
            kernels.conv_backward(out, cache, W, 1, 0)
            _large_update(dt)  # (the optimizers' update in blocks on threads)
        finally:
            _blocks.BACKGROUND = background
            _threads.set_num_threads(None if forced == "auto" else forced)
    elif variant == "layers":
        W, b = rng.random((6, 3)).astype(dt), rng.random(3).astype(dt)
        for layer in (fastnn.Affine(W, b, "numba"), fastnn.Relu("numba"),
                      fastnn.Sigmoid("numba"), fastnn.Tanh("numba")):
            out = layer.forward(x if isinstance(layer, fastnn.Affine) else onehot)
            layer.backward(np.ones_like(out))
        for last, t in ((fastnn.SoftmaxWithLoss("numba"), labels),
                        (fastnn.IdentityWithLoss("numba"), onehot)):
            last.forward(onehot, t)
            last.backward()
        bn = fastnn.BatchNormalization(np.ones(3, dt), np.zeros(3, dt), backend="numba")
        bn.backward(bn.forward(onehot, train_flg=True))
        drop = fastnn.Dropout(0.5, backend="numba")
        drop.backward(drop.forward(onehot, train_flg=True))
    elif variant == "convnet":  # the conv and pooling ops through both book convnets
        images = rng.random((4, 1, 8, 8)).astype(dt)
        for net in (fastnn.SimpleConvNet((1, 8, 8), {"filter_num": 2, "filter_size": 3,
                                                     "pad": 0, "stride": 1}, 4, 3,
                                         dtype=dt, seed=0),
                    fastnn.DeepConvNet((1, 8, 8), hidden_size=4, output_size=3, dtype=dt,
                                       seed=0)):
            net.train_step(images, labels[:4], fastnn.Adam())
            net.accuracy(images, labels[:4])
            net.loss(images, labels[:4])
        from . import kernels  # the book's im2col/col2im (serial kernels of their own)

        kernels.col2im(kernels.im2col(images, 3, 3, 1, 1), images.shape, 3, 3, 1, 1)
    else:
        raise ValueError(f"variant: expected one of {', '.join(VARIANTS)}, got {variant!r}")


def _check(dtypes, processes, progress) -> tuple[tuple[str, ...], int]:
    from . import _validation as V
    from .threads import usable_cores

    if isinstance(dtypes, (str, type, np.dtype)):  # one: "float32", np.float32
        dtypes = (dtypes,)
    try:
        dtypes = list(dtypes)
    except TypeError:
        raise V.BadType("dtypes", f"expected 'float32', 'float64' or a sequence of them, "
                                  f"got {dtypes!r}") from None
    if not dtypes:
        raise V.BadValue("dtypes", "expected at least one of 'float32', 'float64', got none")
    names = tuple(np.dtype(V.check_dtype(d, "dtypes")).name for d in dtypes)
    processes = usable_cores() if processes is None else V.check_positive_int(processes,
                                                                              "processes")
    V.check_bool(progress, "progress")
    return tuple(dict.fromkeys(names)), processes  # (each dtype once, in the given order)


def _run_process(variant: str, dtype: str) -> float:
    t0 = time.perf_counter()
    code = f"from fastnn.warmup_kernels import run_variant; run_variant({variant!r}, {dtype!r})"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"warmup: the {variant} kernels ({dtype}) failed to compile: {last}")
    return time.perf_counter() - t0


def warmup(dtypes=DTYPES, *, processes: int | None = None, progress: bool = True) -> dict:
    """Compile every kernel variant this install uses into numba's cache.

    Parameters
    ----------
    dtypes : str, dtype or sequence of them
        "float32", "float64" or both (default).
    processes : int, optional
        Parallel compiling processes (default: the usable cores).
    progress : bool
        A line on stderr as each variant is ready.

    Returns
    -------
    dict
        {(variant, dtype): seconds} of the compiling pass.
    """
    dtypes, processes = _check(dtypes, processes, progress)
    from .kernels import _cache

    jobs = [(v, d) for d in dtypes for v in VARIANTS]
    say = (lambda text: print(text, file=sys.stderr, flush=True)) if progress else \
        (lambda text: None)
    folder = _cache.usable_folder() if _cache.ENABLED else None
    if folder is None:
        say("warmup: the kernel cache is off here (FASTNN_NUMBA_CACHE=0, or no writable cache "
            "folder): nothing to warm; kernels compile on first use in each process")
        return {}
    seconds = {}
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=processes) as pool:
        futures = {job: pool.submit(_run_process, *job) for job in jobs}
        for n, (job, future) in enumerate(futures.items(), 1):
            seconds[job] = future.result()
            say(f"warmup: {n}/{len(jobs)} {job[0]} kernels ({job[1]}) ready in "
                f"{seconds[job]:.1f} s")
    # one process loads every variant: cached entries load fast, a lost one compiles
    code = "; ".join(["from fastnn.warmup_kernels import run_variant"]
                     + [f"run_variant({v!r}, {d!r})" for v, d in jobs])
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    say(f"warmup: done in {time.perf_counter() - t0:.1f} s; the kernels now load from the "
        f"cache ({folder})")
    return seconds

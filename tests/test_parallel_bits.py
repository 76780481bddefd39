"""The same bits on any thread count and any load: the kernels' fixed blocks.

One subprocess with NUMBA_NUM_THREADS=3 (3 threads on this 2-core machine too) forces
1, 2 and 3 threads in turn, then 2 beside a busy process, and each time trains two
networks, a plain float64 one and a float32 one with BatchNorm (and Dropout), on the
step path (SGD's fused step, Adam's gradient + update; ``fit`` with Adam) and on
``fit``'s compiled path (evaluating inside the kernel; BatchNorm without Dropout); it
prints a digest of the losses, the parameters and each History, one per network (the
convnets: tests/test_convnet.py, and the conv kernels on 3 threads:
tests/test_conv_kernels.py). The parallel forms of the kernels are compiled in the call
(FASTNN_BACKGROUND_COMPILE=0), so every step after the first runs on the threads; the
run checks that it did.

The dtypes are the ones the rest of the suite needs anyway: the plain network in
float64 (the default: a training on two threads elsewhere in the suite loads this
parallel form from the shared cache instead of compiling it in the background) and the
extended one in float32 (test_chapter6 needs its serial form too). The plain one
first: test_kernels (on the other worker, first too) reaches its network tests after
its per-layer compiles, and by then loads this serial form from the cache.
"""

import functools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from fastnn.kernels import _blocks, _threads, network
from numba.core import config as numba_config

import fastnn

_RUN = r"""
import hashlib, json, subprocess, sys, time, numpy as np, fastnn
from fastnn.kernels import _blocks, _threads, network

def of_history(history):
    record = history.to_dict()
    return repr([record[k] for k in sorted(record) if "seconds" not in k]).encode()

def digest_of(threads):
    _threads.set_num_threads(threads)  # (unchecked: 3 on a 2-core machine)
    rng = np.random.default_rng(0)
    digests = {}
    for dtype, extended in ((np.float64, False), (np.float32, True)):
        digest = hashlib.sha256()
        x = rng.random((420, 40)).astype(dtype)
        t = rng.integers(0, 10, 420)
        def net(dropout=True):
            if extended:
                return fastnn.MultiLayerNetExtend(40, [700, 96], 10, use_batchnorm=True,
                                                  use_dropout=dropout, dropout_ration=0.1,
                                                  dtype=dtype, seed=1)
            return fastnn.Sequential(40, [700, 96], 10, dtype=dtype, seed=1)
        a = net()
        sgd, adam = fastnn.SGD(0.05), fastnn.Adam(0.01)
        for i in range(3):
            digest.update(np.float64(a.train_step(x[:400], t[:400], sgd)).tobytes())
            digest.update(np.float64(a.train_step(x[20:], t[20:], adam)).tobytes())
        digest.update(a.engine.params.flat.tobytes())
        # a small batch: one row block, its first layer's products cut by W's columns
        # and the weight pass by features (affine_act.small_batch_grains)
        rows = 32 if dtype == np.float64 else 64
        small = (
            fastnn.MultiLayerNetExtend(300, [256], 10, use_batchnorm=True, use_dropout=True,
                                       dropout_ration=0.1, dtype=dtype, seed=1)
            if extended else fastnn.Sequential(300, [256], 10, dtype=dtype, seed=1))
        xs = rng.random((rows, 300)).astype(dtype)
        adam = fastnn.Adam(0.01)
        for i in range(3):
            digest.update(np.float64(small.train_step(xs, t[:rows], sgd)).tobytes())
            digest.update(np.float64(small.train_step(xs, t[:rows], adam)).tobytes())
        digest.update(small.engine.params.flat.tobytes() + small.predict(xs).tobytes())
        # fit's compiled path (BatchNorm, without Dropout, for the extended network), then
        # its step path (Adam; with Dropout for the extended one): History and parameters
        b = net(dropout=False)
        history = fastnn.fit(b, x, t, x_test=x[:300], t_test=t[:300], batch_size=400,
                             epochs=3, seed=0, progress=False, compiled=True)
        digest.update(of_history(history) + b.engine.params.flat.tobytes())
        digest.update(np.float64(b.accuracy(x, t)).tobytes())
        c = net()
        history = fastnn.fit(c, x, t, x_test=x[:300], t_test=t[:300], batch_size=400,
                             epochs=2, seed=0, optimizer=fastnn.Adam(0.01), progress=False)
        assert history.path == "step"
        digest.update(of_history(history) + c.engine.params.flat.tobytes())
        digests["extended" if extended else "plain"] = digest.hexdigest()
    return digests

def built():  # the network kernel's parallel forms compiled so far
    return [name for name, ext in (("plain", False), ("extended", True))
            if any(k is network._kernel(ext, True) for k, _ in _blocks._builds)]

for threads in (1, 2, 3):
    print(json.dumps([digest_of(threads), built()]))
busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
try:
    time.sleep(0.1)
    print(json.dumps([digest_of(2), "busy"]))
finally:
    busy.kill()
    busy.wait()
"""


@pytest.mark.skipif(numba_config.DISABLE_JIT, reason="threads need compiled code")
def test_one_two_and_three_threads_and_a_busy_process_give_the_same_bits():
    env = dict(os.environ, NUMBA_NUM_THREADS="3", FASTNN_BACKGROUND_COMPILE="0")
    out = subprocess.run([sys.executable, "-c", _RUN], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    (one, serial), (two, parallel), (three, _), (loaded, _) = \
        [json.loads(line) for line in out.stdout.strip().splitlines()]
    assert serial == []  # one thread: the serial forms only
    assert parallel == ["plain", "extended"]  # two: both networks ran on the parallel form
    assert sorted(one) == ["extended", "plain"]
    assert one == two == three == loaded


@pytest.mark.skipif(numba_config.DISABLE_JIT or _threads.usable_cores() < 2,
                    reason="threads need compiled code and two usable cores")
def test_the_parallel_form_compiles_in_the_background_and_is_used_once_ready(monkeypatch):
    """The first calls on threads run the serial form; the START_AFTER-th starts the
    parallel one's compilation (here: its cache load) in a thread; later calls use it;
    the bits agree."""
    monkeypatch.setattr(_blocks, "BACKGROUND", True)
    monkeypatch.setattr(_blocks, "_builds", {})
    monkeypatch.setattr(_blocks, "_wants", {})
    monkeypatch.setattr(network, "_kernel", functools.cache(network._kernel.__wrapped__))
    rng = np.random.default_rng(0)
    x, t = rng.random((420, 40)), rng.integers(0, 10, 420)  # (float64: the form above)

    def losses(threads):
        fastnn.set_num_threads(threads)
        net = fastnn.Sequential(40, [700, 96], 10, seed=1)
        out = []
        for _ in range(_blocks.START_AFTER):  # (the build starts at the last of these)
            out.append(net.train_step(x[:400], t[:400], fastnn.SGD(0.05)))
            if threads > 1 and len(out) < _blocks.START_AFTER:
                assert _blocks._builds == {}  # (not yet: the first calls' compiles first)
        for thread in _blocks._builds.values():
            thread.join()  # (the parallel form is ready: the next steps run on it)
        out += [net.train_step(x[:400], t[:400], fastnn.SGD(0.05)) for _ in range(2)]
        return out, net.engine.params.flat.copy()

    try:
        (serial, params1) = losses(1)
        assert _blocks._builds == {}
        (threaded, params2) = losses(2)
    finally:
        fastnn.set_num_threads(None)
    (key, thread), = _blocks._builds.items()
    assert not thread.is_alive() and len(network._kernel(False, True).signatures) == 1
    assert serial == threaded
    np.testing.assert_array_equal(params1, params2)

"""kernels._blocks: the fixed cut (shapes only) and the dynamically scheduled runner."""

import numba
import numpy as np
import pytest
from fastnn.kernels import _blocks as B
from fastnn.kernels._config import compiled
from numba.core import config as numba_config

THREADS = min(numba.config.NUMBA_NUM_THREADS, 3)


@pytest.mark.parametrize("n, per, least", [(1, 1, 1), (7, 100, 1), (1000, 784 * 128, 64),
                                           (1000, 1280, 64), (333, 1, 4096), (785, 4096, 8)])
def test_the_cut_covers_the_pass_once_in_order(n, per, least):
    g = B.grain(n, per, least)
    assert 1 <= g <= n and (g == n or g % 8 == 0) and (g >= least or g == n)
    nb = B.n_blocks(n, g)
    ranges = [B.block_of(blk, n, g) for blk in range(nb)]
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(ranges, ranges[1:]))


@compiled
def _square_block(blk, out, x, g, who):
    start, stop = B.block_of(blk, x.shape[0], g)
    for i in range(start, stop):
        s = 0.0
        for k in range(1, 60):  # (a little work: blocks in flight together)
            s += x[i] / k
        out[i] = s
    B.fetch_add(who, blk, 1)


_square = B.runner(_square_block)


def test_every_block_runs_once_and_the_bits_do_not_depend_on_the_thread_count():
    x = np.random.default_rng(0).standard_normal(1003)
    g = B.grain(x.shape[0], 1, 16)
    nb = B.n_blocks(x.shape[0], g)
    results = []
    for threads in range(1, THREADS + 1):
        numba.set_num_threads(threads)
        out, who = np.full_like(x, np.nan), np.zeros(nb, np.int64)
        _square(nb, (out, x, g, who))
        assert (who == 1).all()
        results.append(out)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for out in results[1:]:
        assert np.array_equal(out, results[0])


@compiled
def _wait_block(blk, done, spins):
    """Block 0 waits until every other block is done (or gives up after ``spins``)."""
    if blk == 0:
        for _ in range(spins):
            if B.fetch_add(done, 0, 0) == done[1]:
                done[2] = 1
                return
    else:
        B.fetch_add(done, 0, 1)


_wait = B.runner(_wait_block)


@pytest.mark.skipif(numba_config.DISABLE_JIT or numba.config.NUMBA_NUM_THREADS < 2,
                    reason="scheduling on threads needs compiled code and 2 threads")
def test_the_blocks_are_handed_out_dynamically():
    """While one thread is stuck in block 0, another takes every other block: with
    blocks dealt out in fixed shares (numba's own scheduling) half of them would wait
    behind block 0 and it would never see them done."""
    numba.set_num_threads(2)
    try:
        done = np.array([0, 15, 0], np.int64)  # (done so far, blocks to wait for, seen)
        _wait(16, (done, 1 << 31))
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert done[0] == 15 and done[2] == 1


@pytest.mark.skipif(numba_config.DISABLE_JIT, reason="no compiled forms without the JIT")
def test_threads_wanting_one_parallel_form_start_one_build(monkeypatch):
    """Python threads calling kernels at once (a threaded Dask worker's trials): the
    books of wanted and started builds stay whole, and one form is built once."""
    import sys
    import threading
    import time

    @compiled
    def doubled(x):
        return 2 * x

    kernel = B.deferred(doubled)
    started = []

    def build(k, signature):  # (records the build instead of compiling)
        started.append(signature)
        time.sleep(0.05)

    monkeypatch.setattr(B, "_build", build)
    monkeypatch.setattr(B, "_builds", {})
    monkeypatch.setattr(B, "_wants", {})
    monkeypatch.setattr(B, "BACKGROUND", True)
    monkeypatch.setattr(B, "START_AFTER", 2)
    results, errors = [], []

    def calls():
        try:
            for _ in range(50):
                results.append(B.when_compiled(kernel, (np.arange(3.0),), lambda: "serial"))
        except Exception as e:  # (a thread's exception would otherwise be lost)
            errors.append(e)

    threads = [threading.Thread(target=calls) for _ in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # (the GIL changes hands between any two bytecodes)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    for t in list(B._builds.values()):
        t.join()
    assert errors == []
    assert results == ["serial"] * 400  # (never built here: the serial form each time)
    assert len(started) == 1 and len(B._builds) == 1

"""Shared test helpers: random problems, tolerances, the book-style baseline network."""

import contextlib
import subprocess
import sys
import time

import numpy as np

from fastnn.layers import ACTIVATIONS

BACKENDS = ["numpy", "numba"]
# every registered hidden activation: a new one is tested wherever these are
HIDDEN_ACTIVATIONS = list(ACTIVATIONS)
DTYPES = [np.float32, np.float64]

# Kernel vs reference. float64: the same math in the same order up to libm's last bit.
# float32: kernels accumulate in float64 where the reference sums in float32, so the
# difference grows with the reduction length; the atol is scaled by it in `tol`.
TOL = {
    np.dtype(np.float64): dict(rtol=1e-12, atol=1e-13),
    np.dtype(np.float32): dict(rtol=2e-5, atol=1e-6),
}


def tol(dtype, reduce_len=1, scale=1.0):
    """Tolerances for an array reduced over ``reduce_len`` terms of magnitude ``scale``."""
    t = TOL[np.dtype(dtype)]
    return dict(rtol=t["rtol"], atol=t["atol"] * max(1.0, reduce_len ** 0.5) * scale)


def layout(a, kind):
    """The same values in another memory layout: "C", "F" (Fortran) or "strided"."""
    if kind == "F":
        return np.asfortranarray(a)
    if kind == "strided":
        wide = np.zeros((a.shape[0], 2 * a.shape[1]), a.dtype)
        wide[:, ::2] = a
        return wide[:, ::2]
    return a


def assert_close(comp, ref, dtype, reduce_len=1, scale=1.0):
    """comp has the dtype and matches ref within ``tol``."""
    assert comp.dtype == np.dtype(dtype), (comp.dtype, dtype)
    np.testing.assert_allclose(comp, ref, **tol(dtype, reduce_len, scale))


def random_problem(N, D, H, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, D)).astype(dtype)
    W = (rng.standard_normal((D, H)) / np.sqrt(D)).astype(dtype)
    b = (0.1 * rng.standard_normal(H)).astype(dtype)
    return x, W, b


def one_hot(labels, C, dtype=np.float64):
    out = np.zeros((labels.size, C), dtype)
    out[np.arange(labels.size), labels] = 1
    return out


def sigint_default():
    """Popen's preexec_fn for a child that a test interrupts: Ctrl-C's default action (a
    job started in the background, as CI may start the tests, inherits SIGINT ignored,
    and Python then never raises KeyboardInterrupt)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def busy_process():
    """A busy-loop process beside the block (it holds a core), stopped after it."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)  # (running by the time the block starts)
        yield busy
    finally:
        busy.kill()
        busy.wait()

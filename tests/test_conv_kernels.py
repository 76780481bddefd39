"""The convolution and pooling kernels against their NumPy twins (``fastnn.reference.conv``).

Every op in float32 and float64; batch 1 and odd sizes (H != W, 1x1 and 7x7 filters,
strides 1-3, padding 0-2, 1 and 3 channels); non-contiguous inputs; extreme values and
ties (the first maximum of a pooling window gets the gradient); the adjointness of
im2col and col2im; gradient checks by central differences on both backends; the same
bits on 1, 2 and 3 numba threads.
"""

import subprocess
import sys

import numpy as np
import pytest
from _helpers import BACKENDS, DTYPES, assert_close
from numba.core import config as numba_config

import fastnn
from fastnn import kernels, reference

OPS = {"numpy": reference, "numba": kernels}

# (N, C, H, W, FN, FH, FW, stride, pad)
CONV_CASES = [
    (1, 1, 5, 5, 1, 1, 1, 1, 0),     # batch 1, a 1x1 filter
    (2, 3, 7, 9, 4, 3, 3, 1, 1),     # H != W, 3 channels
    (3, 1, 10, 8, 2, 7, 7, 1, 2),    # a 7x7 filter
    (2, 3, 9, 11, 5, 3, 2, 2, 1),    # stride 2, a 3x2 filter
    (1, 3, 11, 10, 3, 5, 3, 3, 2),   # stride 3, pad 2
    (2, 2, 4, 3, 3, 7, 7, 1, 2),     # the filter larger than the image, not the padded one
]
# (N, C, H, W, pool_h, pool_w, stride, pad)
POOL_CASES = [
    (1, 1, 4, 4, 2, 2, 2, 0),
    (2, 3, 7, 9, 2, 2, 2, 0),        # odd sizes: the last row and column left out
    (2, 3, 7, 9, 3, 3, 2, 1),        # overlapping windows, padding
    (1, 1, 8, 5, 3, 2, 3, 2),        # stride 3, pad 2
    (2, 2, 6, 6, 1, 1, 1, 0),
]
LAYOUTS = ["C", "sliced", "transposed"]


def noncontiguous(a, kind):
    """The same values in another memory layout (never C-contiguous unless "C")."""
    if kind == "sliced":
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        wide[..., ::2] = a
        out = wide[..., ::2]
    elif kind == "transposed":
        out = np.ascontiguousarray(np.swapaxes(a, -1, -2)).swapaxes(-1, -2)
    else:
        return a
    assert a.shape[-1] == 1 or not out.flags.c_contiguous
    return out


def conv_problem(case, dtype, seed=0, scale=1.0):
    N, C, H, W, FN, FH, FW, stride, pad = case
    rng = np.random.default_rng(seed)
    x = (scale * rng.standard_normal((N, C, H, W))).astype(dtype)
    Wt = (rng.standard_normal((FN, C, FH, FW)) / np.sqrt(C * FH * FW)).astype(dtype)
    b = (0.1 * rng.standard_normal(FN)).astype(dtype)
    return x, Wt, b, stride, pad


def out_shape(case):
    N, C, H, W, FN, FH, FW, stride, pad = case
    return N, FN, 1 + (H + 2 * pad - FH) // stride, 1 + (W + 2 * pad - FW) // stride


def pool_problem(case, dtype, seed=0):
    N, C, H, W, ph, pw, stride, pad = case
    x = np.random.default_rng(seed).standard_normal((N, C, H, W)).astype(dtype)
    return x, ph, pw, stride, pad


# --- kernel = reference ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_im2col_and_col2im(case, dtype):
    x, Wt, _, stride, pad = conv_problem(case, dtype)
    FH, FW = Wt.shape[2:]
    col = kernels.im2col(noncontiguous(x, "sliced"), FH, FW, stride, pad)
    np.testing.assert_array_equal(col, reference.im2col(x, FH, FW, stride, pad))
    assert col.dtype == dtype
    c = np.random.default_rng(1).standard_normal(col.shape).astype(dtype)
    comp = kernels.col2im(noncontiguous(c, "transposed"), x.shape, FH, FW, stride, pad)
    assert_close(comp, reference.col2im(c, x.shape, FH, FW, stride, pad), dtype,
                 reduce_len=FH * FW)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CONV_CASES)
def test_im2col_and_col2im_are_adjoint(case, backend):
    """<im2col(x), c> == <x, col2im(c)>: col2im adds each window back where it came from."""
    ops = OPS[backend]
    x, Wt, _, stride, pad = conv_problem(case, np.float64)
    FH, FW = Wt.shape[2:]
    col = ops.im2col(x, FH, FW, stride, pad)
    c = np.random.default_rng(2).standard_normal(col.shape)
    lhs, rhs = np.vdot(col, c), np.vdot(x, ops.col2im(c, x.shape, FH, FW, stride, pad))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_forward_and_backward(case, dtype, kind):
    x, Wt, b, stride, pad = conv_problem(case, dtype, seed=sum(case))
    K = Wt[0].size
    ref_out, ref_cache = reference.conv_forward(x, Wt, b, stride, pad)
    out, cache = kernels.conv_forward(noncontiguous(x, kind), noncontiguous(Wt, kind), b,
                                      stride, pad)
    assert out.shape == out_shape(case)
    assert_close(out, ref_out, dtype, reduce_len=K)
    dout = np.random.default_rng(3).standard_normal(out.shape).astype(dtype)
    ref = reference.conv_backward(dout, ref_cache, Wt, stride, pad)
    comp = kernels.conv_backward(noncontiguous(dout, kind), cache, noncontiguous(Wt, kind),
                                 stride, pad)
    rows = out.shape[0] * out.shape[2] * out.shape[3]
    for name, c, r, reduce_len in zip(("dx", "dW", "db"), comp, ref,
                                      (Wt.shape[0] * Wt[0, 0].size, rows, rows)):
        assert c.shape == r.shape, name
        assert_close(c, r, dtype, reduce_len=reduce_len)


@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES)
def test_pool_forward_and_backward(case, dtype, kind):
    x, ph, pw, stride, pad = pool_problem(case, dtype, seed=sum(case))
    ref_out, ref_cache = reference.pool_forward(x, ph, pw, stride, pad)
    out, cache = kernels.pool_forward(noncontiguous(x, kind), ph, pw, stride, pad)
    np.testing.assert_array_equal(out, ref_out)
    assert out.dtype == dtype
    dout = np.random.default_rng(4).standard_normal(out.shape).astype(dtype)
    dx = kernels.pool_backward(noncontiguous(dout, kind), cache, ph, pw, stride, pad)
    assert_close(dx, reference.pool_backward(dout, ref_cache, ph, pw, stride, pad), dtype,
                 reduce_len=ph * pw)


# --- a Convolution, a Relu and a Pooling fused: the unfused ops' bits -----------------

POOLS = [None, (2, 2, 2, 0), (3, 2, 2, 1), (2, 2, 3, 2)]


def unfused(x, Wt, b, stride, pad, pool, dout):
    """The three ops' kernels in turn, forward then backward."""
    out, cache = kernels.conv_forward(x, Wt, b, stride, pad)
    y = kernels.relu_forward(out)
    z, pcache = kernels.pool_forward(y, *pool) if pool else (y, None)
    dy = kernels.pool_backward(dout, pcache, *pool) if pool else dout
    return (z, y, *kernels.conv_backward(kernels.relu_backward(dy, y), cache, Wt, stride,
                                         pad))


@pytest.mark.parametrize("values", ["normal", "ties", "nan"])
@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("case", CONV_CASES[:5])
def test_conv_relu_pool_fused_gives_the_unfused_bits(case, pool, dtype, kind, values):
    """``conv_relu_forward`` / ``conv_relu_backward`` = the three ops in turn, bit for
    bit (and the reference's twin within tolerance): odd shapes, strides 1-3, padding,
    non-contiguous inputs, ties (zeros: the ReLU's and the padding's) and NaN."""
    x, Wt, b, stride, pad = conv_problem(case, dtype, seed=sum(case))
    if values == "ties":
        x, Wt = np.round(x), np.round(4 * Wt)  # (integer sums: exact ties, many zeros)
    elif values == "nan":
        x.ravel()[np.random.default_rng(6).choice(x.size, 3, replace=False)] = np.nan
    N, FN, OH, OW = out_shape(case)
    if pool and (pool[0] > OH + 2 * pool[3] or pool[1] > OW + 2 * pool[3]):
        pytest.skip("the pooling window does not fit")
    z_shape = (N, FN, 1 + (OH + 2 * pool[3] - pool[0]) // pool[2],
               1 + (OW + 2 * pool[3] - pool[1]) // pool[2]) if pool else (N, FN, OH, OW)
    dout = np.random.default_rng(7).standard_normal(z_shape).astype(dtype)
    z, y, dx, dW, db = unfused(x, Wt, b, stride, pad, pool, dout)
    out, cache = kernels.conv_relu_forward(noncontiguous(x, kind), noncontiguous(Wt, kind),
                                           b, stride, pad, pool)
    np.testing.assert_array_equal(out, z)
    if pool is None:  # (with pooling the kernel keeps no Relu output)
        np.testing.assert_array_equal(cache[1], y)
    for need_dx in (True, False):
        comp = kernels.conv_relu_backward(noncontiguous(dout, kind), cache,
                                          noncontiguous(Wt, kind), stride, pad, pool,
                                          need_dx)
        np.testing.assert_array_equal(comp[0], dx if need_dx else None)
        np.testing.assert_array_equal(comp[1], dW)
        np.testing.assert_array_equal(comp[2], db)
    if values == "normal":  # (the twin: NaN and the ReLU's kinks aside)
        ref_out, ref_cache = reference.conv_relu_forward(x, Wt, b, stride, pad, pool)
        assert_close(out, ref_out, dtype, reduce_len=Wt[0].size)
        ref = reference.conv_relu_backward(dout, ref_cache, Wt, stride, pad, pool)
        rows = N * OH * OW
        for c, r, reduce_len in zip(comp[1:], ref[1:], (rows, rows)):
            assert_close(c, r, dtype, reduce_len=reduce_len)


# --- extremes and ties ----------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [CONV_CASES[1], CONV_CASES[4]])
def test_conv_with_large_magnitudes(case, dtype):
    scale = 1e30 if dtype == np.float32 else 1e300  # products near the top of the range
    x, Wt, b, stride, pad = conv_problem(case, dtype, scale=scale * 1e-3)
    ref_out, ref_cache = reference.conv_forward(x, Wt, b, stride, pad)
    out, cache = kernels.conv_forward(x, Wt, b, stride, pad)
    assert np.isfinite(out).all()
    assert_close(out, ref_out, dtype, reduce_len=Wt[0].size, scale=scale)
    dout = np.ones_like(out)
    for c, r in zip(kernels.conv_backward(dout, cache, Wt, stride, pad),
                    reference.conv_backward(dout, ref_cache, Wt, stride, pad)):
        np.testing.assert_allclose(c, r, rtol=1e-4 if dtype == np.float32 else 1e-11)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES[1:4])
@pytest.mark.parametrize("values", ["ties", "negative", "-inf", "nan"])
def test_pool_extremes_and_ties_first_maximum_wins(case, dtype, values):
    """Ties: the first maximum of a window (row by row) gets the gradient, as
    ``np.argmax`` picks it in the book; the padding's zeros take part as in the book's
    ``im2col``; NaN is a maximum (np.max / np.argmax)."""
    x, ph, pw, stride, pad = pool_problem(case, dtype)
    rng = np.random.default_rng(5)
    if values == "ties":
        x = rng.integers(-1, 2, x.shape).astype(dtype)  # mostly ties, zeros like the padding
    elif values == "negative":
        x = -np.abs(x) - 1
    elif values == "-inf":
        x = np.full(x.shape, -np.inf, dtype)
    else:
        x.ravel()[rng.choice(x.size, 5, replace=False)] = np.nan
    ref_out, ref_cache = reference.pool_forward(x, ph, pw, stride, pad)
    out, cache = kernels.pool_forward(x, ph, pw, stride, pad)
    np.testing.assert_array_equal(out, ref_out)
    dout = np.arange(1, out.size + 1, dtype=dtype).reshape(out.shape)  # who got what
    np.testing.assert_array_equal(kernels.pool_backward(dout, cache, ph, pw, stride, pad),
                                  reference.pool_backward(dout, ref_cache, ph, pw, stride, pad))


def test_pool_ties_give_the_gradient_to_the_first_maximum():
    x = np.array([[[[1.0, 3.0], [3.0, 3.0]]]])
    for ops in OPS.values():
        out, cache = ops.pool_forward(x, 2, 2, 2, 0)
        assert out[0, 0, 0, 0] == 3.0
        dx = ops.pool_backward(np.array([[[[5.0]]]]), cache, 2, 2, 2, 0)
        np.testing.assert_array_equal(dx, [[[[0.0, 5.0], [0.0, 0.0]]]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_ops_leave_their_inputs_alone(backend):
    ops = OPS[backend]
    x, Wt, b, stride, pad = conv_problem(CONV_CASES[1], np.float64)
    saved = [a.copy() for a in (x, Wt, b)]
    out, cache = ops.conv_forward(x, Wt, b, stride, pad)
    dout = np.ones_like(out)
    ops.conv_backward(dout, cache, Wt, stride, pad)
    pout, pcache = ops.pool_forward(x, 3, 3, 2, 1)
    ops.pool_backward(np.ones_like(pout), pcache, 3, 3, 2, 1)
    col = ops.im2col(x, 3, 3, 1, 1)
    col_saved = col.copy()
    ops.col2im(col, x.shape, 3, 3, 1, 1)
    for a, s in zip((x, Wt, b, col), saved + [col_saved]):
        np.testing.assert_array_equal(a, s)
    assert (dout == 1).all()


# --- gradient checks (central differences, float64) -------------------------------------


def numerical_gradient(f, a, eps=1e-6):
    grad = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + eps
        up = f()
        a[i] = old - eps
        down = f()
        a[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", [(2, 2, 5, 6, 3, 3, 3, 1, 1), (1, 3, 7, 6, 2, 3, 2, 2, 2)])
def test_conv_backward_is_the_gradient(case, backend):
    ops = OPS[backend]
    x, Wt, b, stride, pad = conv_problem(case, np.float64, seed=7)
    r = np.random.default_rng(8).standard_normal(out_shape(case))

    def loss():  # a fixed random projection of the output
        return float(np.sum(ops.conv_forward(x, Wt, b, stride, pad)[0] * r))

    _, cache = ops.conv_forward(x, Wt, b, stride, pad)
    dx, dW, db = ops.conv_backward(r, cache, Wt, stride, pad)
    for analytic, a in ((dx, x), (dW, Wt), (db, b)):
        np.testing.assert_allclose(analytic, numerical_gradient(loss, a), rtol=1e-6,
                                   atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", [POOL_CASES[1], POOL_CASES[2]])
def test_pool_backward_is_the_gradient(case, backend):
    ops = OPS[backend]
    x, ph, pw, stride, pad = pool_problem(case, np.float64, seed=9)
    out, cache = ops.pool_forward(x, ph, pw, stride, pad)
    r = np.random.default_rng(10).standard_normal(out.shape)

    def loss():
        return float(np.sum(ops.pool_forward(x, ph, pw, stride, pad)[0] * r))

    np.testing.assert_allclose(ops.pool_backward(r, cache, ph, pw, stride, pad),
                               numerical_gradient(loss, x), rtol=1e-6, atol=1e-8)


# --- the same bits on any thread count --------------------------------------------------

# big enough for several blocks each (kernels._blocks.grain: the cut by shapes only)
THREADS_CONV = (40, 3, 16, 16, 32, 5, 5, 1, 1)
THREADS_POOL = (130, 8, 32, 32, 3, 3, 1, 0)


def _digest_of_runs(dtype):
    """Every result of conv forward/backward and pooling on the threads' problems."""
    x, Wt, b, stride, pad = conv_problem(THREADS_CONV, dtype, seed=11)
    out, cache = kernels.conv_forward(x, Wt, b, stride, pad)
    dout = np.random.default_rng(12).standard_normal(out.shape).astype(dtype)
    results = [out, *kernels.conv_backward(dout, cache, Wt, stride, pad)]
    px, ph, pw, pstride, ppad = pool_problem(THREADS_POOL, dtype, seed=13)
    pout, pcache = kernels.pool_forward(px, ph, pw, pstride, ppad)
    results += [pout, kernels.pool_backward(pout, pcache, ph, pw, pstride, ppad)]
    fout, fcache = kernels.conv_relu_forward(x, Wt, b, stride, pad, (2, 2, 2, 0))
    results += [fout, *kernels.conv_relu_backward(fout, fcache, Wt, stride, pad,
                                                  (2, 2, 2, 0))]
    return results


def _ran_on_threads():
    """The parallel forms of the passes of several blocks (``_several_blocks``) have
    been compiled, and so used (``_blocks`` compiles one when a call on threads first
    wants it, here in that call)."""
    from fastnn.kernels import conv

    return all(conv._RUN[body].parallel.signatures for body in (
        conv._conv_forward_block, conv._conv_backward_block, conv._pool_forward_block))


def _several_blocks():
    from fastnn.kernels import _blocks

    N, C, H, W, FN, FH, FW, stride, pad = THREADS_CONV
    work = H * W * FN * C * FH * FW  # (pad 1, 5x5: OH*OW < H*W; a lower bound is enough)
    assert _blocks.n_blocks(N, _blocks.grain(N, work, 1)) > 1
    N, C, H, W, ph, pw, stride, pad = THREADS_POOL
    work = C * (H - ph + 1) * (W - pw + 1) * ph * pw
    assert _blocks.n_blocks(N, _blocks.grain(N, work, 1)) > 1


@pytest.mark.skipif(numba_config.DISABLE_JIT, reason="threads need compiled code")
@pytest.mark.skipif(fastnn.threads.usable_cores() < 2, reason="needs 2 usable cores")
@pytest.mark.parametrize("dtype", DTYPES)
def test_the_bits_do_not_depend_on_the_thread_count(dtype, monkeypatch):
    from fastnn.kernels import _blocks

    _several_blocks()
    monkeypatch.setattr(_blocks, "BACKGROUND", False)  # (the parallel forms in the call)
    try:
        fastnn.set_num_threads(1)
        one = _digest_of_runs(dtype)
        fastnn.set_num_threads(2)
        two = _digest_of_runs(dtype)
        assert _ran_on_threads()
    finally:
        fastnn.set_num_threads(None)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(numba_config.DISABLE_JIT, reason="threads need compiled code")
def test_three_threads_give_the_bits_of_one():
    """NUMBA_NUM_THREADS=3 in a child (more threads than this machine may have cores:
    the count forced unchecked), against one thread here."""
    code = (
        "import sys, numpy as np; sys.path.insert(0, sys.argv[1])\n"
        "import numba, fastnn; from fastnn.kernels import _threads\n"
        "_threads.set_num_threads(3)\n"
        "import test_conv_kernels as t\n"
        "np.savez(sys.argv[2], *t._digest_of_runs(np.float64))\n"
        "assert t._ran_on_threads()\n"
        "print(numba.get_num_threads(), numba.config.NUMBA_NUM_THREADS)\n"
    )
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "three.npz")
        done = subprocess.run([sys.executable, "-c", code, os.path.dirname(__file__), path],
                              env=dict(os.environ, NUMBA_NUM_THREADS="3",
                                       FASTNN_BACKGROUND_COMPILE="0"),
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split()[-1] == "3"
        with np.load(path) as three:
            others = [three[f"arr_{i}"] for i in range(len(three.files))]
    try:
        fastnn.set_num_threads(1)
        one = _digest_of_runs(np.float64)
    finally:
        fastnn.set_num_threads(None)
    for a, b in zip(one, others):
        np.testing.assert_array_equal(a, b)

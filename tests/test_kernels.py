"""Every numba kernel against its NumPy twin: dtypes, odd shapes, layouts, extremes.

Tolerances come from one table (``_helpers.TOL``). The reference is the specification:
``ref = reference.f(...)``, ``comp = kernels.f(...)``, ``assert_allclose(comp, ref)``.
"""

import functools

import numpy as np
import pytest
from _helpers import DTYPES, HIDDEN_ACTIVATIONS, assert_close, layout, one_hot, random_problem, tol
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastnn import kernels, reference
from fastnn.params import layout_of

# (64, 301, 263): one row block cut by W's columns and dW's rows (the small-batch cut)
SHAPES = [(1, 1, 1), (1, 7, 3), (3, 13, 7), (7, 1, 13), (127, 13, 3), (64, 301, 263),
          pytest.param(1000, 784, 128, marks=pytest.mark.large)]
LAYOUTS = ["C", "F", "strided"]


def approx_loss(ref, dtype, reduce_len, scale):
    t = tol(dtype, reduce_len, scale)
    return pytest.approx(ref, rel=t["rtol"], abs=t["atol"])


def upstream(N, H, dtype, seed):
    return np.random.default_rng(seed).standard_normal((N, H)).astype(dtype)


def test_kernels_expose_the_reference_names_and_signatures():
    import inspect

    for name in reference.__all__:
        assert hasattr(kernels, name), name
        ref_sig = inspect.signature(getattr(reference, name))
        assert inspect.signature(getattr(kernels, name)) == ref_sig, name


# --- affine + activation forward ----------------------------------------------------


@pytest.mark.parametrize("N, D, H, itemsize, cut", [
    (64, 301, 263, 8, True), (64, 301, 263, 4, True), (32, 784, 128, 8, True),
    (32, 784, 128, 4, False), (16, 784, 128, 8, False), (32, 784, 100, 8, False)])
def test_a_small_batch_is_cut_by_columns_and_features(N, D, H, itemsize, cut):
    """One row block (N <= MIN_ROWS): from 2 * COL_WORK float64-equivalent
    multiply-adds, x @ W by blocks of W's columns and the weight pass by dW's rows;
    the cuts cover the pass once and depend on the shapes and the item size only."""
    from fastnn.kernels import affine_act as A

    assert A.layer_grain(N, D * H) == N  # (one row block)
    gc, gf = A.small_batch_grains(N, D, H, itemsize)
    assert (gc < H and gf < D) == cut
    if not cut:
        assert (gc, gf) == (H, D)
        return
    assert gc >= A.MIN_COLS and gc % 8 == 0 and gf % 8 == 0
    assert N * D * gc * itemsize // 8 >= A.COL_WORK
    for n, g in ((H, gc), (D, gf)):
        blocks = [A.block_of(b, n, g) for b in range(A.n_blocks(n, g))]
        assert blocks[0][0] == 0 and blocks[-1][1] == n
        assert all(a[1] == b[0] < b[1] for a, b in zip(blocks, blocks[1:]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, D, H", SHAPES)
@pytest.mark.parametrize("op", ["affine_forward", "affine_relu_forward", "affine_sigmoid_forward"])
@pytest.mark.parametrize("kind", LAYOUTS)
def test_affine_act_forward(op, N, D, H, dtype, kind):
    x, W, b = random_problem(N, D, H, dtype, seed=N + D + H)
    ref = getattr(reference, op)(x, W, b)
    comp = getattr(kernels, op)(layout(x, kind), layout(W, kind), b)
    assert_close(comp, ref, dtype, reduce_len=D)


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_writes_into_out_and_returns_it(dtype):
    x, W, b = random_problem(5, 4, 3, dtype)
    out = np.empty((5, 3), dtype)
    assert kernels.affine_relu_forward(x, W, b, out=out) is out
    assert_close(out, reference.affine_relu_forward(x, W, b), dtype, reduce_len=4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_at_exact_zero_and_extremes(dtype):
    x = np.array([[0.0, -0.0, 1e-30, -1e-30, 3e38, -3e38, 5.0]], dtype)
    W = np.eye(7, dtype=dtype)
    b = np.zeros(7, dtype)
    out = kernels.affine_relu_forward(x, W, b)
    np.testing.assert_array_equal(out, reference.affine_relu_forward(x, W, b))
    dout = np.ones_like(out)
    dx, dW, db = kernels.affine_relu_backward(dout, x, W, out)
    rdx, rdW, rdb = reference.affine_relu_backward(dout, x, W, out)
    np.testing.assert_array_equal(dx, rdx)  # the gradient is 0 where the output is exactly 0
    np.testing.assert_array_equal(db, rdb)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_is_stable_for_large_inputs(dtype):
    x = np.array([[-1e4, -800.0, -88.0, -20.0, 0.0, 20.0, 88.0, 800.0, 1e4]], dtype)
    W, b = np.eye(9, dtype=dtype), np.zeros(9, dtype)
    with np.errstate(over="raise", invalid="raise"):
        ref = reference.affine_sigmoid_forward(x, W, b)
    comp = kernels.affine_sigmoid_forward(x, W, b)
    assert np.all(np.isfinite(comp)) and comp[0, 0] == 0 and comp[0, -1] == 1
    assert_close(comp, ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tanh_saturates_and_propagates_nan(dtype):
    x = np.array([[-np.inf, -1e4, -20.0, -1e-30, 0.0, 1e-30, 20.0, 1e4, np.inf, np.nan]], dtype)
    with np.errstate(all="raise"):
        ref = reference.tanh_forward(x)
    comp = kernels.tanh_forward(x)
    assert comp[0, 0] == -1 and comp[0, -2] == 1 and np.isnan(comp[0, -1])
    assert_close(comp[:, :-1], ref[:, :-1], dtype)
    dout = np.ones_like(x)
    assert_close(kernels.tanh_backward(dout, comp)[:, :-1],
                 reference.tanh_backward(dout, ref)[:, :-1], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_propagates_nan_like_np_maximum(dtype):
    """A diverged network must show NaN, never have it silently zeroed by the ReLU."""
    x = np.ones((1, 2), dtype)
    out = kernels.affine_relu_forward(x, np.eye(2, dtype=dtype), np.array([np.nan, 0], dtype))
    assert np.isnan(out[0, 0]) and out[0, 1] == 1


# --- affine + activation backward ---------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, D, H", SHAPES)
@pytest.mark.parametrize("act", ["relu", "sigmoid"])
@pytest.mark.parametrize("kind", LAYOUTS)
def test_affine_act_backward(act, N, D, H, dtype, kind):
    x, W, b = random_problem(N, D, H, dtype, seed=N * D + H)
    out = getattr(reference, f"affine_{act}_forward")(x, W, b)
    dout = upstream(N, H, dtype, seed=H)
    saved = dout.copy()
    ref = getattr(reference, f"affine_{act}_backward")(dout, x, W, out)
    comp = getattr(kernels, f"affine_{act}_backward")(layout(dout, kind), layout(x, kind),
                                                      layout(W, kind), layout(out, kind))
    np.testing.assert_array_equal(dout, saved)  # dout is not modified by default
    for c, r, n in zip(comp, ref, (H, N, N)):
        assert_close(c, r, dtype, reduce_len=n, scale=np.sqrt(N) if n == N else 1.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["relu", "sigmoid"])
def test_backward_into_buffers_without_dx_and_overwriting_dout(act, dtype):
    N, D, H = 9, 6, 5
    x, W, b = random_problem(N, D, H, dtype, seed=3)
    out = getattr(reference, f"affine_{act}_forward")(x, W, b)
    dout = upstream(N, H, dtype, seed=4)
    _, rdW, rdb = getattr(reference, f"affine_{act}_backward")(dout, x, W, out)
    dW, db = np.empty((D, H), dtype), np.empty(H, dtype)
    dx, dW2, db2 = getattr(kernels, f"affine_{act}_backward")(
        dout.copy(), x, W, out, dW=dW, db=db, need_dx=False, overwrite_dout=True)
    assert dx is None and dW2 is dW and db2 is db
    assert_close(dW, rdW, dtype, reduce_len=N, scale=3)
    assert_close(db, rdb, dtype, reduce_len=N, scale=3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, D, H", SHAPES)
def test_affine_backward(N, D, H, dtype):
    x, W, _ = random_problem(N, D, H, dtype, seed=N + 2 * D)
    dout = upstream(N, H, dtype, seed=D)
    for c, r in zip(kernels.affine_backward(dout, x, W), reference.affine_backward(dout, x, W)):
        assert_close(c, r, dtype, reduce_len=max(N, H), scale=np.sqrt(N))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("kind", LAYOUTS)
def test_standalone_activations(act, dtype, kind):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((13, 7)).astype(dtype)
    x[0, :3] = 0
    out = getattr(kernels, f"{act}_forward")(layout(x, kind))
    assert_close(out, getattr(reference, f"{act}_forward")(x), dtype)
    dout = upstream(13, 7, dtype, seed=1)
    comp = getattr(kernels, f"{act}_backward")(layout(dout, kind), layout(out, kind))
    assert_close(comp, getattr(reference, f"{act}_backward")(dout, out), dtype)
    images = rng.standard_normal((4, 2, 3, 3)).astype(dtype)  # N-D: any trailing shape
    assert_close(getattr(kernels, f"{act}_forward")(images),
                 getattr(reference, f"{act}_forward")(images), dtype)


# --- losses ---------------------------------------------------------------------------


def logits(N, C, dtype, kind, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((N, C))
    if kind == "large":
        z = 1e4 * np.sign(z) * (np.abs(z) > 0.3)  # +-1e4 and zeros
    elif kind == "ties":
        z = np.round(z)  # many equal entries per row
        z[0] = 7.0  # a row of identical logits
    elif kind == "zeros":
        z[:] = 0
    return z.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, C", [(1, 1), (1, 10), (3, 2), (13, 7), (127, 10), (300, 7),
                                  pytest.param(1000, 10, marks=pytest.mark.large)])
@pytest.mark.parametrize("kind", ["normal", "large", "ties", "zeros"])
@pytest.mark.parametrize("labels", ["int", "onehot"])
def test_softmax_cross_entropy(N, C, kind, labels, dtype):
    z = logits(N, C, dtype, kind, seed=N + C)
    y = np.random.default_rng(N).integers(0, C, N)
    t = y if labels == "int" else one_hot(y, C, dtype)
    ref_loss, ref_grad = reference.softmax_cross_entropy(z, t)
    loss, grad = kernels.softmax_cross_entropy(layout(z, "F"), t)
    assert np.isfinite(loss)
    assert loss == approx_loss(ref_loss, dtype, C, max(1.0, abs(ref_loss)))
    assert_close(grad, ref_grad, dtype, scale=1.0 / N)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_with_probability_rows_and_buffer(dtype):
    rng = np.random.default_rng(3)
    z = logits(6, 4, dtype, "normal")
    t = rng.dirichlet(np.ones(4), 6).astype(dtype)
    buf = np.empty_like(z)
    loss, grad = kernels.softmax_cross_entropy(z, t, dscores=buf)
    ref_loss, ref_grad = reference.softmax_cross_entropy(z, t)
    assert grad is buf and loss == pytest.approx(ref_loss, rel=1e-5)
    assert_close(grad, ref_grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax(dtype):
    for kind in ["normal", "large", "ties"]:
        z = logits(9, 5, dtype, kind)
        assert_close(kernels.softmax(z), reference.softmax(z), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, C", [(1, 1), (3, 7), (63, 1), (127, 10)])
def test_squared_error(N, C, dtype):
    rng = np.random.default_rng(N * C)
    y, t = rng.standard_normal((2, N, C)).astype(dtype)
    ref_loss, ref_grad = reference.squared_error(y, t)
    loss, grad = kernels.squared_error(layout(y, "strided"), t)
    assert loss == approx_loss(ref_loss, dtype, N * C, max(1.0, ref_loss))
    assert_close(grad, ref_grad, dtype)


# --- update and checks ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (13,), (7, 3), (100_489,)])
def test_sgd_update(shape, dtype):
    rng = np.random.default_rng(0)
    p, g = rng.standard_normal((2, *shape)).astype(dtype)
    ref = p.copy()
    reference.sgd_update(ref, g, 0.1)
    comp = p.copy()
    assert kernels.sgd_update(comp, g, 0.1) is None
    assert_close(comp, ref, dtype)
    strided = np.zeros(2 * p.size, dtype)[::2]  # unusual layouts: still in place
    strided[:] = p.reshape(-1)
    kernels.sgd_update(strided, g.reshape(-1), 0.1)
    assert_close(strided, ref.reshape(-1), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, D, H", SHAPES)
def test_sgd_update_affine(N, D, H, dtype):
    x, W, _ = random_problem(N, D, H, dtype, seed=N + H)
    dz = upstream(N, H, dtype, seed=D)
    ref, comp = W.copy(), W.copy()
    reference.sgd_update_affine(ref, x, dz, 0.05)
    assert kernels.sgd_update_affine(comp, x, dz, 0.05) is None
    assert_close(comp, ref, dtype, reduce_len=N)
    strided = W.copy()
    kernels.sgd_update_affine(strided, layout(x, "strided"), layout(dz, "F"), 0.05)
    assert_close(strided, ref, dtype, reduce_len=N)


def test_blas_binding_is_active_on_numpy_wheels():
    """The kernels' GEMM binds to NumPy's own OpenBLAS (ILP64 wheels)."""
    import numpy
    from fastnn.kernels import _blas

    if not _blas._numpy_blas_path():
        pytest.skip(f"NumPy {numpy.__version__} here does not bundle its own OpenBLAS")
    assert _blas.available


@functools.cache
def _compiled_gemm():
    """``_blas.gemm`` called from compiled code, its flags and scalars as arguments: one
    compile per dtype for every case below (a closure per case compiled 36 times)."""
    from fastnn.kernels import _blas
    from numba import njit

    return njit(lambda ta, tb, alpha, a, b, beta, c: _blas.gemm(ta, tb, alpha, a, b, beta, c))


@pytest.mark.parametrize("trans", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M, K, N", [(7, 13, 3), (1, 1, 3), (40, 30, 20)])  # loop / loop / BLAS
def test_gemm_in_kernels_matches_its_numpy_meaning(trans, beta, dtype, M, K, N):
    """``_blas.gemm`` compiled (a loop for small products, BLAS otherwise) == its Python
    body, for every use it has."""
    from fastnn.kernels import _blas

    rng = np.random.default_rng(5)
    ta, tb = trans
    a = rng.standard_normal((K, M) if ta else (M, K)).astype(dtype)
    b = rng.standard_normal((N, K) if tb else (K, N)).astype(dtype)
    c = rng.standard_normal((M, N)).astype(dtype)
    expected = c.copy()
    _blas.gemm(ta, tb, -0.5, a, b, beta, expected)
    _compiled_gemm()(ta, tb, -0.5, a, b, beta, c)
    assert_close(c, expected, dtype, reduce_len=K)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, D, H", SHAPES)
@pytest.mark.parametrize("act", ["identity", *HIDDEN_ACTIVATIONS])
@pytest.mark.parametrize("kind", LAYOUTS)
def test_affine_act_backward_sgd(act, N, D, H, dtype, kind):
    """A layer's backward + SGD step == the reference's, for every layout and both paths."""
    x, W, b = random_problem(N, D, H, dtype, seed=N + 3 * D + H)
    b += dtype(0.5)
    out = None if act == "identity" else reference.affine_act_forward_checked(x, W, b, act)[0]
    dout = upstream(N, H, dtype, seed=H + 1)
    ref_W, ref_b, ref_dout = W.copy(), b.copy(), dout.copy()
    ref_dx = reference.affine_act_backward_sgd(ref_dout, x, ref_W, ref_b, out, act, 0.05)
    comp_W, comp_b, comp_dout = W.copy(), b.copy(), layout(dout, kind)
    dx = np.empty((N, D), dtype)
    got = kernels.affine_act_backward_sgd(comp_dout, layout(x, kind), comp_W, comp_b,
                                          None if out is None else layout(out, kind), act,
                                          0.05, dx=dx)
    assert got is dx
    assert_close(comp_dout, ref_dout, dtype)  # dz is left in dout, whatever its layout
    assert_close(dx, ref_dx, dtype, reduce_len=H)
    assert_close(comp_W, ref_W, dtype, reduce_len=N, scale=np.sqrt(N))
    assert_close(comp_b, ref_b, dtype, reduce_len=N, scale=np.sqrt(N))
    no_dx = kernels.affine_act_backward_sgd(dout.copy(), x, W.copy(), b.copy(), out, act,
                                            0.05, need_dx=False)
    assert no_dx is None


@pytest.mark.parametrize("op", ["affine", "affine_relu", "affine_sigmoid"])
@pytest.mark.parametrize("module", [reference, kernels], ids=["numpy", "numba"])
def test_backward_without_dW_and_overwrite_contract(op, module):
    x, W, b = random_problem(9, 6, 5, np.float64, seed=2)
    dout = upstream(9, 5, np.float64, seed=3)
    f = getattr(module, f"{op}_backward")
    if op == "affine":
        full = f(dout, x, W)
        part = f(dout, x, W, need_dW=False)
        dz = dout
    else:
        out = getattr(reference, f"{op}_forward")(x, W, b)
        full = f(dout, x, W, out)
        scratch = dout.copy()
        part = f(scratch, x, W, out, need_dW=False, overwrite_dout=True)
        dz = getattr(reference, op.split("_")[1] + "_backward")(dout, out)
        np.testing.assert_allclose(scratch, dz, rtol=1e-12)  # dz is left in dout
        strided = np.asfortranarray(dout)  # also when dout had to be copied internally
        f(strided, x, W, out, need_dW=False, overwrite_dout=True)
        np.testing.assert_allclose(strided, dz, rtol=1e-12)
    assert part[1] is None
    np.testing.assert_allclose(part[0], full[0], rtol=1e-12)
    np.testing.assert_allclose(part[2], full[2], rtol=1e-12)
    np.testing.assert_allclose(full[1], x.T @ dz, rtol=1e-12)


# --- whole networks ---------------------------------------------------------------------


def step_problem(N, sizes, dtype, loss, target_kind, seed=0):
    rng = np.random.default_rng(seed)
    params = np.concatenate([np.concatenate([(rng.standard_normal(i * o) / np.sqrt(i)),
                                             0.1 * rng.standard_normal(o)])
                             for i, o in zip(sizes[:-1], sizes[1:])]).astype(dtype)
    x = rng.standard_normal((N, sizes[0])).astype(dtype)
    labels = rng.integers(0, sizes[-1], N)
    if loss == "mse":
        t = rng.standard_normal((N, sizes[-1])).astype(dtype)
    else:
        t = labels if target_kind == "labels" else one_hot(labels, sizes[-1], dtype)
    return x, t, params


def buffers(N, sizes, dtype):
    acts = np.empty(N * sum(sizes[1:]), dtype)
    return acts, np.empty_like(acts)


def run_step(module, x, t, params, sizes, activation, loss, lr=0.1):
    params = params.copy()
    acts, dacts = buffers(x.shape[0], sizes, params.dtype)
    value, n_bad, at = module.sgd_step(x, t, params, layout_of(sizes), acts, dacts, activation,
                                       loss, lr)
    assert at == -1
    return value, n_bad, params, dacts


NETWORKS = [(1, [3, 1, 2]), (7, [5, 13, 3]), (13, [4, 7, 5, 9, 3]), (300, [17, 11, 10])]
TARGETS = [("softmax", "labels"), ("softmax", "onehot"), ("mse", "rows")]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, sizes", NETWORKS)
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("loss, target_kind", TARGETS)
def test_sgd_step(N, sizes, activation, loss, target_kind, dtype):
    """One compiled step == the reference's step (its own loop over the per-layer ops)."""
    x, t, params = step_problem(N, sizes, dtype, loss, target_kind, seed=N)
    ref_loss, ref_bad, ref_params, ref_dacts = run_step(reference, x, t, params, sizes,
                                                        activation, loss)
    comp_loss, bad, comp_params, comp_dacts = run_step(kernels, x, t, params, sizes,
                                                       activation, loss)
    assert ref_bad == bad == 0
    assert isinstance(comp_loss, float) and isinstance(bad, int)
    assert comp_loss == approx_loss(ref_loss, dtype, sizes[-1], max(1.0, abs(ref_loss)))
    assert_close(comp_params, ref_params, dtype, reduce_len=N * max(sizes), scale=3)
    assert_close(comp_dacts[:N * sizes[1]], ref_dacts[:N * sizes[1]], dtype,
                 reduce_len=max(sizes), scale=3)  # dz of the first layer is left there


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, sizes", NETWORKS)
@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("loss, target_kind", TARGETS)
def test_forward_evaluate_gradient(N, sizes, activation, loss, target_kind, dtype):
    """The whole-network forward, evaluation and gradient == the reference's."""
    x, t, params = step_problem(N, sizes, dtype, loss, target_kind, seed=N + 1)
    layout = layout_of(sizes)
    out = {}
    for module in (reference, kernels):
        acts, dacts = buffers(N, sizes, dtype)
        assert module.forward(x, params, layout, acts, activation) == 0
        scores = acts[N * sum(sizes[1:-1]):].copy()
        value, correct, bad, at = module.evaluate(x, t, params, layout, acts, dacts,
                                                  activation, loss)
        grads = np.full_like(params, np.nan)
        g_value, g_bad, g_at = module.gradient(x, t, params, layout, acts, dacts, grads,
                                               activation, loss)
        assert (bad, at, g_bad, g_at) == (0, -1, 0, -1) and g_value == value
        out[module] = scores, value, correct, grads
    ref, comp = out[reference], out[kernels]
    assert_close(comp[0], ref[0], dtype, reduce_len=max(sizes), scale=3)
    assert comp[1] == approx_loss(ref[1], dtype, sizes[-1], max(1.0, abs(ref[1])))
    assert comp[2] == ref[2] and (loss == "softmax" or comp[2] == 0)
    assert_close(comp[3], ref[3], dtype, reduce_len=N * max(sizes), scale=3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss, target_kind", TARGETS)
def test_train_batches_equals_sgd_steps_on_the_same_batches(loss, target_kind, dtype):
    """The compiled training loop is the step, batch after batch: the same bits."""
    sizes, n = [6, 9, 4], 23
    x, t, params = step_problem(n, sizes, dtype, loss, target_kind, seed=3)
    order = np.random.default_rng(4).permutation(np.tile(np.arange(n), 2)).astype(np.int64)
    starts = np.array([0, 5, 10, 15, 20, 23, 28, 33, 38, 43, 46], np.int64)  # two sizes
    layout = layout_of(sizes)
    looped = params.copy()
    losses = np.empty(starts.size - 1)
    assert kernels.train_batches(x, t, order, starts, looped, layout, "relu", loss, 0.1,
                                 losses) == -1
    stepped = params.copy()
    for i in range(starts.size - 1):
        idx = order[starts[i]:starts[i + 1]]
        acts, dacts = buffers(idx.size, sizes, dtype)
        value, _, _ = kernels.sgd_step(x[idx], t[idx], stepped, layout, acts, dacts, "relu",
                                       loss, 0.1)
        assert value == losses[i]
    np.testing.assert_array_equal(looped, stepped)
    ref = params.copy()
    ref_losses = np.empty_like(losses)
    assert reference.train_batches(x, t, order, starts, ref, layout, "relu", loss, 0.1,
                                   ref_losses) == -1
    assert_close(looped, ref, dtype, reduce_len=n * 9, scale=3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("where", ["x", "W1", "overflow"])
def test_sgd_step_stops_on_non_finite_first_layer(where, dtype):
    """NaN/Inf reaching the first layer: counted, nothing updated, the loss is NaN."""
    sizes = [4, 6, 3]
    x, t, params = step_problem(5, sizes, dtype, "softmax", "labels")
    if where == "x":
        x[2, 1] = -np.inf  # ReLU would zero it: only the count catches it
    elif where == "W1":
        params[3] = np.nan
    else:
        x[0] = np.finfo(dtype).max
    for module in (reference, kernels):
        value, n_bad, after, _ = run_step(module, x, t, params, sizes, "relu", "softmax")
        assert np.isnan(value) and n_bad > 0, module.__name__
        np.testing.assert_array_equal(after, params)
        losses, trained = np.full(3, 7.0), params.copy()
        stop = module.train_batches(x, t, np.array([0, 1, 2, 3, 4, 0, 1, 2, 3, 4]),
                                    np.array([0, 5, 10]), trained, layout_of(sizes), "relu",
                                    "softmax", 0.1, losses[:2])
        assert stop == 0 and np.isnan(losses[:2]).all(), module.__name__
        np.testing.assert_array_equal(trained, params)


@pytest.mark.parametrize("N", [5, 300])
@pytest.mark.parametrize("label", [-1, 10])
def test_network_kernels_report_the_first_label_out_of_range(N, label):
    """Kernels return the index of the first bad label and change nothing (the API raises)."""
    sizes = [4, 6, 10]
    x, t, params = step_problem(N, sizes, np.float64, "softmax", "labels")
    t[N // 2] = label
    t[N - 1] = label
    layout = layout_of(sizes)
    for module in (reference, kernels):
        before = params.copy()
        acts, dacts = buffers(N, sizes, np.float64)
        _, n_bad, at = module.sgd_step(x, t, params, layout, acts, dacts, "relu", "softmax",
                                       0.1)
        assert (n_bad, at) == (0, N // 2), module.__name__
        assert module.evaluate(x, t, params, layout, acts, dacts, "relu", "softmax")[3] == N // 2
        losses = np.empty(1)
        assert module.train_batches(x, t, np.arange(N), np.array([0, N]), params, layout,
                                    "relu", "softmax", 0.1, losses) == 0
        assert np.isnan(losses[0])
        np.testing.assert_array_equal(params, before)


@pytest.mark.parametrize("loss", ["softmax", "mse"])
def test_sgd_step_skips_the_update_on_a_non_finite_loss(loss):
    sizes = [3, 4, 2]
    x, t, params = step_problem(6, sizes, np.float64, loss, "onehot")
    if loss == "mse":
        t[1, 0] = np.inf
    else:
        t[1] = [np.nan, 1.0]
    for module in (reference, kernels):
        value, n_bad, after, _ = run_step(module, x, t, params, sizes, "relu", loss)
        assert not np.isfinite(value) and n_bad == 0, module.__name__
        np.testing.assert_array_equal(after, params)


def test_network_kernels_copy_odd_layouts_at_the_boundary():
    sizes = [6, 5, 3]
    x, t, params = step_problem(9, sizes, np.float64, "softmax", "labels", seed=4)
    ref = run_step(reference, x, t, params, sizes, "sigmoid", "softmax")
    comp = run_step(kernels, np.asfortranarray(x), np.repeat(t, 2)[::2], params, sizes, "sigmoid",
                    "softmax")
    assert comp[0] == pytest.approx(ref[0], rel=1e-12)
    np.testing.assert_allclose(comp[2], ref[2], rtol=1e-12, atol=1e-13)


# --- threads ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_match_reference_for_any_thread_count(dtype):
    """Only BLAS runs threads: at 1 and 2 the kernels agree with the reference."""

    N, D, H = 101, 17, 13
    x, W, b = random_problem(N, D, H, dtype, seed=1)
    dout = upstream(N, H, dtype, seed=2)
    results = []
    try:
        for threads in sorted({1, min(2, kernels._threads.usable_cores())}):
            kernels.set_num_threads(threads)
            out = kernels.affine_relu_forward(x, W, b)
            results.append((out, *kernels.affine_sigmoid_backward(dout, x, W, out)))
    finally:
        kernels.set_num_threads(None)  # the automatic policy again
    ref_out = reference.affine_relu_forward(x, W, b)
    ref = (ref_out, *reference.affine_sigmoid_backward(dout, x, W, ref_out))
    for one, two, r in zip(*results, ref):
        assert_close(one, r, dtype, reduce_len=N, scale=3)
        assert_close(two, one, dtype, reduce_len=N, scale=3)


# --- property-based ---------------------------------------------------------------------


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(N=st.integers(1, 40), D=st.integers(1, 20), H=st.integers(1, 20),
       dtype=st.sampled_from(DTYPES), scale=st.sampled_from([1e-3, 1.0, 30.0]),
       seed=st.integers(0, 2**16))
def test_property_affine_relu_round_trip(N, D, H, dtype, scale, seed):
    x, W, b = random_problem(N, D, H, dtype, seed=seed)
    x = (x * scale).astype(dtype)
    ref_out = reference.affine_relu_forward(x, W, b)
    out = kernels.affine_relu_forward(x, W, b)
    # out = x @ W + b: its magnitude is that of b (~0.1-1) as well as of x, whatever the scale
    assert_close(out, ref_out, dtype, reduce_len=D, scale=max(scale, 1.0))
    dout = upstream(N, H, dtype, seed)
    ref = reference.affine_relu_backward(dout, x, W, ref_out)
    comp = kernels.affine_relu_backward(dout, x, W, ref_out)
    for c, r in zip(comp, ref):
        # dx and db follow dout (~1), dW also x: the larger of the two sets the tolerance
        assert_close(c, r, dtype, reduce_len=max(N, H, D), scale=max(scale, 1.0) * np.sqrt(N))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(N=st.integers(1, 30), C=st.integers(1, 12), dtype=st.sampled_from(DTYPES),
       magnitude=st.sampled_from([0.0, 1.0, 50.0, 1e4]), seed=st.integers(0, 2**16))
def test_property_softmax_cross_entropy(N, C, dtype, magnitude, seed):
    rng = np.random.default_rng(seed)
    z = (magnitude * rng.standard_normal((N, C))).astype(dtype)
    y = rng.integers(0, C, N)
    ref_loss, ref_grad = reference.softmax_cross_entropy(z, y)
    loss, grad = kernels.softmax_cross_entropy(z, y)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == approx_loss(ref_loss, dtype, C, max(1.0, abs(ref_loss)))
    assert_close(grad, ref_grad, dtype, scale=1.0 / N)


def test_network_kernel_loads_from_the_cache_in_a_new_process(tmp_path):
    """The network kernel (a closure per loss and activation) is cached across processes.

    Where this process's kernel has fastnn's cache (compiled code, caching on), this
    process puts the kernel there (compiled, or loaded: either way an entry another
    process wrote or will read), and one new process sharing the folder must load it;
    the suite's other tests need this kernel anyway, so no compile is added for this
    test. Otherwise (the pure-Python CI run, the cache off) a private folder: a first
    new process compiles (no hit), a second loads."""
    import os
    import subprocess
    import sys

    from fastnn.kernels import network

    code = ("import numpy as np, fastnn\n"
            "from fastnn.kernels import network\n"
            "net = fastnn.Sequential(5, [4], 3, activation='sigmoid', seed=0)\n"
            "net.train_step(np.ones((2, 5)), np.array([0, 2]), fastnn.SGD(0.1))\n"
            "f = network._kernel(False)\n"
            "print(sum(f.stats.cache_hits.values()))\n")
    env = {**os.environ, "FASTNN_NUMBA_CACHE": "1"}
    env.pop("NUMBA_DISABLE_JIT", None)  # (CI's pure-Python run: this is about compiling)
    kernel = network._kernel(False)
    if type(getattr(kernel, "_cache", None)).__module__.endswith("_cache_files"):
        import fastnn

        net = fastnn.Sequential(5, [4], 3, activation="sigmoid", seed=0)
        net.train_step(np.ones((2, 5)), np.array([0, 2]), fastnn.SGD(0.1))
        assert kernel.signatures  # (compiled here or loaded: in the folder either way)
        expected = ["1"]
    else:
        env["NUMBA_CACHE_DIR"] = str(tmp_path)
        env.pop("FASTNN_CACHE_DIR", None)  # (it would take precedence over NUMBA_CACHE_DIR)
        expected = ["0", "1"]
    hits = [subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=tmp_path,
                           capture_output=True, text=True).stdout.strip() for _ in expected]
    assert hits == expected


def test_network_kernel_cache_key_covers_every_kernel_module(tmp_path):
    """numba notices edits of the kernel's own file only; the kernel's closure carries a
    digest of every kernel module, so an edit of an inlined body elsewhere is a new key."""
    import os
    import shutil

    from fastnn.kernels import network

    f = network._kernel(False)
    cells = [c.cell_contents for c in (getattr(f, "py_func", f).__closure__ or ())]
    assert network._sources_digest() in cells  # (numba hashes the closure into its key)
    here = os.path.dirname(network.__file__)
    copy = tmp_path / "kernels"
    shutil.copytree(here, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert network._sources_digest(str(copy)) == network._sources_digest()
    with open(copy / "affine_act.py", "a") as f:
        f.write("\n# an edit\n")
    assert network._sources_digest(str(copy)) != network._sources_digest()


def test_bodies_are_inlined_only_into_the_function_being_compiled():
    """The inlining cost model declines while numba prepares a body for inlining and
    accepts otherwise. Compiled for real, through numba's own InlineWorker: if numba
    renamed the method the model keys on (run_untyped_passes), the model would never
    decline and this test fails."""
    import numba
    from fastnn.kernels._config import INLINE
    from numba.core.inline_closurecall import InlineWorker

    assert hasattr(InlineWorker, "run_untyped_passes")
    if numba.config.DISABLE_JIT:
        pytest.skip("NUMBA_DISABLE_JIT: nothing is compiled, so nothing is inlined")
    decisions = []

    def spy(expr, caller_ir, callee_ir):
        decisions.append(INLINE(expr, caller_ir, callee_ir))
        return decisions[-1]

    @numba.njit(inline=spy)
    def inner(v):
        return v + 1

    @numba.njit(inline=spy)
    def middle(v):
        return inner(v) * 2

    @numba.njit
    def outer(v):
        return middle(v)

    assert outer(1.0) == 4.0
    # middle into outer: yes; inner into middle while numba prepares middle: no; inner
    # into outer once middle's blocks are there: yes
    assert decisions == [True, False, True]


def test_borrowed_views_are_the_buffer_itself():
    """borrow / view2d / view1d / view_rows in compiled code: views of the same memory
    (writes through them land in the buffer), the buffer kept alive by hold."""
    from fastnn.kernels._views import borrow, hold, view1d, view2d, view_rows
    from numba import njit

    @njit
    def fill(flat, grid):
        owned = np.zeros(6)
        work = borrow(owned)
        block = view2d(borrow(flat), 2, 2, 3)  # items 2..7 as (2, 3)
        for r in range(2):
            for c in range(3):
                block[r, c] = 10 * r + c
                work[3 * r + c] = block[r, c]
        row = view_rows(borrow(grid), 1, 1)
        tail = view1d(borrow(flat), 8, 2)
        for c in range(grid.shape[1]):
            row[0, c] = -1.0
        tail[0], tail[1] = work.sum(), float(block.shape[0] * 10 + block.shape[1])
        hold((owned,))

    flat, grid = np.zeros(10), np.zeros((3, 4))
    fill(flat, grid)
    np.testing.assert_array_equal(flat, [0, 0, 0, 1, 2, 10, 11, 12, 36, 23])
    np.testing.assert_array_equal(grid, [[0] * 4, [-1] * 4, [0] * 4])


def test_kernel_blas_can_be_switched_off():
    """FASTNN_KERNEL_BLAS=0: no binding; gemm compiles to numba's np.dot instead."""
    import os
    import subprocess
    import sys

    code = ("import numpy as np, fastnn\n"
            "from fastnn.kernels import _blas\n"
            "assert not _blas.available\n"
            "net = fastnn.Sequential(5, [4], 3, seed=0)\n"
            "loss = net.train_step(np.ones((2, 5)), np.array([0, 2]), fastnn.SGD(0.1))\n"
            "from fastnn import kernels, reference\n"  # (the small-batch column cut)
            "rng = np.random.default_rng(0)\n"
            "x, W, b = rng.random((32, 300)), rng.random((300, 256)), rng.random(256)\n"
            "assert kernels.affine_act.small_batch_grains(32, 300, 256, 8)[0] < 256\n"
            "assert np.allclose(kernels.affine_relu_forward(x, W, b),\n"
            "                   reference.affine_relu_forward(x, W, b), rtol=1e-12)\n"
            "print(round(loss, 6))\n")
    env = {**os.environ, "FASTNN_KERNEL_BLAS": "0"}
    env.pop("NUMBA_DISABLE_JIT", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout.strip()
    import fastnn

    net = fastnn.Sequential(5, [4], 3, seed=0)
    expected = net.train_step(np.ones((2, 5)), np.array([0, 2]), fastnn.SGD(0.1))
    assert float(out) == pytest.approx(expected, abs=1e-6)

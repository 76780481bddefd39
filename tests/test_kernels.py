"""Every numba kernel against its NumPy twin: dtypes, odd shapes, layouts, extremes.

Tolerances come from one table (``_helpers.TOL``). The reference is the specification:
``ref = reference.f(...)``, ``comp = kernels.f(...)``, ``assert_allclose(comp, ref)``.
"""

import numpy as np
import pytest
from _helpers import DTYPES, one_hot, random_problem, tol
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastnn import kernels, reference

SHAPES = [(1, 1, 1), (1, 7, 3), (3, 13, 7), (7, 1, 13), (127, 13, 3),
          pytest.param(1000, 784, 128, marks=pytest.mark.large)]
LAYOUTS = ["C", "F", "strided"]


def layout(a, kind):
    """The same values in another memory layout."""
    if kind == "F":
        return np.asfortranarray(a)
    if kind == "strided":
        wide = np.zeros((a.shape[0], 2 * a.shape[1]), a.dtype)
        wide[:, ::2] = a
        return wide[:, ::2]
    return a


def assert_close(comp, ref, dtype, reduce_len=1, scale=1.0):
    assert comp.dtype == np.dtype(dtype), (comp.dtype, dtype)
    np.testing.assert_allclose(comp, ref, **tol(dtype, reduce_len, scale))


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
@pytest.mark.parametrize("act", ["relu", "sigmoid"])
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
@pytest.mark.parametrize("blas", ["gemm", "fallback"])
def test_sgd_update_affine(N, D, H, dtype, blas, monkeypatch):
    from fastnn.kernels import sgd

    if blas == "fallback":
        monkeypatch.setattr(sgd, "gemm_update", None)
    x, W, _ = random_problem(N, D, H, dtype, seed=N + H)
    dz = upstream(N, H, dtype, seed=D)
    ref, comp = W.copy(), W.copy()
    reference.sgd_update_affine(ref, x, dz, 0.05)
    assert kernels.sgd_update_affine(comp, x, dz, 0.05) is None
    assert_close(comp, ref, dtype, reduce_len=N)
    strided = W.copy()
    kernels.sgd_update_affine(strided, layout(x, "strided"), layout(dz, "F"), 0.05)
    assert_close(strided, ref, dtype, reduce_len=N)


def test_blas_update_binding_is_active_on_numpy_wheels():
    """The accumulate-in-place GEMM binds to NumPy's own OpenBLAS (ILP64 wheels)."""
    import numpy
    from fastnn.kernels import _blas

    if not _blas._numpy_blas_path():
        pytest.skip(f"NumPy {numpy.__version__} here does not bundle its own OpenBLAS")
    assert _blas.gemm_update is not None


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


# --- threads and parallel variants ------------------------------------------------------


@pytest.fixture
def force_parallel(monkeypatch):
    """Make every kernel take its parallel (prange) variant, whatever the size."""
    from fastnn.kernels import _config

    monkeypatch.setattr(_config, "PARALLEL_MIN_WORK", 0)
    yield
    kernels.set_num_threads(_config.numba.config.NUMBA_NUM_THREADS)


@pytest.mark.parametrize("dtype", DTYPES)
def test_parallel_variants_match_reference_for_any_thread_count(force_parallel, dtype):
    N, D, H = 101, 17, 13
    x, W, b = random_problem(N, D, H, dtype, seed=1)
    dout = upstream(N, H, dtype, seed=2)
    z = logits(N, 10, dtype, "normal")
    y = np.arange(N) % 10
    results = []
    for threads in (1, 2):
        kernels.set_num_threads(threads)
        out = kernels.affine_relu_forward(x, W, b)
        grads = kernels.affine_sigmoid_backward(dout, x, W, out)
        loss, dz = kernels.softmax_cross_entropy(z, y)
        p = W.copy()
        kernels.sgd_update(p, W, 0.5)
        results.append((out, *grads, np.array(loss, dtype), dz, p))
    ref_out = reference.affine_relu_forward(x, W, b)
    ref = (ref_out, *reference.affine_sigmoid_backward(dout, x, W, ref_out),
           np.array(reference.softmax_cross_entropy(z, y)[0], dtype),
           reference.softmax_cross_entropy(z, y)[1], 0.5 * W)
    for one, two, r in zip(*results, ref):
        assert_close(one, r, dtype, reduce_len=N, scale=3)
        assert_close(two, one, dtype, reduce_len=N, scale=3)


# --- property-based ---------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(N=st.integers(1, 40), D=st.integers(1, 20), H=st.integers(1, 20),
       dtype=st.sampled_from(DTYPES), scale=st.sampled_from([1e-3, 1.0, 30.0]),
       seed=st.integers(0, 2**16))
def test_property_affine_relu_round_trip(N, D, H, dtype, scale, seed):
    x, W, b = random_problem(N, D, H, dtype, seed=seed)
    x = (x * scale).astype(dtype)
    ref_out = reference.affine_relu_forward(x, W, b)
    out = kernels.affine_relu_forward(x, W, b)
    assert_close(out, ref_out, dtype, reduce_len=D, scale=scale)
    dout = upstream(N, H, dtype, seed)
    ref = reference.affine_relu_backward(dout, x, W, ref_out)
    comp = kernels.affine_relu_backward(dout, x, W, ref_out)
    for c, r in zip(comp, ref):
        assert_close(c, r, dtype, reduce_len=max(N, H, D), scale=scale * np.sqrt(N))


@settings(max_examples=40, deadline=None)
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

"""NumPy's own BLAS GEMM, callable from compiled kernels: ``gemm(ta, tb, alpha, a, b, beta, c)``.

Why not ``np.dot``: from Python each product costs a dispatch and leaves the passes
between GEMMs as separate calls (a dozen per training step: at batch 32 in float32 that
overhead was a third of the step), and ``np.dot`` has no alpha/beta, so the SGD step
``W -= lr * x.T @ dz`` needed a GEMM into dW plus a pass reading dW back (slow right
after the GEMM: BLAS's second thread wrote half of dW into the other core's cache).
numba's in-kernel ``np.dot`` calls SciPy's OpenBLAS, a second thread pool beside
NumPy's that fights it for the cores. So this module binds ``cblas_?gemm`` of the very
library NumPy uses, and kernels call it directly: a layer's pass and its GEMMs become
one compiled call, and the weight update is one GEMM with beta = 1.

How: the library is located with threadpoolctl, its ILP64 symbols (NumPy >= 2 wheels:
``scipy_cblas_sgemm64_``) are checked with a numeric self-test through ctypes, then
registered with LLVM under fastnn's own names (``fastnn_sgemm64``) and declared as
numba external functions. Compiled code refers to them by name, so numba's on-disk
cache stays valid across processes (a ctypes pointer would be baked in and uncachable).

``gemm`` always compiles, so every kernel has one code path: where no safe binding
exists (other BLAS builds, or ``FASTNN_KERNEL_BLAS=0``; ``available`` is then False) it
compiles to numba's ``np.dot`` (SciPy's BLAS) plus the alpha/beta pass, chosen once at
import. Products smaller than ``SMALL_GEMM`` multiply-adds run as a plain loop instead
of a library call either way (a BLAS call costs more than multiplying a 1x3 by a 3x1);
``gemm`` is inlined into its callers, the library call behind it is a call.
With ``NUMBA_DISABLE_JIT=1`` ``gemm`` runs as the NumPy code below.
"""

from __future__ import annotations

import ctypes
import os

import llvmlite.binding as llvm
import numpy as np
from numba import njit, types
from numba.core import config as numba_config

from . import _cache
from ._config import COMMON, INLINE, SMALL_GEMM
from ._views import address

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_ILP64_NAMES = ("scipy_cblas_{}gemm64_", "cblas_{}gemm64_")


def _numpy_blas_path():
    from threadpoolctl import threadpool_info

    np.dot(np.ones((2, 2)), np.ones((2, 2)))  # NumPy's BLAS is loaded by now
    numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
    candidates = [info["filepath"] for info in threadpool_info()
                  if info.get("user_api") == "blas"
                  and os.path.realpath(info["filepath"]).startswith(
                      os.path.realpath(numpy_dir) + os.sep)
                  and "numpy" in os.path.basename(os.path.dirname(info["filepath"]))]
    return candidates[0] if len(candidates) == 1 else None


def _bind():
    """{dtype: ctypes cblas gemm function}, or None when no safe binding is found."""
    if os.environ.get("FASTNN_KERNEL_BLAS", "1").lower() in ("0", "false", "no", "off"):
        return None
    try:
        path = _numpy_blas_path()
        if path is None:
            return None
        lib = ctypes.CDLL(path)
    except (ImportError, OSError):
        return None
    for pattern in _ILP64_NAMES:
        try:
            funcs = {np.dtype(np.float32): getattr(lib, pattern.format("s")),
                     np.dtype(np.float64): getattr(lib, pattern.format("d"))}
        except AttributeError:
            continue
        i64, ptr = ctypes.c_int64, ctypes.c_void_p
        for dtype, f in funcs.items():
            real = ctypes.c_float if dtype == np.float32 else ctypes.c_double
            f.restype = None
            f.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, i64, i64, i64, real, ptr,
                          i64, ptr, i64, real, ptr, i64]
        return funcs
    return None


def _self_test(funcs) -> bool:
    """W += alpha * x.T @ dz through ctypes agrees with NumPy, in both dtypes."""
    rng = np.random.default_rng(0)
    for dtype, f in funcs.items():
        x = rng.standard_normal((7, 5)).astype(dtype)
        dz = rng.standard_normal((7, 3)).astype(dtype)
        W = rng.standard_normal((5, 3)).astype(dtype)
        expected = W + np.asarray(-0.5, dtype) * np.dot(x.T, dz)
        f(_ROW_MAJOR, _TRANS, _NO_TRANS, 5, 3, 7, -0.5, x.ctypes.data, 5, dz.ctypes.data, 3,
          1.0, W.ctypes.data, 3)
        if not np.allclose(W, expected, rtol=1e-5, atol=1e-6):
            return False
    return True


def _externals(funcs) -> dict:
    """Register the functions with LLVM under fastnn's names; numba declarations of them."""
    i32, i64, addr = types.intc, types.int64, types.uintp  # pointers passed as addresses
    declared = {}
    for dtype, f in funcs.items():
        name = f"fastnn_{'s' if dtype == np.float32 else 'd'}gemm64"
        llvm.add_symbol(name, ctypes.cast(f, ctypes.c_void_p).value)
        real = types.float32 if dtype == np.float32 else types.float64
        sig = types.void(i32, i32, i32, i64, i64, i64, real, addr, i64, addr, i64, real, addr,
                         i64)
        declared[real] = types.ExternalFunction(name, sig)
    return declared


_FUNCS = _bind()
available = _FUNCS is not None and _self_test(_FUNCS)
_EXTERNAL = _externals(_FUNCS) if available else {}


def gemm_loop(trans_a, trans_b, alpha, a, b, beta, c):
    """``gemm`` as a plain loop, for products too small to be worth a library call.

    c[i, j] = alpha * sum_k op(a)[i, k] op(b)[k, j] + beta * c[i, j], the sum in k order
    in float64 (beta = 0 ignores c's old contents).
    """
    M, N = c.shape
    K = a.shape[0] if trans_a else a.shape[1]
    for i in range(M):
        for j in range(N):
            acc = 0.0
            for k in range(K):
                av = a[k, i] if trans_a else a[i, k]
                bv = b[j, k] if trans_b else b[k, j]
                acc += av * bv
            c[i, j] = alpha * acc + (beta * c[i, j] if beta != 0 else 0.0)


# (cached through fastnn's cache like every kernel: it calls no BLAS, so always)
gemm_loop = _cache.attach(njit(inline=INLINE, **COMMON)(gemm_loop))


def _gemm_meaning(trans_a, trans_b, alpha, a, b, beta, c):
    """c = alpha * op(a) @ op(b) + beta * c, in place; op transposes when trans_* is True.

    a, b, c are 2-D arrays of one dtype (float32 or float64) whose rows are contiguous
    (C-contiguous arrays, or blocks of their rows or columns); beta = 0 ignores c's old
    contents. This body is the meaning (and what runs with
    ``NUMBA_DISABLE_JIT=1``); compiled kernels call NumPy's BLAS instead (below).
    """
    with np.errstate(all="ignore"):  # as BLAS: NaN/Inf propagate without warnings
        product = np.dot(a.T if trans_a else a, b.T if trans_b else b)
    if beta == 0:
        c[...] = alpha * product
    else:
        c[...] = alpha * product + beta * c


def _leading(a):
    """BLAS's leading dimension of a 2-D array whose rows are contiguous: its row stride
    in items (a one-row array's stride may be anything, even 0: its width then)."""
    return a.strides[0] // a.itemsize if a.shape[0] > 1 else max(a.shape[1], 1)


_leading = njit(inline="always", **COMMON)(_leading)


def _compiled_gemm():
    """``gemm`` for compiled code: inlined into each caller (a call per product, passing
    three arrays each time, was half of a small network's step), the
    small-product loop or the bound BLAS chosen by size; float32 or float64 by the
    arrays' item size (a constant once compiled)."""
    f32, f64 = _EXTERNAL.get(types.float32), _EXTERNAL.get(types.float64)

    if available:
        # The library call takes scalars only (addresses, leading dimensions, sizes and
        # codes), so it is compiled once for every product of either dtype, whatever the
        # caller's array types: one small compile, not one per transposition pattern,
        # layout and array type (three or more per network, about 0.2 s each), and a call
        # that passes a dozen scalars instead of three arrays.
        def product(ta, tb, alpha, a, lda, b, ldb, beta, c, ldc, M, N, K, single):
            if single:
                f32(_ROW_MAJOR, ta, tb, M, N, K, np.float32(alpha), a, lda, b, ldb,
                    np.float32(beta), c, ldc)
            else:
                f64(_ROW_MAJOR, ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc)

        product = njit(**COMMON)(product)  # (a call: large products only)

        def large(trans_a, trans_b, alpha, a, b, beta, c, M, N, K):
            # (leading dimensions from the row strides: a block of columns, x[:, s:e], or
            # of rows is passed without a copy; items within a row are contiguous. The
            # codes as np.intc: not literals, which numba would compile a product for
            # each of; alpha and beta as float64: a float32 one converts exactly)
            product(np.intc(_TRANS if trans_a else _NO_TRANS),
                    np.intc(_TRANS if trans_b else _NO_TRANS), np.float64(alpha),
                    address(a), _leading(a), address(b), _leading(b), np.float64(beta),
                    address(c), _leading(c), M, N, K, c.itemsize == 4)

        large = njit(inline=INLINE, **COMMON)(large)
    else:  # numba's np.dot (SciPy's BLAS), then the alpha/beta pass
        def large(trans_a, trans_b, alpha, a, b, beta, c, M, N, K):
            if trans_a:
                p = np.dot(a.T, b.T) if trans_b else np.dot(a.T, b)
            else:
                p = np.dot(a, b.T) if trans_b else np.dot(a, b)
            for i in range(M):
                for j in range(N):
                    v = alpha * p[i, j]
                    c[i, j] = v + beta * c[i, j] if beta != 0 else v

        large = njit(**COMMON)(large)  # (a call: large products only)

    def gemm(trans_a, trans_b, alpha, a, b, beta, c):
        M, N = c.shape
        K = a.shape[0] if trans_a else a.shape[1]
        if M * N * K < SMALL_GEMM:
            gemm_loop(trans_a, trans_b, alpha, a, b, beta, c)
        else:
            large(trans_a, trans_b, alpha, a, b, beta, c, M, N, K)

    if available:  # scalars only: compiled once whatever the callers' array types
        def cols(a, b, c, start, n):
            skip = np.uintp(start * c.itemsize)
            product(np.intc(_NO_TRANS), np.intc(_NO_TRANS), 1.0, address(a), _leading(a),
                    address(b) + skip, _leading(b), 0.0, address(c) + skip, _leading(c),
                    c.shape[0], n, a.shape[1], c.itemsize == 4)
    else:
        def cols(a, b, c, start, n):
            large(False, False, 1.0, a, b[:, start:start + n], 0.0, c[:, start:start + n],
                  c.shape[0], n, a.shape[1])

    gemm.__doc__ = _gemm_meaning.__doc__
    cols.__doc__ = _cols_meaning.__doc__
    return njit(inline=INLINE, **COMMON)(gemm), njit(inline=INLINE, **COMMON)(cols)


def _cols_meaning(a, b, c, start, n):
    """c[:, start:start + n] = a @ b[:, start:start + n], a block of columns of a
    product its caller knows to be large (no small-product loop); a, b, c C-contiguous
    2-D arrays of one dtype. Compiled: the library call on the columns' addresses."""
    _gemm_meaning(False, False, 1.0, a, b[:, start:start + n], 0.0, c[:, start:start + n])


# c = alpha * op(a) @ op(b) + beta * c (see _gemm_meaning): compiled, or with
# NUMBA_DISABLE_JIT=1 the NumPy meaning itself; ``gemm_cols`` for a block of
# columns of a large product
if numba_config.DISABLE_JIT:
    gemm, gemm_cols = _gemm_meaning, _cols_meaning
else:
    gemm, gemm_cols = _compiled_gemm()

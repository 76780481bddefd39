"""NumPy's own BLAS for the one product NumPy cannot express: W += alpha * x.T @ dz.

A training step's update ``W -= lr * (x.T @ dz)`` costs a GEMM into dW plus a pass
that reads dW back. Right after the GEMM that pass is slow: BLAS's second thread wrote
half of dW in the other core's cache (measured 3-10x the isolated cost at small
batches). GEMM itself can apply the update (``C = alpha A B + beta C`` with beta = 1),
each thread on its own part of W, but ``np.dot`` has no alpha/beta. So this module
calls ``cblas_?gemm`` of the very library NumPy uses (same thread pool, no second pool
beside NumPy's) through ctypes.

Only ILP64 symbols of a known naming (NumPy >= 2 wheels: ``scipy_cblas_sgemm64_``) are
used, and only after a numeric self-test against ``np.dot``; anywhere else
``gemm_update`` is None and the kernels fall back to ``np.dot`` + an update pass.
``FASTNN_BLAS_UPDATE=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np

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
    """{dtype: cblas gemm function}, or None when no safe binding is found."""
    if os.environ.get("FASTNN_BLAS_UPDATE", "1").lower() in ("0", "false", "no", "off"):
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


def _gemm_update(W, x, dz, alpha):
    """In place: W += alpha * x.T @ dz. W (D, H), x (N, D), dz (N, H), C-contiguous."""
    N, D = x.shape
    H = dz.shape[1]
    _FUNCS[W.dtype](_ROW_MAJOR, _TRANS, _NO_TRANS, D, H, N, alpha, x.ctypes.data, D,
                    dz.ctypes.data, H, 1.0, W.ctypes.data, H)


def _self_test() -> bool:
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((7, 5)).astype(dtype)
        dz = rng.standard_normal((7, 3)).astype(dtype)
        W = rng.standard_normal((5, 3)).astype(dtype)
        expected = W + np.asarray(-0.5, dtype) * np.dot(x.T, dz)
        _gemm_update(W, x, dz, -0.5)
        if not np.allclose(W, expected, rtol=1e-5, atol=1e-6):
            return False
    return True


_FUNCS = _bind()
gemm_update = _gemm_update if _FUNCS is not None and _self_test() else None

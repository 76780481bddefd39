import sys
from pathlib import Path

import numpy as np
import pytest

# `python -m pytest` puts the repository root first on sys.path, where the source folder
# fastnn/ lacks its kernels subpackage (installed from kernels/): test the installed package.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT]

from _helpers import BACKENDS, DTYPES  # noqa: E402


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(params=DTYPES, ids=lambda d: np.dtype(d).name)
def dtype(request):
    return request.param


@pytest.fixture(scope="session")
def digits():
    from fastnn.datasets import load_digits

    return load_digits()


@pytest.fixture(params=["in-kernel", "from-python"])
def blas_path(request, monkeypatch):
    """Both ways the numba backend reaches BLAS: NumPy's GEMM called inside the compiled
    layer kernels (``kernels._blas``), and ``np.dot`` between separate passes (the
    fallback where that binding is unavailable, and for non-contiguous arrays)."""
    from fastnn.kernels import _blas

    if request.param == "in-kernel" and not _blas.available:
        pytest.skip("NumPy's BLAS cannot be bound here (not a NumPy >= 2 wheel)")
    if request.param == "from-python":
        monkeypatch.setattr(_blas, "available", False)
    return request.param

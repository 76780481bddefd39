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

import sys
from pathlib import Path

import numpy as np
import pytest

# `python -m pytest` puts the repository root first on sys.path, where the source folder
# fastnn/ lacks its kernels subpackage (installed from kernels/): test the installed package.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT]
sys.path.insert(1, str(_ROOT / "benchmarks"))  # `import book`: the book-style baselines

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


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """fastnn's cache folder (data sets, `fastnn train`'s speed records) in a temporary
    folder for the whole session: the tests never write into the user's ~/.cache, and
    read no data set from it or from the system's folders."""
    import os

    from fastnn import datasets

    saved = os.environ.get("FASTNN_DATA")
    os.environ["FASTNN_DATA"] = str(tmp_path_factory.mktemp("fastnn-cache"))
    # nor do they find a data set the machine has (tests/test_real_data.py asks for it)
    places = datasets.HOME_CACHE, datasets.SYSTEM_DIRS
    empty = tmp_path_factory.mktemp("no-data")
    datasets.HOME_CACHE, datasets.SYSTEM_DIRS = empty / "cache", [empty / "system"]
    yield
    datasets.HOME_CACHE, datasets.SYSTEM_DIRS = places
    if saved is None:
        os.environ.pop("FASTNN_DATA", None)
    else:
        os.environ["FASTNN_DATA"] = saved

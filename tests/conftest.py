import os
import sys
from pathlib import Path

import numpy as np
import pytest

# `python -m pytest` puts the repository root first on sys.path, where the source folder
# fastnn/ lacks its kernels subpackage (installed from kernels/): test the installed package.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT]
# The same for the tests' own Python processes (`python -c`, `python -m fastnn.cli`, run
# from the repository root): without this they put the root first and imported the source
# folder's fastnn, whose kernels numba caches under other paths than the installed ones:
# in a clean clone (not an editable install) a new process found none of the entries
# this process had saved, and compiled every kernel a second time. (Python 3.11+; on
# 3.10 the tests that spawn processes run them on the source folder.)
os.environ["PYTHONSAFEPATH"] = "1"
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


# pytest-xdist gives each worker a test file at a time, in collection order
# (`--no-loadscope-reorder` in pyproject.toml; its default order, by the number of tests,
# left the files of a few long tests, test_real_data's and test_parallel_bits', to the
# end of the run). So the files run longest first, by the CPU seconds each took in a
# cold run on 2 cores (docs/performance.md, "The test suite"); a file not named here
# runs after these. The first two also share out the big compiles: test_kernels compiles
# the per-layer ops first, then the plain network's serial forms; test_parallel_bits
# (beside it from the start) compiles the plain float64 network first, so test_kernels
# later loads that one from the shared cache instead of compiling it at the same time,
# and it puts the network's parallel forms (plain float64, extended float32) into the
# cache early, where the threads of a later test's training find them instead of
# compiling them in the background; test_chapter6 finds the extended float32 network
# there too. test_conv_kernels compiles kernels of its own (the convolutions).
LONGEST_FIRST = [
    "test_kernels.py", "test_parallel_bits.py", "test_conv_kernels.py",
    "test_real_data.py", "test_seed_dropins.py", "test_sweep.py", "test_cli.py",
    "test_sweep_search.py", "test_sweep_log.py", "test_robustness.py", "test_chapter6.py",
    "test_convnet.py", "test_training.py", "test_newcomer.py", "test_real_world.py",
    "test_deployment.py", "test_threads.py", "test_gradcheck.py", "test_blocks.py",
    "test_convnet_integration.py", "test_compiled.py", "test_network_equivalence.py",
    "test_book_layout.py",
]


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # (stable)

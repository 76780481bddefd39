"""fastnn: the "Deep Learning from Scratch" multilayer perceptron, made fast.

``Sequential`` and ``SGD`` follow the book's API; ``backend="numba"`` runs fused numba
kernels (``fastnn.kernels``), ``backend="numpy"`` runs the NumPy reference
(``fastnn.reference``) they are tested against.
"""

from . import reference
from .gradcheck import gradient_check
from .layers import Affine, IdentityWithLoss, Relu, Sigmoid, SoftmaxWithLoss
from .optim import SGD
from .sequential import Sequential
from .serialize import load
from .train import History, TrainingDiverged, evaluate, fit

__version__ = "0.1.0"


def set_num_threads(n: int) -> None:
    """Threads for the numba kernels and the BLAS libraries (at most NUMBA_NUM_THREADS)."""
    from .kernels import set_num_threads as _set

    _set(n)


def get_num_threads() -> int:
    """Threads the numba kernels use."""
    from .kernels import get_num_threads as _get

    return _get()

__all__ = [
    "Affine",
    "History",
    "TrainingDiverged",
    "evaluate",
    "fit",
    "load",
    "IdentityWithLoss",
    "Relu",
    "SGD",
    "Sequential",
    "Sigmoid",
    "SoftmaxWithLoss",
    "get_num_threads",
    "gradient_check",
    "reference",
    "set_num_threads",
]

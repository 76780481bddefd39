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

__version__ = "0.1.0"

__all__ = [
    "Affine",
    "IdentityWithLoss",
    "Relu",
    "SGD",
    "Sequential",
    "Sigmoid",
    "SoftmaxWithLoss",
    "gradient_check",
    "reference",
]

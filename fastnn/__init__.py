"""fastnn: the "Deep Learning from Scratch" networks, made fast.

``Sequential``, ``SimpleConvNet``, ``DeepConvNet`` and ``SGD`` follow the book's API;
``backend="numba"`` runs fused numba kernels (``fastnn.kernels``), ``backend="numpy"``
runs the NumPy reference (``fastnn.reference``) they are tested against.
"""

import os as _os

# In a source checkout fastnn/ and kernels/ are siblings; installed, kernels/ becomes
# fastnn/kernels (pyproject's package-dir). So that code run from the checkout itself
# (python -m fastnn.cli, asv's benchmark runner) finds fastnn.kernels as the installed
# package would, the checkout root joins this package's search path in that case only.
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if not _os.path.isdir(_os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "kernels")) \
        and _os.path.isfile(_os.path.join(_root, "kernels", "__init__.py")):
    __path__.append(_root)

from . import reference  # noqa: E402
from .conv import col2im, im2col  # noqa: E402
from .convnet import DeepConvNet, SimpleConvNet  # noqa: E402
from .gradcheck import gradient_check  # noqa: E402
from .layers import (  # noqa: E402  # noqa: E402
    Affine,
    BatchNormalization,
    Convolution,
    Dropout,
    IdentityWithLoss,
    IdentityWithSumSquaredLoss,
    Pooling,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
    Tanh,
)
from .optim import SGD, AdaGrad, Adam, Momentum, Nesterov, Optimizer, RMSprop  # noqa: E402
from .sequential import MultiLayerNet, MultiLayerNetExtend, Sequential, load  # noqa: E402
from .sweeps import sweep  # noqa: E402
from .threads import get_num_threads, set_num_threads, thread_policy  # noqa: E402
from .train import History, TrainingDiverged, evaluate, fit  # noqa: E402
from .trainer import Trainer  # noqa: E402
from .warmup_kernels import warmup  # noqa: E402

__version__ = "0.1.0"


__all__ = [
    "AdaGrad",
    "Adam",
    "BatchNormalization",
    "Convolution",
    "DeepConvNet",
    "Dropout",
    "Momentum",
    "MultiLayerNet",
    "MultiLayerNetExtend",
    "Nesterov",
    "Optimizer",
    "Pooling",
    "RMSprop",
    "Trainer",
    "Affine",
    "History",
    "TrainingDiverged",
    "evaluate",
    "fit",
    "load",
    "IdentityWithLoss",
    "IdentityWithSumSquaredLoss",
    "Relu",
    "SGD",
    "Sequential",
    "Sigmoid",
    "SimpleConvNet",
    "SoftmaxWithLoss",
    "Tanh",
    "col2im",
    "get_num_threads",
    "gradient_check",
    "im2col",
    "reference",
    "set_num_threads",
    "sweep",
    "thread_policy",
    "warmup",
]

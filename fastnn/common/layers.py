"""The book's ``common/layers.py``: fastnn's layer classes under the book's names.

``Relu``, ``Sigmoid``, ``Affine``, ``SoftmaxWithLoss``, ``Dropout``,
``BatchNormalization``, ``Convolution`` and ``Pooling`` are ``fastnn.layers``' (NumPy by
default; ``backend="numba"`` for the kernels). A star import gives, as the book's does,
``np``, ``im2col`` / ``col2im`` and the functions of ``fastnn.common.functions`` too.
"""

import numpy as np  # noqa: F401

from ..layers import (  # noqa: F401
    Affine,
    BatchNormalization,
    Convolution,
    Dropout,
    Pooling,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
)
from .functions import *  # noqa: F401, F403
from .util import col2im, conv_output_size, im2col  # noqa: F401

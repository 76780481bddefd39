"""The book's ``common/layers.py``: fastnn's layer classes under the book's names.

``Relu``, ``Sigmoid``, ``Affine``, ``SoftmaxWithLoss``, ``Dropout`` and
``BatchNormalization`` are ``fastnn.layers``' (NumPy by default; ``backend="numba"`` for
the kernels). A star import gives, as the book's does, ``np`` and the functions of
``fastnn.common.functions`` too. ``Convolution`` and ``Pooling`` are not provided.
"""

import numpy as np  # noqa: F401

from ..layers import Affine, BatchNormalization, Dropout, Relu, Sigmoid, SoftmaxWithLoss  # noqa: F401
from .functions import *  # noqa: F401, F403
from .util import conv_output_size  # noqa: F401

"""The book's ``ch08/deep_convnet.py``: ``fastnn.DeepConvNet``;
a star import also gives what the book's module does (``np``, ``pickle``,
``OrderedDict``, the layers, ``numerical_gradient``).

``from deep_convnet import DeepConvNet`` (the book's ch08 scripts) becomes
``from fastnn.common.deep_convnet import DeepConvNet``.
"""

import os  # noqa: F401
import pickle  # noqa: F401
import sys  # noqa: F401
from collections import OrderedDict  # noqa: F401

import numpy as np  # noqa: F401

from ..convnet import DeepConvNet  # noqa: F401
from .gradient import numerical_gradient  # noqa: F401
from .layers import *  # noqa: F401, F403

"""The book's ``ch07/simple_convnet.py``: ``fastnn.SimpleConvNet``;
a star import also gives what the book's module does (``np``, ``pickle``,
``OrderedDict``, the layers, ``numerical_gradient``).

``from simple_convnet import SimpleConvNet`` (the book's ch07 scripts) becomes
``from fastnn.common.simple_convnet import SimpleConvNet``.
"""

import os  # noqa: F401
import pickle  # noqa: F401
import sys  # noqa: F401
from collections import OrderedDict  # noqa: F401

import numpy as np  # noqa: F401

from ..convnet import SimpleConvNet  # noqa: F401
from .gradient import numerical_gradient  # noqa: F401
from .layers import *  # noqa: F401, F403

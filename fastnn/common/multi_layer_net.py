"""The book's ``common/multi_layer_net.py``: ``fastnn.MultiLayerNet``; a star import also
gives what the book's does (``np``, ``OrderedDict``, the layers, ``numerical_gradient``)."""

import os  # noqa: F401
import sys  # noqa: F401
from collections import OrderedDict  # noqa: F401

import numpy as np  # noqa: F401

from ..sequential import MultiLayerNet  # noqa: F401
from .gradient import numerical_gradient  # noqa: F401
from .layers import *  # noqa: F401, F403

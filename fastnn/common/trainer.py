"""The book's ``common/trainer.py``: ``fastnn.Trainer``; a star import also gives ``np``
and the optimizers, as the book's module does."""

import os  # noqa: F401
import sys  # noqa: F401

import numpy as np  # noqa: F401

from ..trainer import Trainer  # noqa: F401
from .optimizer import *  # noqa: F401, F403

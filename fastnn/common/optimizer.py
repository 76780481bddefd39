"""The book's ``common/optimizer.py``: fastnn's six optimizers (the book's formulas and
signatures), and ``np``, as ``from common.optimizer import *`` gives it."""

import numpy as np  # noqa: F401

from ..optim import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop  # noqa: F401

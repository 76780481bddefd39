"""The book's ``ch05/two_layer_net.py``: ``TwoLayerNet`` as a fastnn network.

``from two_layer_net import TwoLayerNet`` (chapter 5's scripts) becomes
``from fastnn.common.two_layer_net import TwoLayerNet``.
"""

import numpy as np  # noqa: F401

from ..sequential import Sequential
from .gradient import numerical_gradient  # noqa: F401
from .layers import *  # noqa: F401, F403


def TwoLayerNet(input_size, hidden_size, output_size, weight_init_std=0.01,  # noqa: N802
                **options) -> Sequential:
    """The book's ``TwoLayerNet(input_size, hidden_size, output_size,
    weight_init_std=0.01)``: Affine -> ReLU -> Affine -> SoftmaxWithLoss, ``params``
    ``W1, b1, W2, b2`` drawn as the book draws them (``weight_init_std *
    np.random.randn``, W1 then W2, from NumPy's global state), so ``np.random.seed(0)``
    gives the book's network. It is a ``fastnn.Sequential`` with one hidden layer of
    ``hidden_size`` (an int) and takes Sequential's keywords (``backend``, ``dtype`` ...);
    it is saved, loaded and copied as one.
    """
    return Sequential(input_size, [hidden_size], output_size, weight_init_std, **options)

"""Book-style layers: ``forward`` stores what ``backward`` needs, ``backward`` returns dx.

Each layer calls the ops of a backend module (``fastnn.reference`` or
``fastnn.kernels``), so the same layer runs on either. ``backward`` never modifies the
``dout`` it is given (the book's ``Relu.backward`` does; that is a trap, not a feature).

``Sequential`` keeps these layers in ``net.layers`` for users who chain them by hand; its
own methods run the backend's whole-network loop instead (``fastnn.engine``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import _validation as _V
from . import conv, reference
from ._backends import get_backend


class _Layer:
    def __init__(self, backend="numpy"):
        self.backend = get_backend(backend) if isinstance(backend, str) else backend


class Affine(_Layer):
    """out = x @ W + b. Inputs of shape (N, ...) are flattened to (N, D) as in the book.

    ``b`` None: no bias (out = x @ W; ``db`` stays None)."""

    def __init__(self, W, b, backend="numpy"):
        super().__init__(backend)
        self.W = W  # (D, H)
        self.b = b  # (H,)
        self.x = None
        self.original_x_shape = None
        self.dW = None
        self.db = None

    def forward(self, x):
        self.original_x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)  # (N, D)
        return self.backend.affine_forward(self.x, self.W, self.b)

    def backward(self, dout):
        dx, self.dW, db = self.backend.affine_backward(dout, self.x, self.W)
        self.db = None if self.b is None else db
        return dx.reshape(self.original_x_shape)


class Convolution(_Layer):
    """The book's convolution layer: out (N, FN, OH, OW) = each filter of W (FN, C, FH, FW)
    over every window of x (N, C, H, W) zero-padded by ``pad``, ``stride`` apart, plus
    b (FN,), or one number for every filter (the book's ``apply_filter.py`` passes 0).
    ``backward(dout)`` returns dx and sets ``dW`` (like W) and ``db`` (FN,).

    The math is the backend's ``conv_forward`` / ``conv_backward``; the layer checks its
    arguments (``fastnn.conv``) and keeps ``x`` and the op's ``cache`` for backward.
    """

    def __init__(self, W, b, stride=1, pad=0, backend="numpy"):
        super().__init__(backend)
        conv.check_weights(W, b)
        self.W, self.b = W, b
        self.stride = _V.check_positive_int(stride, "stride")
        self.pad = _V.check_non_negative_int(pad, "pad")
        self.x = self.cache = self.out_shape = None
        self.dW = self.db = None

    def forward(self, x):
        b = conv.check_weights(self.W, self.b)  # (the book's load_params replaces them)
        FN, C, FH, FW = self.W.shape
        x = conv.check_images(x, "x", C, self.W.dtype)
        OH, OW = conv.check_window(x.shape, FH, FW, self.stride, self.pad, "x")
        out, self.cache = self.backend.conv_forward(x, self.W, b, self.stride, self.pad)
        self.x, self.out_shape = x, (x.shape[0], FN, OH, OW)
        return out

    def backward(self, dout):
        dout = _dout(self, dout, self.W.dtype)
        dx, self.dW, self.db = self.backend.conv_backward(dout, self.cache, self.W,
                                                          self.stride, self.pad)
        return dx


class Pooling(_Layer):
    """The book's max pooling: each ``pool_h x pool_w`` window of x (N, C, H, W),
    ``stride`` apart, becomes its maximum; out is (N, C, OH, OW) with
    ``OH = 1 + (H + 2 * pad - pool_h) // stride``. ``backward`` gives each window's
    gradient to its first maximum (the book's argmax rule).
    """

    def __init__(self, pool_h, pool_w, stride=2, pad=0, backend="numpy"):
        super().__init__(backend)
        self.pool_h, self.pool_w, self.stride, self.pad = conv.check_sizes(
            pool_h, pool_w, stride, pad, ("pool_h", "pool_w"))
        self.x = self.cache = self.out_shape = None

    def forward(self, x):
        x = conv.check_images(x, "x")
        OH, OW = conv.check_window(x.shape, self.pool_h, self.pool_w, self.stride, self.pad,
                                   "x", "pooling window")
        out, self.cache = self.backend.pool_forward(x, self.pool_h, self.pool_w, self.stride,
                                                    self.pad)
        self.x, self.out_shape = x, (*x.shape[:2], OH, OW)
        return out

    def backward(self, dout):
        dout = _dout(self, dout, self.x.dtype if self.x is not None else None)
        return self.backend.pool_backward(dout, self.cache, self.pool_h, self.pool_w,
                                          self.stride, self.pad)


def _dout(layer, dout, dtype) -> np.ndarray:
    """The upstream gradient of a convolution or pooling layer's last forward, checked:
    its output's shape, a C-contiguous array of the layer's dtype."""
    if layer.out_shape is None:
        raise ValueError(f"{type(layer).__name__}.backward: call forward first (backward "
                         "needs what it keeps)")
    a = _V.as_real_array(dout, "dout")
    if a.shape != layer.out_shape:
        raise _V.BadValue("dout", f"expected the shape of the forward's output "
                          f"{layer.out_shape}, got {a.shape}")
    return np.ascontiguousarray(a, dtype=dtype)


class _Activation(_Layer):
    """An activation layer: the backend's ``{op}_forward`` / ``{op}_backward`` (the
    backward takes the forward's output, so that is all it keeps)."""

    op = ""

    def __init__(self, backend="numpy"):
        super().__init__(backend)
        self.out = None
        self._forward = getattr(self.backend, f"{self.op}_forward")
        self._backward = getattr(self.backend, f"{self.op}_backward")

    def forward(self, x):
        self.out = self._forward(x)
        return self.out

    def backward(self, dout):
        return self._backward(dout, self.out)


class Relu(_Activation):
    """out = max(x, 0); the gradient passes where the output is positive."""

    op = "relu"


class Sigmoid(_Activation):
    """out = 1 / (1 + exp(-x)), computed without overflow."""

    op = "sigmoid"


class Tanh(_Activation):
    """out = tanh(x); the gradient is dout * (1 - out^2)."""

    op = "tanh"


class SoftmaxWithLoss(_Layer):
    """Softmax then mean cross-entropy; labels are class indices (N,) or one-hot (N, C)."""

    def __init__(self, backend="numpy"):
        super().__init__(backend)
        self.loss = None
        self.dx = None  # (softmax - onehot) / N, computed in the same pass as the loss
        self.x = None
        self.t = None

    @property
    def y(self):
        """The softmax probabilities of the last forward (the book's ``self.y``)."""
        return None if self.x is None else reference.softmax(self.x)

    def forward(self, x, t):
        self.x = x
        self.t = t
        self.loss, self.dx = self.backend.softmax_cross_entropy(x, t)
        return self.loss

    def backward(self, dout=1):
        return self.dx * dout


class IdentityWithLoss(_Layer):
    """Identity output with the squared-error loss mean_n(0.5 * sum (y - t)**2)."""

    _loss = "squared_error"

    def __init__(self, backend="numpy"):
        super().__init__(backend)
        self.loss = None
        self.y = None
        self.dx = None

    def forward(self, x, t):
        self.y = x
        self.loss, self.dx = getattr(self.backend, self._loss)(x, t)
        return self.loss

    def backward(self, dout=1):
        return self.dx * dout


class IdentityWithSumSquaredLoss(IdentityWithLoss):
    """Identity output with the sum of squared errors sum_n sum_c (y - t)**2 (gradient
    2 * (y - t)): the loss of PyTorch's NumPy warm-up, ``np.square(y_pred - y).sum()``."""

    _loss = "sum_squared_error"


class BatchNormalization(_Layer):
    """The book's batch normalisation over the batch axis (inputs (N, ...) flattened).

    ``forward(x, train_flg=True)``: training uses the batch's mean and biased variance
    (eps 1e-6) and moves ``running_mean``/``running_var`` (momentum 0.9, zeros at the
    first call unless given); prediction uses them. ``backward`` sets ``dgamma`` and
    ``dbeta`` and returns dx.
    """

    def __init__(self, gamma, beta, momentum=0.9, running_mean=None, running_var=None,
                 backend="numpy"):
        super().__init__(backend)
        if momentum != 0.9:
            raise ValueError(f"momentum: fastnn's BatchNormalization uses the book's 0.9, got "
                             f"{momentum!r}")
        self.gamma, self.beta, self.momentum = gamma, beta, momentum
        self.running_mean, self.running_var = running_mean, running_var
        self.input_shape = None
        self.xc = self.std = None
        self.dgamma = self.dbeta = None

    def forward(self, x, train_flg=True):
        self.input_shape = x.shape
        x = x.reshape(x.shape[0], -1)
        if self.running_mean is None:
            self.running_mean = np.zeros(x.shape[1], x.dtype)
            self.running_var = np.zeros(x.shape[1], x.dtype)
        out, self.xc, self.std = self.backend.batchnorm_forward(
            x, self.gamma, self.beta, self.running_mean, self.running_var, bool(train_flg))
        return out.reshape(self.input_shape)

    def backward(self, dout):
        dout = dout.reshape(dout.shape[0], -1)
        dx, self.dgamma, self.dbeta = self.backend.batchnorm_backward(dout, self.xc, self.std,
                                                                      self.gamma)
        return dx.reshape(self.input_shape)


class Dropout(_Layer):
    """The book's Dropout (not inverted): training keeps each unit where
    ``rand > dropout_ratio``; prediction scales by ``1 - dropout_ratio``.

    ``draw(shape)`` gives the uniform numbers (default ``np.random.rand``, the book's).
    """

    def __init__(self, dropout_ratio=0.5, backend="numpy", draw=None):
        super().__init__(backend)
        self.dropout_ratio = dropout_ratio
        self.draw = draw or (lambda shape: np.random.rand(*shape))
        self.mask = None

    def forward(self, x, train_flg=True):
        if train_flg:
            self.mask = self.draw(x.shape) > self.dropout_ratio
        return self.backend.dropout_forward(x, self.mask, bool(train_flg), self.dropout_ratio)

    def backward(self, dout):
        return self.backend.dropout_backward(dout, self.mask)


class Activation(NamedTuple):
    """A hidden activation's registration: its layer class, and the weight-init scheme
    that suits it ("he": std sqrt(2 / fan_in); "xavier": std sqrt(1 / fan_in))."""

    layer: type
    init: str


# The one registration of each hidden activation, by name: ``Sequential``, its init
# defaults and the command line's choices read it. (Its math: ``act_value`` and
# ``act_grad_value`` in ``kernels/affine_act.py``; its NumPy twin in ``reference``.)
ACTIVATIONS = {
    "relu": Activation(Relu, "he"),
    "sigmoid": Activation(Sigmoid, "xavier"),
    "tanh": Activation(Tanh, "xavier"),
}
# std = sqrt(k / fan_in): by scheme, or by the activation whose scheme it is (the book's
# weight_init_std="relu" / "sigmoid")
_SCHEMES = {"he": 2.0, "xavier": 1.0}
_INIT_STD = {**_SCHEMES, **{name: _SCHEMES[a.init] for name, a in ACTIVATIONS.items()}}


def init_std(weight_init_std, fan_in: int) -> float:
    """The initial weights' standard deviation for a layer of ``fan_in`` inputs: a
    positive number as it is, or a scheme's (or its activation's) ``sqrt(k / fan_in)``."""
    if isinstance(weight_init_std, str):
        key = weight_init_std.lower()
        if key not in _INIT_STD:
            raise ValueError(f"weight_init_std: expected a positive number or one of "
                             f"{', '.join(map(repr, _INIT_STD))}, got {weight_init_std!r}")
        return math.sqrt(_INIT_STD[key] / fan_in)
    return _V.check_positive_float(weight_init_std, "weight_init_std")


# The loss names every part of fastnn accepts (Sequential's ``loss``, the CLI's --loss):
# softmax cross-entropy (mean), squared error (the book's 0.5 * mean), its plain sum
LOSSES = {"softmax": SoftmaxWithLoss, "mse": IdentityWithLoss, "sse": IdentityWithSumSquaredLoss}
# The layer kinds a network is built from by name (the convnets' plans, fastnn.convnet):
# each kind's math is its backend ops, written once; the class checks and dispatches
LAYER_KINDS = {"conv": Convolution, "pool": Pooling, "affine": Affine, "relu": Relu,
               "dropout": Dropout}

__all__ = ["Affine", "Convolution", "Pooling", "Relu", "Sigmoid", "Tanh", "SoftmaxWithLoss",
           "IdentityWithLoss", "IdentityWithSumSquaredLoss", "BatchNormalization", "Dropout"]

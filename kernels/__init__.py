"""fastnn.kernels: numba kernels with the names and signatures of ``fastnn.reference``.

Installed as ``fastnn.kernels`` from the top-level folder ``kernels/``; imports nothing
from ``fastnn``. The modules, each with one concern:

* ``_config``: every numba option (the ``compiled`` and ``inline`` decorators, the cache);
* ``_threads``: the BLAS thread policy (automatic by the work's size, or forced);
* ``_cores``: what bounds the usable cores (CPU affinity, the cgroup's CPU quota);
* ``_blas``: ``gemm``, NumPy's own BLAS called from compiled code (numba's ``np.dot``
  where it cannot be bound), small products as a loop;
* ``affine_act``: an affine layer with any activation, forward and backward bodies;
* ``losses``: softmax cross-entropy and squared error, and the one loss dispatch;
* ``optim``: the optimizer stage (SGD's update and its fused form; Momentum, Nesterov,
  AdaGrad, RMSprop and Adam as one flat pass);
* ``batchnorm``: a hidden layer's BatchNorm and Dropout, forward and backward;
* ``conv``: convolution and max pooling, forward and backward, and the book's
  ``im2col``/``col2im``, parallel over fixed blocks of images (``_blocks``);
* ``network``: the one network loop, composing the bodies above (prediction,
  evaluation, gradients, a training step, the compiled training loop are its modes);
* ``entry``: its Python entry points (``forward``, ``evaluate``, ``gradient``,
  ``sgd_step``, ``train_batches``, ``train_periods``), which group its arguments and
  read its status by name.

Kernels assume valid input (``fastnn.Sequential`` validates) and return status instead
of raising.
"""

from ._config import get_num_threads, set_num_threads
from .affine_act import (
    affine_act_backward_sgd,
    affine_act_forward_checked,
    affine_backward,
    affine_forward,
    affine_relu_backward,
    affine_relu_forward,
    affine_sigmoid_backward,
    affine_sigmoid_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from .batchnorm import (
    batchnorm_backward,
    batchnorm_forward,
    dropout_backward,
    dropout_forward,
)
from .conv import (
    col2im,
    conv_backward,
    conv_forward,
    conv_relu_backward,
    conv_relu_forward,
    im2col,
    pool_backward,
    pool_forward,
)
from .entry import evaluate, forward, gradient, sgd_step, train_batches, train_periods
from .losses import softmax, softmax_cross_entropy, squared_error, sum_squared_error
from .optim import (
    adagrad_update,
    adam_update,
    momentum_update,
    nesterov_update,
    rmsprop_update,
    sgd_update,
    sgd_update_affine,
)

__all__ = [
    "affine_forward",
    "affine_backward",
    "relu_forward",
    "relu_backward",
    "affine_relu_forward",
    "affine_relu_backward",
    "sigmoid_forward",
    "sigmoid_backward",
    "affine_sigmoid_forward",
    "affine_sigmoid_backward",
    "tanh_forward",
    "tanh_backward",
    "affine_act_forward_checked",
    "affine_act_backward_sgd",
    "softmax",
    "softmax_cross_entropy",
    "squared_error",
    "sum_squared_error",
    "sgd_update",
    "sgd_update_affine",
    "momentum_update",
    "nesterov_update",
    "adagrad_update",
    "rmsprop_update",
    "adam_update",
    "batchnorm_forward",
    "batchnorm_backward",
    "dropout_forward",
    "dropout_backward",
    "im2col",
    "col2im",
    "conv_forward",
    "conv_backward",
    "conv_relu_forward",
    "conv_relu_backward",
    "pool_forward",
    "pool_backward",
    "forward",
    "evaluate",
    "gradient",
    "sgd_step",
    "train_batches",
    "train_periods",
    "get_num_threads",
    "set_num_threads",
]

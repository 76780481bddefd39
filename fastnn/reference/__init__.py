"""The NumPy reference: the specification every numba kernel is tested against.

Plain, book-style NumPy: unfused, obvious, allocating the way the book's code does.
``fastnn.kernels`` exposes the same names with the same signatures; when the two
disagree, the kernel is wrong.

Conventions shared by both modules
----------------------------------
* Shapes: ``x`` is (N, D), ``W`` is (D, H), ``b`` is (H,), ``out`` is (N, H);
  ``scores`` is (N, C). ``N`` batch, ``D`` inputs, ``H`` hidden, ``C`` classes/outputs.
* Every optional ``out``/``dx``/``dW``/``db``/``dscores`` argument is a preallocated
  C-contiguous array of the result's shape and dtype; when given, the result is written
  into it and it is returned, otherwise a new array is returned.
* Activation backward passes take the forward *output* ``out`` (ReLU's mask is
  ``out > 0``, the sigmoid's derivative is ``out * (1 - out)``), so nothing else has to
  be cached between forward and backward.
* ``dout`` is never modified unless ``overwrite_dout=True`` is passed; then it holds
  the gradient at the affine output (dz) afterwards.
* Losses: softmax cross-entropy is ``mean_n(logsumexp(scores[n]) - scores[n, t[n]])``;
  squared error ("mse") is ``mean_n(0.5 * sum_c (y[n, c] - t[n, c])**2)``; the sum of
  squared errors ("sse") is ``sum_n sum_c (y[n, c] - t[n, c])**2``, not a mean.
* ``b`` may be None wherever a layer's bias is taken: the layer has none (x @ W); a
  network without biases has -1 as every layer's b offset in its layout.
* Inputs are assumed valid (the public API in ``fastnn.sequential`` validates them).
* Convolution and pooling (``conv``) work on images: x is (N, C, H, W), filters W
  (FN, C, FH, FW); their forward passes return (out, cache), the cache opaque and
  particular to the module (the reference's holds the book's ``col``, the kernels' x).
* Whole networks (``forward``, ``evaluate``, ``gradient``, ``sgd_step``,
  ``train_batches``) take flat buffers described by a ``layout`` (see
  ``fastnn.kernels.network``) and return status instead of raising: ``n_bad`` counts
  the first layer's non-finite pre-activations, ``bad_label`` is the index of the first
  class index out of range or -1. This module runs them with its own plain loop over
  the per-layer functions above; it shares no code with the kernels.
"""

from __future__ import annotations

from .affine_act import (  # noqa: F401
    ACTIVATIONS,  # noqa: F401
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
from .batchnorm import (  # noqa: F401
    batchnorm_backward,
    batchnorm_forward,
    dropout_backward,
    dropout_forward,
)
from .conv import (  # noqa: F401
    col2im,
    conv_backward,
    conv_forward,
    conv_relu_backward,
    conv_relu_forward,
    im2col,
    pool_backward,
    pool_forward,
)
from .losses import (  # noqa: F401
    softmax,
    softmax_cross_entropy,
    squared_error,
    sum_squared_error,
)
from .network import (  # noqa: F401
    evaluate,
    forward,
    gradient,
    sgd_step,
    train_batches,
    train_periods,
)
from .optim import (  # noqa: F401
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
]

"""fastnn.kernels: numba kernels with the names and signatures of ``fastnn.reference``.

Installed as ``fastnn.kernels`` from the top-level folder ``kernels/``. GEMMs go through
NumPy's own BLAS, called from inside the kernels (see ``_blas``); the passes between
them are fused numba loops, each compiled serially and in parallel (see ``_config``).
Kernels assume valid input: ``fastnn.Sequential`` validates.
"""

from ._config import get_num_threads, set_num_threads
from .affine_relu import (
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
)
from .network import sgd_step
from .sgd import sgd_update, sgd_update_affine
from .softmax_xent import softmax, softmax_cross_entropy, squared_error

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
    "affine_act_forward_checked",
    "affine_act_backward_sgd",
    "softmax",
    "softmax_cross_entropy",
    "squared_error",
    "sgd_update",
    "sgd_update_affine",
    "sgd_step",
    "get_num_threads",
    "set_num_threads",
]

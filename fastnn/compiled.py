"""The compiled training path: whole stretches of fit() inside one numba function.

``fit`` hands the batches between two evaluations to ``CompiledTrainer.run``, which
runs them in ``fastnn.kernels.train_loop.train_batches`` with no Python between steps.
It computes what the step-by-step path computes (the same fused passes, in the same
order), so results agree to rounding; ``choose_path`` picks the faster path.
"""

from __future__ import annotations

import numpy as np

# Up to this many multiply-adds per step (batch * sum(fan_in * fan_out)) fit() takes the
# compiled path. Above it the step path (one compiled call per step with NumPy's BLAS
# inside, ``kernels.sgd_step``) wins: the compiled path's products go through numba's
# np.dot, i.e. SciPy's BLAS, a second thread pool that competes with NumPy's. Measured,
# ms per iteration of fit(), step / compiled, float64:
#   64-128-128-10:  batch 16 (0.41 M) 0.085 / 0.070; batch 32 (0.83 M) 0.127 / 0.187
#   784-128-128-10: batch 4 (0.47 M) 0.074 / 0.086;  batch 8 (0.94 M) 0.124 / 0.141
#   64-32-10:       batch 128 (0.30 M) 0.055 / 0.039
# so the bound sits at the crossover. `python benchmarks/compare.py --only compiled`
# prints the 784-wide table.
COMPILED_MAX_WORK = 500_000
# Products smaller than this many multiply-adds run as loops inside the compiled path.
BLAS_MIN = 16_384


def step_work(net, batch_size: int) -> int:
    return batch_size * sum(i * o for i, o in zip(net.sizes[:-1], net.sizes[1:]))


def choose_path(net, batch_size, callbacks, compiled) -> str:
    """"compiled" or "step" for a fit() call (``compiled``: True, False or None = auto)."""
    if compiled is False:
        return "step"
    needs_python = [cb for cb in callbacks if hasattr(cb, "on_step")]
    if net.backend != "numba" or needs_python:
        if compiled:
            why = ("it needs backend='numba'" if net.backend != "numba"
                   else "a callback has on_step(), which runs Python after every step")
            raise ValueError(f"compiled: the compiled path cannot be used here: {why}")
        return "step"
    if compiled:
        return "compiled"
    return "compiled" if step_work(net, batch_size) <= COMPILED_MAX_WORK else "step"


class CompiledTrainer:
    """Runs stretches of batches (``order``/``starts``) for one network in one kernel call."""

    def __init__(self, net, lr: float, batch_size: int, blas_min: int = BLAS_MIN):
        from .kernels import network, train_loop

        self.kinds = train_loop
        self.small = all(fan_in * fan_out * batch_size < blas_min
                         for fan_in, fan_out in zip(net.sizes[:-1], net.sizes[1:]))
        self.net = net
        self.lr = net.dtype.type(lr)
        self.blas_min = int(blas_min)
        self.layout = network.layout_of(tuple(net.sizes))
        self.act = 1 if net.activation == "relu" else 2  # kernels.affine_relu.RELU / SIGMOID

    def run(self, x: np.ndarray, t: np.ndarray, order: np.ndarray,
            starts: np.ndarray) -> np.ndarray:
        """Train on the batches ``order[starts[i]:starts[i + 1]]`` of validated x, t.

        Returns each batch's loss (from the first non-finite one on: not applied).
        """
        net, k = self.net, self.kinds
        if net.loss_name == "mse":
            kind, labels, targets = k.MSE, np.empty(0, np.intp), t
        elif t.ndim == 1:
            kind, labels, targets = k.SOFTMAX_LABELS, t, np.empty((0, 0), net.dtype)
        else:
            kind, labels, targets = k.SOFTMAX_ROWS, np.empty(0, np.intp), t
        losses = np.empty(starts.shape[0] - 1)
        if self.small:  # every product below blas_min: the view-free loop
            k.train_batches_small(net.params.flat, self.layout, x, labels, targets, order,
                                  starts, self.lr, self.act, kind, losses)
        else:
            k.train_batches(net.params.flat, self.layout, x, labels, targets, order, starts,
                            self.lr, self.act, kind, self.blas_min, losses)
        return losses

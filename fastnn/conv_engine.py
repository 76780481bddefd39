"""ConvEngine: a convolutional network on one backend, driven with validated arrays.

What ``fastnn.engine.Engine`` is to ``Sequential``, this is to the convnets
(``fastnn.convnet``): the public methods validate, then call ``net.engine``; ``Trainer``
and the benchmarks validate once and call it in a loop. Its methods carry Engine's names
and signatures (``predict``, ``evaluate``, ``evaluate_sums``, ``gradient``, ``step``,
``fixed_masks``), so code written for one drives the other.

How it runs: a Python loop over the network's layer objects (``fastnn.layers``), each
calling its backend ops: every conv and pooling pass is a whole batch of images (a
millisecond or more), so the call between layers costs nothing measurable. Each pass
runs inside the thread policy's ``for_work`` for its size (``fastnn.kernels._threads``),
as the plain networks' passes do.

Fused runs: each (Convolution, Relu) or (Convolution, Relu, Pooling) run of layers,
the stages of both book convnets, runs as one pass each way (``ConvReluRun``: the
backend's ``conv_relu_forward`` / ``conv_relu_backward``), per image while its
convolution's output is in cache; the same bits as the three layers' own passes. The
Convolution object is left holding what its own passes would have kept (``x``, ``dW``,
``db``); the Relu and Pooling objects are not used. The network's first layer computes
no dx (nothing reads it).

Arguments: x is a C-contiguous (N, C, H, W) array of the network's dtype; t is intp
class indices (N,) or (N, classes) rows of that dtype (``ConvNet.validate`` makes them).
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from . import conv
from .engine import _locked
from .kernels._threads import for_work
from .layers import Convolution, Dropout, Pooling, Relu
from .params import Gradients, ParamDict

EVAL_ROWS = 100  # images per pass when a data set is predicted or evaluated (the book's)


class ConvReluRun:
    """A Convolution, the Relu after it and optionally the Pooling after that, run as
    one layer: ``forward(x)`` / ``backward(dout)`` (dx None where not ``need_dx``)."""

    def __init__(self, conv_layer: Convolution, relu: Relu, pool: Pooling | None = None,
                 need_dx: bool = True):
        self.conv, self.relu, self.pool = conv_layer, relu, pool
        self.need_dx = need_dx
        self.backend = conv_layer.backend
        self.pooling = None if pool is None else (pool.pool_h, pool.pool_w, pool.stride,
                                                  pool.pad)
        self.cache = None

    def forward(self, x):
        c, p = self.conv, self.pool
        b = conv.check_weights(c.W, c.b)  # (the book's load_params replaces them)
        FN, C, FH, FW = c.W.shape
        x = conv.check_images(x, "x", C, c.W.dtype)
        OH, OW = conv.check_window(x.shape, FH, FW, c.stride, c.pad, "x")
        out_shape = (x.shape[0], FN, OH, OW)
        if p is not None:
            conv.check_window(out_shape, p.pool_h, p.pool_w, p.stride, p.pad, "x",
                              "pooling window")
        out, self.cache = self.backend.conv_relu_forward(x, c.W, b, c.stride, c.pad,
                                                         self.pooling)
        # the Convolution as its own forward leaves it (both backends' fused caches
        # start with the convolution's); the Relu and Pooling keep nothing here (with
        # pooling the kernels never hold the Relu's whole output)
        c.x, c.cache, c.out_shape = x, self.cache[0], out_shape
        return out

    def backward(self, dout):
        c = self.conv
        dout = np.ascontiguousarray(dout, c.W.dtype)
        dx, c.dW, c.db = self.backend.conv_relu_backward(dout, self.cache, c.W, c.stride,
                                                          c.pad, self.pooling, self.need_dx)
        return dx


def fused(sequence) -> list:
    """The passes of a layer sequence: each (Convolution, Relu[, Pooling]) run as one
    ``ConvReluRun`` (the first layer's without dx), the other layers as they are."""
    layers, passes, i = list(sequence), [], 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, Convolution) and i + 1 < len(layers) and \
                isinstance(layers[i + 1], Relu):
            pool = layers[i + 2] if i + 2 < len(layers) and \
                isinstance(layers[i + 2], Pooling) else None
            passes.append(ConvReluRun(layer, layers[i + 1], pool, need_dx=i > 0))
            i += 3 if pool is not None else 2
        else:
            passes.append(layer)
            i += 1
    return passes


class ConvEngine:
    """The passes of one convolutional network.

    ``sequence``: the layer objects in order; ``last_layer``: its SoftmaxWithLoss;
    ``param_layers``: the layer holding W{i}, b{i} for i = 1, 2, ...; ``work``:
    multiply-adds per image of a forward pass; ``draw(shape)``: uniform [0, 1) floats
    for the Dropout masks (the network's random source).
    """

    loss = "softmax"

    def __init__(self, backend, params: ParamDict, sequence, last_layer, param_layers,
                 work: int, draw):
        self.backend = backend
        self.params = params
        self.sequence = list(sequence)
        self.passes = fused(self.sequence)
        self.last_layer = last_layer
        self.param_layers = list(param_layers)
        self.work = int(work)
        self.draw = draw
        self.dropout = any(isinstance(layer, Dropout) for layer in self.sequence)
        self._grads = None  # the gradient buffer of ``step``
        self._fixed = None  # the uniform draws replayed by fixed_masks (a list), or None
        self._replay = 0
        self.lock = threading.Lock()
        self.used = False

    # --- the random source of the Dropout layers -----------------------------------------

    def masks_draw(self, shape):
        """What each Dropout layer draws from: ``draw``, or inside ``fixed_masks`` the
        first pass's draws again, in order."""
        if self._fixed is None:
            return self.draw(shape)
        if self._replay == len(self._fixed):
            self._fixed.append(self.draw(shape))
        u = self._fixed[self._replay]
        if u.shape != tuple(shape):
            raise ValueError(f"masks: the fixed draws have shape {u.shape}, this pass needs "
                             f"{tuple(shape)} (one batch size inside fixed_masks)")
        self._replay += 1
        return u

    @contextlib.contextmanager
    def fixed_masks(self, draws=None):
        """Within this block every training-mode pass uses the same Dropout masks: those
        of the first pass inside it, or ``draws`` (the list this block yields, from
        another engine of the same network: its uniform draws, one per Dropout layer).
        For gradient checks: a fixed mask makes the loss a function."""
        saved = self._fixed
        self._fixed = [] if draws is None else list(draws)
        try:
            yield self._fixed
        finally:
            self._fixed = saved

    # --- passes --------------------------------------------------------------------------

    def _forward(self, x, train: bool):
        """Scores of one batch: every layer's forward, Dropout in ``train`` mode."""
        self._replay = 0
        with for_work(x.shape[0] * self.work):
            for layer in self.passes:
                x = layer.forward(x, train) if isinstance(layer, Dropout) else layer.forward(x)
        return x

    def _rows(self, N: int, train: bool, rows: int | None) -> int:
        """Images per pass: ``rows`` (EVAL_ROWS), or all of them in training mode with
        Dropout (one mask per layer for the whole batch, drawn as the book draws it)."""
        if train and self.dropout:
            return N
        return max(1, min(N, rows or EVAL_ROWS))

    @_locked
    def predict(self, x, names=("x", "t"), train: bool = False,
                rows: int | None = None) -> np.ndarray:
        """Scores (N, classes), a new array, ``rows`` images per pass."""
        step = self._rows(x.shape[0], train, rows)
        parts = [self._forward(x[i:i + step], train) for i in range(0, x.shape[0], step)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def evaluate(self, x, t, names=("x", "t"), train: bool = False,
                 rows: int | None = None) -> tuple[float, float]:
        """Mean loss and accuracy over a whole data set."""
        loss, correct = self.evaluate_sums(x, t, names, train, rows)
        return loss, correct / x.shape[0]

    @_locked
    def evaluate_sums(self, x, t, names=("x", "t"), train: bool = False,
                      rows: int | None = None) -> tuple[float, int]:
        """Mean loss and the number of rows whose highest score is the label, ``rows``
        images per pass."""
        N = x.shape[0]
        step = self._rows(N, train, rows)
        total, correct = 0.0, 0
        for i in range(0, N, step):
            scores = self._forward(x[i:i + step], train)
            ts = t[i:i + step]
            total += float(self.last_layer.forward(scores, ts)) * scores.shape[0]
            labels = ts if ts.ndim == 1 else np.argmax(ts, axis=1)
            correct += int(np.count_nonzero(np.argmax(scores, axis=1) == labels))
        return total / N, correct

    def _gradient_into(self, x, t, grads: Gradients) -> float:
        """Backpropagation (training mode) of one batch into ``grads``; the loss."""
        loss = float(self.last_layer.forward(self._forward(x, True), t))
        with for_work(x.shape[0] * self.work):
            dout = self.last_layer.backward(1)
            for layer in reversed(self.passes):
                dout = layer.backward(dout)
        for i, layer in enumerate(self.param_layers, start=1):
            grads[f"W{i}"][...] = layer.dW
            grads[f"b{i}"][...] = layer.db
        return loss

    @_locked
    def gradient(self, x, t, names=("x", "t")) -> tuple[float, Gradients]:
        """The mean loss and a new Gradients dict of every parameter (training mode)."""
        grads = Gradients(np.empty_like(self.params.flat), self.params.layout)
        return self._gradient_into(x, t, grads), grads

    @_locked
    def step(self, x, t, optimizer, names=("x", "t")) -> float:
        """One training step with any fastnn optimizer: the gradient into a buffer the
        engine keeps, then the optimizer's one pass over the flat buffers. The batch's
        loss; when it is NaN/Inf nothing is updated."""
        if self._grads is None:
            self._grads = Gradients(np.empty_like(self.params.flat), self.params.layout)
        loss = self._gradient_into(x, t, self._grads)
        if np.isfinite(loss):
            optimizer.update_flat(self.params, self._grads, self.backend)
        return loss

    def sgd_step(self, x, t, lr: float, names=("x", "t")) -> float:
        """One SGD step (``step`` with ``SGD(lr)``)."""
        from .optim import SGD

        return self.step(x, t, SGD(lr), names)

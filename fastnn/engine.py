"""Engine: one network on one backend, driven with arrays that are already validated.

``Sequential`` validates its arguments and calls an ``Engine``; so do ``fit``, the CLI
and the benchmarks (``net.engine``), which validate once and then call it in a loop.
The engine owns the work buffers (one ``Workspace`` per recent batch size), calls the
backend's whole-network functions (``forward``, ``evaluate``, ``gradient``,
``sgd_step``, ``train_batches``: the numba kernels' one network loop, or the NumPy
reference's own loop) and turns the status they return into the usual errors.

Arguments are the kernels' inputs: x is a C-contiguous (N, D) array of the network's
dtype; t is intp class indices (N,) or (N, C) rows of that dtype (``Sequential.validate``
makes them). The ``names`` tuples only label error messages.

Thread safety: the work buffers belong to the network, so the calls on one engine are
serialised by a lock (two threads that use one network take turns; use one network per
thread to train in parallel).
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict

import numpy as np

from . import _validation as V
from .params import Gradients, ParamDict, Workspace

MAX_WORKSPACES = 4  # batch sizes whose buffers are kept (train, last batch, evaluation ...)
# Rows per pass when a whole data set is evaluated or predicted: the work buffers stay
# small (784-128-128-10 float64: 4.4 MB for both) whatever the data set's size.
EVAL_ROWS = 1024


def _locked(method):
    """Run ``method`` holding the engine's lock (its work buffers are shared state)."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self.lock:
            return method(self, *args, **kwargs)

    return run


class Engine:
    """The entry points of one network (``params``) on one backend module."""

    def __init__(self, backend, params: ParamDict, activation: str, loss: str):
        self.backend = backend
        self.params = params
        self.layout = params.layout
        self.activation = activation
        self.loss = loss
        self.n_classes = int(self.layout[-1, 2])
        self._workspaces: OrderedDict[int, Workspace] = OrderedDict()
        self.lock = threading.Lock()

    def workspace(self, N: int) -> Workspace:
        """The work buffers for batches of N rows (kept for the last few sizes)."""
        ws = self._workspaces.get(N)
        if ws is None:
            ws = self._workspaces[N] = Workspace(N, self.layout, self.params.flat.dtype)
            while len(self._workspaces) > MAX_WORKSPACES:
                self._workspaces.popitem(last=False)
        else:
            self._workspaces.move_to_end(N)
        return ws

    def _check(self, n_bad: int, bad_label: int, x, t, names) -> None:
        """Raise what a kernel's status means for the caller's arguments, if anything.

        A label out of range is a ValueError; non-finite first-layer pre-activations are
        one when x holds NaN/Inf (else the weights or an overflow: the loss is NaN).
        """
        if bad_label >= 0:
            V.check_label_range(t, names[1], self.n_classes)
        if n_bad:
            V.raise_if_nonfinite(x, names[0])

    # --- forward only ------------------------------------------------------------------

    @_locked
    def predict(self, x, names=("x", "t")) -> np.ndarray:
        """Scores (N, C), a new array; computed EVAL_ROWS rows at a time."""
        out = np.empty((x.shape[0], self.n_classes), self.params.flat.dtype)
        for start in range(0, x.shape[0], EVAL_ROWS):
            xs = x[start:start + EVAL_ROWS]
            ws = self.workspace(xs.shape[0])
            with np.errstate(over="ignore", invalid="ignore"):
                n_bad = self.backend.forward(xs, self.params.flat, self.layout, ws.acts,
                                             self.activation)
            self._check(n_bad, -1, xs, None, names)
            out[start:start + xs.shape[0]] = ws.scores
        return out

    @_locked
    def evaluate(self, x, t, names=("x", "t")) -> tuple[float, float | None]:
        """Mean loss and accuracy (None for regression) over a whole data set."""
        loss_sum, correct = 0.0, 0
        for start in range(0, x.shape[0], EVAL_ROWS):
            xs, ts = x[start:start + EVAL_ROWS], t[start:start + EVAL_ROWS]
            ws = self.workspace(xs.shape[0])
            with np.errstate(over="ignore", invalid="ignore"):
                loss, right, n_bad, at = self.backend.evaluate(
                    xs, ts, self.params.flat, self.layout, ws.acts, ws.dacts,
                    self.activation, self.loss)
            self._check(n_bad, at, xs, ts, names)
            loss_sum += loss * xs.shape[0]
            correct += right
        acc = correct / x.shape[0] if self.loss == "softmax" else None
        return loss_sum / x.shape[0], acc

    # --- training ----------------------------------------------------------------------

    @_locked
    def gradient(self, x, t, names=("x", "t")) -> tuple[float, Gradients]:
        """The mean loss and a new Gradients dict of every parameter."""
        ws = self.workspace(x.shape[0])
        grads = Gradients(np.empty_like(self.params.flat), self.layout)
        with np.errstate(over="ignore", invalid="ignore"):
            loss, n_bad, at = self.backend.gradient(x, t, self.params.flat, self.layout,
                                                    ws.acts, ws.dacts, grads.flat,
                                                    self.activation, self.loss)
        self._check(n_bad, at, x, t, names)
        if n_bad:  # the weights are not finite: every gradient is undefined
            grads.flat[...] = np.nan
        return loss, grads

    @_locked
    def sgd_step(self, x, t, lr: float, names=("x", "t")) -> float:
        """One SGD step; the batch's loss (NaN/Inf: nothing was updated)."""
        ws = self.workspace(x.shape[0])
        # (no np.errstate here: compiled code raises no NumPy warnings, the reference
        # guards its own passes, and entering it costs a microsecond per step)
        loss, n_bad, at = self.backend.sgd_step(x, t, self.params.flat, self.layout, ws.acts,
                                                ws.dacts, self.activation, self.loss, lr)
        if n_bad or at >= 0:
            self._check(n_bad, at, x, t, names)
        return loss

    @_locked
    def train_batches(self, x, t, order, starts, lr: float) -> tuple[np.ndarray, int]:
        """SGD steps on batches ``order[starts[i]:starts[i + 1]]`` of the validated set.

        Returns each batch's loss and the index of the first batch not applied (-1: all
        were); see ``fastnn.kernels.train_batches``.
        """
        losses = np.empty(starts.shape[0] - 1)
        with np.errstate(over="ignore", invalid="ignore"):
            stop = self.backend.train_batches(x, t, order, starts, self.params.flat,
                                              self.layout, self.activation, self.loss, lr,
                                              losses)
        return losses, stop

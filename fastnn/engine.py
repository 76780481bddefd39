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

Threads: each kernel call runs inside ``for_work`` (``fastnn.kernels._threads``): the
numba kernels run their fixed blocks on the automatic policy's count for the call's size
(rows x multiply-adds per row) and the cores free at the time, one BLAS thread each; the
reference runs on BLAS's threads, chosen by size alone; or the count forced with
``fastnn.set_num_threads(n)``. For the call only: the process's own settings are put
back when the call returns or raises.

Thread safety: the work buffers belong to the network, so the calls on one engine are
serialised by a lock (two threads that use one network take turns; use one network per
thread to train in parallel).
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
from collections import OrderedDict

import numpy as np

from . import _validation as V
from .kernels._threads import for_work, policy, threads_for
from .params import Extras, Gradients, ParamDict, Workspace

MAX_WORKSPACES = 4  # batch sizes whose buffers are kept (train, last batch, evaluation ...)
# Rows per pass when a whole data set is evaluated or predicted: the work buffers stay
# small whatever the data set's size. 512, not 1024, so that a digits evaluation stays on
# one BLAS thread under the automatic policy (a second thread, left spinning, slowed the
# training steps after it on a busy machine: docs/performance.md, "Threads").
EVAL_ROWS = 512


# A first call that compiles takes seconds (numba; later runs load the kernels from its
# cache in about 0.2 s): an engine's first call that takes longer than this is announced,
# once per process.
FIRST_USE_NOTICE_SECONDS = 1.0
_noticed = False
_inside = threading.local()  # within a compile_notice block: calls inside stay quiet

COMPILE_MESSAGE = ("compiling kernels (first run only; later runs load them from numba's "
                   "cache; `fastnn warmup` compiles them ahead) ...")


def _announce(once: bool = True) -> None:
    """Say on stderr that the kernels are being compiled (with ``once``: unless this
    process said so already)."""
    global _noticed
    if not (once and _noticed):
        _noticed = True
        print(COMPILE_MESSAGE, file=sys.stderr, flush=True)


@contextlib.contextmanager
def compile_notice(seconds: float, *, once: bool = True, show: bool = True):
    """Within this block, say on stderr that the kernels are being compiled if the block
    lasts longer than ``seconds``: at most once per process (``once``), or each time.
    Notices of calls inside the block are off (``show`` False: only that)."""
    outer = getattr(_inside, "on", False)
    if outer or not show or (once and _noticed):
        _inside.on = True
        try:
            yield
        finally:
            _inside.on = outer
        return

    timer = threading.Timer(seconds, functools.partial(_announce, once))
    timer.daemon = True
    _inside.on = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        _inside.on = outer


class _CompileListener:
    """numba's compile events, for the calls that reach fastnn's kernels without an
    engine (the layer objects, ``fastnn.kernels``' per-op functions): a compile of one of
    fastnn's kernels that lasts longer than ``FIRST_USE_NOTICE_SECONDS`` is announced like
    an engine's first call, once per process. Quiet inside a ``compile_notice`` block
    (which has its own notice, or none), in the background compiles of the parallel forms
    (thread ``fastnn-compile``: a call never waits for them) and once anything was said.
    Costs nothing per call: numba sends the events only when it compiles (a load from
    its cache sends none, and is fast)."""

    def __init__(self):
        self._local = threading.local()  # .depth: compiles in progress in this thread

    def notify(self, event) -> None:
        local = self._local
        depth = getattr(local, "depth", 0)
        if event.is_start:
            local.depth = depth + 1
            if depth or not self._ours(event):
                return
            timer = threading.Timer(FIRST_USE_NOTICE_SECONDS, _announce)
            timer.daemon = True
            local.timer = timer
            timer.start()
        else:
            local.depth = max(depth - 1, 0)
            timer = getattr(local, "timer", None)
            if local.depth == 0 and timer is not None:
                local.timer = None
                timer.cancel()

    @staticmethod
    def _ours(event) -> bool:
        if _noticed or getattr(_inside, "on", False) or \
                threading.current_thread().name == "fastnn-compile":
            return False
        dispatcher = (event.data or {}).get("dispatcher")
        module = getattr(getattr(dispatcher, "py_func", None), "__module__", None) or ""
        return module.startswith(__name__.rpartition(".")[0] + ".")


def _listen_for_compiles() -> None:
    """Register the one ``_CompileListener`` of this process (at import)."""
    from numba.core import event

    listener = _CompileListener()

    class Listener(event.Listener):
        def on_start(self, ev):
            listener.notify(ev)

        def on_end(self, ev):
            listener.notify(ev)

    event.register("numba:compile", Listener())


_listen_for_compiles()


def _locked(method):
    """Run ``method`` holding the engine's lock (its work buffers are shared state); the
    engine's first call may compile, and says so when it takes long."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self.lock:
            if self.used:
                return method(self, *args, **kwargs)
            with compile_notice(FIRST_USE_NOTICE_SECONDS):
                out = method(self, *args, **kwargs)
            self.used = True
            return out

    return run


class Engine:
    """The entry points of one network (``params``) on one backend module.

    Beyond Affine -> activation: ``state`` (the BatchNorm running statistics, a flat
    buffer; empty without BatchNorm), ``decay`` (the weight-decay lambda), ``dropout``
    (the ratio, or None) and ``draw`` (``draw(shape)``: uniform [0, 1) floats for the
    dropout masks, the network's random source).
    """

    def __init__(self, backend, params: ParamDict, activation: str, loss: str, *,
                 state=None, decay: float = 0.0, dropout=None, draw=None):
        self.backend = backend
        self.params = params
        self.layout = params.layout
        self.activation = activation
        self.loss = loss
        self.n_classes = int(self.layout[-1, 2])
        self.state = np.empty(0, params.flat.dtype) if state is None else state
        self.decay = float(decay)
        self.dropout = dropout
        self.draw = draw
        self.batchnorm = bool((self.layout[:, 5] >= 0).any())
        # multiply-adds per row of one pass: the automatic thread policy's measure of size
        self.work = int((self.layout[:, 1] * self.layout[:, 2]).sum())
        self.itemsize = params.flat.dtype.itemsize  # (a float32 multiply-add counts half)
        # the kernels run on fixed blocks (numba's threads, one BLAS thread each); the
        # reference on BLAS's threads (see fastnn.kernels._threads)
        self.blocks = backend.__name__ == "fastnn.kernels"
        self.plain = not self.batchnorm and dropout is None and self.decay == 0
        self._workspaces: OrderedDict[int, Workspace] = OrderedDict()
        self._grads = None  # the gradient buffer of optimizers other than SGD
        self._fixed = None  # fixed dropout masks (see fixed_masks)
        self.lock = threading.Lock()
        self.used = False  # (whether a call has run: the first may compile)

    def workspace(self, N: int) -> Workspace:
        """The work buffers for batches of N rows (kept for the last few sizes)."""
        ws = self._workspaces.get(N)
        if ws is None:
            ws = self._workspaces[N] = Workspace(N, self.layout, self.params.flat.dtype,
                                                 self.dropout is not None)
            while len(self._workspaces) > MAX_WORKSPACES:
                self._workspaces.popitem(last=False)
        else:
            self._workspaces.move_to_end(N)
        return ws

    def _extras(self, ws: Workspace, train: bool):
        """The kernels' ``extras`` for a pass (None for a plain network); in training
        mode with Dropout, new masks are drawn first (one per hidden layer, in order)."""
        if self.plain:
            return None
        if train and self.dropout is not None:
            blocks = ws.mask_blocks(self.layout)
            if self._fixed:  # the masks of fixed_masks()
                for block, mask in zip(blocks, self._fixed):
                    if mask.shape != block.shape:
                        raise ValueError(f"masks: expected shapes "
                                         f"{[b.shape for b in blocks]}, got "
                                         f"{[m.shape for m in self._fixed]}")
                    block[...] = mask
            else:
                for block in blocks:
                    block[...] = self.draw(block.shape) > self.dropout
                if self._fixed is not None:  # the first masks drawn inside fixed_masks()
                    self._fixed.extend(block.copy() for block in blocks)
        keep = 1.0 if self.dropout is None else 1.0 - self.dropout
        return Extras(ws, self.state, train, keep, self.decay)

    @contextlib.contextmanager
    def fixed_masks(self, masks=None):
        """Within this block every training-mode pass uses the same dropout masks:
        ``masks`` (one (N, H_i) array of 0/1 per hidden layer) or the first ones drawn
        inside it. For gradient checks (a fixed mask makes the loss a function)."""
        saved = self._fixed
        self._fixed = [] if masks is None else [np.asarray(m, self.params.flat.dtype)
                                                for m in masks]
        try:
            yield self._fixed
        finally:
            self._fixed = saved

    def _check(self, n_bad: int, bad_label: int, x, t, names) -> None:
        """Raise what a kernel's status means for the caller's arguments, if anything.

        A label out of range is a ValueError; non-finite first-layer pre-activations are
        one when x holds NaN/Inf (else the weights or an overflow: the loss is NaN).
        """
        if bad_label >= 0:
            V.check_label_range(t, names[1], self.n_classes)
        if n_bad:
            V.raise_if_nonfinite(x, names[0])

    def _rows(self, N: int, train: bool) -> int:
        """Rows per pass: EVAL_ROWS, or all of them where the batch's statistics matter."""
        return max(N, 1) if train and not self.plain else EVAL_ROWS

    # --- forward only ------------------------------------------------------------------

    @_locked
    def predict(self, x, names=("x", "t"), train: bool = False) -> np.ndarray:
        """Scores (N, C), a new array; computed EVAL_ROWS rows at a time (in training mode
        with BatchNorm or Dropout: in one pass, as the book's network does)."""
        out = np.empty((x.shape[0], self.n_classes), self.params.flat.dtype)
        rows = self._rows(x.shape[0], train)
        for start in range(0, x.shape[0], rows):
            xs = x[start:start + rows]
            ws = self.workspace(xs.shape[0])
            extras = self._extras(ws, train)
            with for_work(xs.shape[0] * self.work, self.blocks, self.itemsize), \
                    np.errstate(over="ignore", invalid="ignore"):
                n_bad = self.backend.forward(xs, self.params.flat, self.layout, ws.acts,
                                             self.activation, extras)
            self._check(n_bad, -1, xs, None, names)
            out[start:start + xs.shape[0]] = ws.scores
        return out

    def evaluate(self, x, t, names=("x", "t"), train: bool = False) -> tuple[float, float | None]:
        """Mean loss and accuracy (None for regression) over a whole data set."""
        loss, correct = self.evaluate_sums(x, t, names, train)
        return loss, correct / x.shape[0] if self.loss == "softmax" else None

    @_locked
    def evaluate_sums(self, x, t, names=("x", "t"), train: bool = False) -> tuple[float, int]:
        """Mean loss and the number of correctly classified rows over a whole data set:
        the backend's evaluation in passes of EVAL_ROWS rows (in training mode with
        BatchNorm or Dropout: one pass, as the book's network does), the same evaluation
        ``train_periods`` runs inside its loop."""
        rows = min(self._rows(x.shape[0], train), max(x.shape[0], 1))
        ws = self.workspace(rows)
        extras = self._extras(ws, train)
        with for_work(rows * self.work, self.blocks, self.itemsize), \
                np.errstate(over="ignore", invalid="ignore"):
            loss, correct, n_bad, at = self.backend.evaluate(
                x, t, self.params.flat, self.layout, ws.acts, ws.dacts, self.activation,
                self.loss, extras, rows)
        self._check(n_bad, at, x, t, names)
        return loss, correct

    # --- training ----------------------------------------------------------------------

    def _gradient_into(self, x, t, grads, names):
        ws = self.workspace(x.shape[0])
        extras = self._extras(ws, True)
        with for_work(x.shape[0] * self.work, self.blocks, self.itemsize), \
                np.errstate(over="ignore", invalid="ignore"):
            loss, n_bad, at = self.backend.gradient(x, t, self.params.flat, self.layout,
                                                    ws.acts, ws.dacts, grads.flat,
                                                    self.activation, self.loss, extras)
        self._check(n_bad, at, x, t, names)
        return loss, n_bad

    @_locked
    def gradient(self, x, t, names=("x", "t")) -> tuple[float, Gradients]:
        """The mean loss and a new Gradients dict of every parameter (training mode)."""
        grads = Gradients(np.empty_like(self.params.flat), self.layout)
        loss, n_bad = self._gradient_into(x, t, grads, names)
        if n_bad:  # the weights are not finite: every gradient is undefined
            grads.flat[...] = np.nan
        return loss, grads

    @_locked
    def sgd_step(self, x, t, lr: float, names=("x", "t")) -> float:
        """One SGD step; the batch's loss (NaN/Inf: nothing was updated)."""
        ws = self.workspace(x.shape[0])
        extras = self._extras(ws, True)  # (None for a plain network)
        # (no np.errstate here: compiled code raises no NumPy warnings, the reference
        # guards its own passes, and entering it costs a microsecond per step)
        with for_work(x.shape[0] * self.work, self.blocks, self.itemsize):
            loss, n_bad, at = self.backend.sgd_step(x, t, self.params.flat, self.layout,
                                                    ws.acts, ws.dacts, self.activation,
                                                    self.loss, lr, extras)
        if n_bad or at >= 0:
            self._check(n_bad, at, x, t, names)
        return loss

    def step(self, x, t, optimizer, names=("x", "t")) -> float:
        """One training step with any fastnn optimizer; the batch's loss.

        SGD: the fused step (``sgd_step``). The others: the gradient into a buffer the
        engine keeps, then the optimizer's one pass over the flat buffers. When the loss
        is NaN/Inf nothing is updated (BatchNorm's running statistics have moved).
        """
        if optimizer.fused_sgd:  # (its lr is checked by the callers: lr_for)
            return self.sgd_step(x, t, optimizer.lr, names)
        with self.lock:
            if self._grads is None:
                self._grads = Gradients(np.empty_like(self.params.flat), self.layout)
            loss, n_bad = self._gradient_into(x, t, self._grads, names)
            if not n_bad and np.isfinite(loss):
                optimizer.update_flat(self.params, self._grads, self.backend)
        return loss

    @_locked
    def train_batches(self, x, t, order, starts, lr: float) -> tuple[np.ndarray, int]:
        """SGD steps on batches ``order[starts[i]:starts[i + 1]]`` of the validated set.

        Returns each batch's loss and the index of the first batch not applied (-1: all
        were); see ``fastnn.kernels.train_batches``. Not for networks with Dropout.
        """
        losses = np.empty(starts.shape[0] - 1)
        extras = None
        B = int(np.max(np.diff(starts))) if starts.shape[0] > 1 else 1
        if not self.plain:
            extras = self._extras(self.workspace(B), True)
        with for_work(B * self.work, self.blocks, self.itemsize), \
                np.errstate(over="ignore", invalid="ignore"):
            stop = self.backend.train_batches(x, t, order, starts, self.params.flat,
                                              self.layout, self.activation, self.loss, lr,
                                              losses, extras)
        return losses, stop

    def evaluates_inside(self, batch: int, x, t, x2=None, t2=None) -> bool:
        """Whether ``train_periods`` can evaluate inside the kernel exactly as
        ``evaluate`` would from Python: the same kind of targets in both sets, and the
        thread count does not matter (the kernels' fixed blocks) or the training batches
        get the one the evaluation passes would (the reference: OpenBLAS's sums depend
        on it)."""
        if x2 is not None and (t2.ndim != t.ndim):
            return False
        if self.blocks or policy() != "auto":
            return True
        rows = min(EVAL_ROWS, max(x.shape[0], 0 if x2 is None else x2.shape[0]))
        return threads_for(batch * self.work, False) == threads_for(rows * self.work, False)

    @_locked
    def train_periods(self, x, t, x2, t2, order, starts, ends, lr: float, records):
        """``train_batches`` with the evaluations of ``fastnn.kernels.train_periods``
        (after batch ``ends[k] - 1``, of x, t and x2, t2, EVAL_ROWS rows per pass).

        Returns (losses, stop, periods evaluated, stopped for non-finite parameters).
        """
        if x2 is not None:  # the loop reads x2, t2 as it reads x, t: they must match
            if x2.ndim != 2 or x2.shape[1] != x.shape[1] or t2.shape[0] != x2.shape[0]:
                raise ValueError(f"x2, t2: expected (n, {x.shape[1]}) inputs and n targets, "
                                 f"got {x2.shape} and {t2.shape}")
            if t2.ndim != t.ndim or t2.shape[1:] != t.shape[1:]:
                raise ValueError(f"t2: expected targets like t's ({t.ndim}-D, {t.shape[1:]} "
                                 f"per row), got {t2.shape}")
        losses = np.empty(starts.shape[0] - 1)
        B = int(np.max(np.diff(starts))) if starts.shape[0] > 1 else 1
        extras = None
        if not self.plain:
            n_eval = max(x.shape[0], 0 if x2 is None else x2.shape[0])
            extras = self._extras(self.workspace(max(B, min(EVAL_ROWS, n_eval))), True)
        with for_work(B * self.work, self.blocks, self.itemsize), \
                np.errstate(over="ignore", invalid="ignore"):
            stop, done, not_finite = self.backend.train_periods(
                x, t, x2, t2, order, starts, ends, self.params.flat, self.layout,
                self.activation, self.loss, lr, losses, records, EVAL_ROWS, extras)
        return losses, stop, done, not_finite

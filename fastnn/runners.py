"""fit()'s runners: the arithmetic of a stretch of training, and nothing else.

A runner takes the batches up to the next evaluation point(s) (``order``, ``starts``,
``ends``: see ``fastnn.schedule``) and returns a ``Chunk``; ``fastnn.train``'s loop does
the recording, the callbacks and the divergence guard. ``run`` is that loop's state (the
network, the optimizer, the data, the progress bar).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

# PeriodsRunner runs about this much training per kernel call (Python gets control back
# between calls: the progress bar, Ctrl-C)
CHUNK_SECONDS = 0.1


@dataclass
class Chunk:
    """What a runner did with a stretch of batches.

    ``losses``: each batch's loss, in order. ``records``: one row per period finished and
    evaluated, (mean loss on x, correct rows of x, mean loss on x_test, correct rows of
    x_test). ``stop``: -1, or the batch (index in the stretch) at which it stopped: the
    first batch not applied, or (``not_finite``) the end of a period after which the
    parameters were not finite. ``per_batch``: training seconds per batch.
    """

    losses: np.ndarray
    records: np.ndarray
    per_batch: float
    stop: int = -1
    not_finite: bool = False


NO_RECORDS = np.empty((0, 4))


class StepRunner:
    """One engine step per batch (any optimizer; ``on_step`` callbacks after each), one
    period per stretch, then the engine's evaluation."""

    periods = 1
    shows_steps = True  # it moves the progress bar itself, step by step

    def __init__(self, run):
        self.run = run
        self.on_step = [cb.on_step for cb in run.callbacks if hasattr(cb, "on_step")]
        self.gather = {}  # batch size -> buffers for the gathered batch (reused)

    def warm_up(self, engine, B: int) -> None:
        engine.step(self.run.x[:B], self.run.t[:B], self.run.optimizer.fresh())

    def train(self, order, starts, ends) -> Chunk:
        run = self.run
        engine, optimizer, x, t = run.net.engine, run.optimizer, run.x, run.t
        names = ("x_train", "t_train")
        k = int(ends[0])
        losses = np.empty(k)
        t0 = time.perf_counter()
        for i in range(k):
            idx = order[starts[i]:starts[i + 1]]
            B = idx.shape[0]
            if B not in self.gather:
                self.gather[B] = (np.empty((B, *x.shape[1:]), x.dtype),  # (images too)
                                  np.empty((B, *t.shape[1:]), t.dtype))
            xb, tb = self.gather[B]
            np.take(x, idx, axis=0, out=xb)
            np.take(t, idx, axis=0, out=tb)
            losses[i] = loss = engine.step(xb, tb, optimizer, names)
            if not math.isfinite(loss):
                return Chunk(losses, NO_RECORDS, (time.perf_counter() - t0) / (i + 1), stop=i)
            iteration = run.iteration + i + 1
            for on_step in self.on_step:
                on_step(iteration, loss)
            if run.bar is not None and iteration % run.bar_every == 0:
                run.bar.update(run.bar_every)
        return run.evaluation(losses, (time.perf_counter() - t0) / k, k)


class BatchesRunner:
    """A period's SGD steps in one kernel call, then the engine's evaluation (when the
    kernel's own evaluation would not be the engine's: ``Engine.evaluates_inside``)."""

    periods = 1
    shows_steps = False

    def __init__(self, run):
        self.run = run

    def warm_up(self, engine, B: int) -> None:
        engine.train_batches(self.run.x, self.run.t, np.arange(B, dtype=np.int64),
                             np.array([0, B], dtype=np.int64), self.run.optimizer.lr)

    def train(self, order, starts, ends) -> Chunk:
        run = self.run
        k = int(ends[0])
        t0 = time.perf_counter()
        losses, stop = run.net.engine.train_batches(run.x, run.t, order, starts,
                                                    run.optimizer.lr)
        per_batch = (time.perf_counter() - t0) / k
        if stop >= 0:
            return Chunk(losses, NO_RECORDS, per_batch, stop=stop)
        return run.evaluation(losses, per_batch, k)


class PeriodsRunner:
    """Whole evaluation periods in one kernel call, the evaluations inside it: one period
    per call with callbacks, else about ``CHUNK_SECONDS`` of training per call."""

    shows_steps = False

    def __init__(self, run):
        self.run = run
        self.periods = 1

    def warm_up(self, engine, B: int) -> None:
        run = self.run
        x2, t2 = (None, None) if run.x_test is None else (run.x_test[:1], run.t_test[:1])
        engine.train_periods(run.x[:B], run.t[:B], x2, t2, np.arange(B, dtype=np.int64),
                             np.array([0, B], dtype=np.int64), np.array([1], np.int64),
                             run.optimizer.lr, np.empty((1, 4)))

    def train(self, order, starts, ends) -> Chunk:
        run = self.run
        records = np.empty((ends.shape[0], 4))
        t0 = time.perf_counter()
        losses, stop, done, not_finite = run.net.engine.train_periods(
            run.x, run.t, run.x_test, run.t_test, order, starts, ends, run.optimizer.lr,
            records)
        elapsed = time.perf_counter() - t0
        # the kernel cannot time its evaluations apart: training's share of the time is
        # estimated from the rows each does (a batch row: forward and backward)
        n_eval = run.x.shape[0] + (0 if run.x_test is None else run.x_test.shape[0])
        train_rows = 3 * run.batch_size * int(ends[-1])
        share = train_rows / (train_rows + n_eval * ends.shape[0])
        if not run.callbacks:  # about CHUNK_SECONDS of training per kernel call
            self.periods = max(1, min(8 * self.periods,
                                      int(CHUNK_SECONDS * done / max(elapsed, 1e-9))))
        return Chunk(losses, records[:done], elapsed * share / max(int(ends[-1]), 1),
                     stop=stop, not_finite=not_finite)

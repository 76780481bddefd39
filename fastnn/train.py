"""fit(): mini-batch training with evaluation, history, progress and a divergence guard."""

from __future__ import annotations

import math
import numbers
import sys
import threading
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from . import _validation as V
from .optim import SGD, check_optimizer, optimizer_named
from .sequential import Sequential


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; ``history`` holds what was recorded until then."""

    def __init__(self, message: str, history: History, iteration: int):
        super().__init__(message)
        self.history = history
        self.iteration = iteration


@dataclass
class History:
    """What ``fit`` recorded at each evaluation.

    ``loss`` is the mean training-batch loss since the previous evaluation;
    ``train_acc``/``test_acc`` are accuracies over the whole sets (None for regression);
    ``test_loss`` is the mean loss on the test set (None without one);
    ``seconds_per_iter`` is training time per iteration in that period (evaluation
    excluded; on the compiled path, whose kernel evaluates too, training's share of the
    kernel's time is estimated from the rows each part processes).
    """

    iteration: list = field(default_factory=list)
    epoch: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    seconds_per_iter: list = field(default_factory=list)
    iterations: int = 0
    train_seconds: float = 0.0
    compile_seconds: float = 0.0  # first-use compilation (or cache loading), not training
    initial_loss: float = float("nan")  # the untrained network's loss on the training set
    path: str = "step"  # "step" (one step at a time) or "compiled" (whole epochs in numba)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> dict:
        """The final numbers: accuracies, losses, total and per-iteration time."""
        last = len(self.iteration) - 1
        return {
            "iterations": self.iterations,
            "train_acc": self.train_acc[last] if last >= 0 else None,
            "test_acc": self.test_acc[last] if last >= 0 else None,
            "loss": self.loss[last] if last >= 0 else None,
            "test_loss": self.test_loss[last] if last >= 0 else None,
            "train_seconds": self.train_seconds,
            "seconds_per_iter": self.train_seconds / max(self.iterations, 1),
            "compile_seconds": self.compile_seconds,
            "path": self.path,
        }


def evaluate(net: Sequential, x, t, *, name: str = "x") -> tuple[float, float | None]:
    """Mean loss and accuracy (None for regression) of ``net`` on a whole data set."""
    if not isinstance(net, Sequential):
        raise TypeError(f"net: expected a fastnn.Sequential, got {type(net).__name__}")
    names = (name, "t" if name == "x" else name.replace("x", "t", 1))
    x, t = net.validate(x, t, names=names)
    return net.engine.evaluate(x, t, names)


class BatchSchedule:
    """The order in which fit() visits samples, handed out in stretches of batches.

    "epoch" sampling: each epoch is a permutation of the n samples (in order when
    ``shuffle`` is False) cut into batches of ``batch_size``; the last batch of an epoch
    may be smaller. "replacement": every batch is drawn with replacement, as the book's
    ``np.random.choice(train_size, batch_size)`` does.

    ``take(k)`` returns the next k batches as ``(order, starts)``: batch i is
    ``order[starts[i]:starts[i + 1]]``. Everything is vectorised (permutations are drawn
    a block of epochs at a time), so the schedule of 126,000 one-sample batches costs
    milliseconds, and the step and compiled paths see exactly the same batches.
    """

    def __init__(self, n: int, batch_size: int, *, shuffle: bool, sampling: str,
                 rng: np.random.Generator):
        self.n, self.batch_size = n, batch_size
        self.shuffle, self.sampling, self.rng = shuffle, sampling, rng
        self.per_epoch = iterations_per_epoch(n, batch_size, sampling)
        self.done = 0  # batches handed out so far
        self._perms = np.empty((0, n), dtype=np.int64)  # epochs drawn, not yet finished
        self._first_epoch = 0  # the epoch of self._perms[0]

    def _epochs(self, first: int, last: int) -> np.ndarray:
        """Rows of the permutations of epochs first..last (drawing new ones as needed)."""
        drop = first - self._first_epoch
        self._perms, self._first_epoch = self._perms[drop:], first
        missing = last - first + 1 - self._perms.shape[0]
        if missing > 0:
            rows = np.broadcast_to(np.arange(self.n, dtype=np.int64), (missing, self.n))
            new = self.rng.permuted(rows, axis=1) if self.shuffle else np.array(rows)
            self._perms = np.concatenate([self._perms, new])
        return self._perms[: last - first + 1]

    def take(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        B, n = self.batch_size, self.n
        if self.sampling == "replacement":
            order = self.rng.integers(0, n, k * B, dtype=np.int64)
            self.done += k
            return order, np.arange(0, k * B + 1, B, dtype=np.int64)
        P = self.per_epoch
        first, j0 = divmod(self.done, P)  # the epoch and batch of the first batch
        last, j_last = divmod(self.done + k - 1, P)
        # batch starts of the epochs first..last, laid end to end, from batch j0 on
        grid = (np.arange(last - first + 1, dtype=np.int64)[:, None] * n
                + np.arange(0, P * B, B, dtype=np.int64)[None, :]).reshape(-1)
        starts = np.empty(k + 1, dtype=np.int64)
        starts[:k] = grid[j0:j0 + k]
        starts[k] = (last - first) * n + min((j_last + 1) * B, n)
        order = self._epochs(first, last).reshape(-1)
        self.done += k
        return order, starts


MAX_ITERATIONS = 10**12  # fit() refuses longer runs up front
COMPILE_NOTICE_SECONDS = 0.5  # fit() says it is compiling when the warm-up takes longer
# The compiled path runs about this much training per kernel call (Python gets control
# back between calls: the progress bar, Ctrl-C)
CHUNK_SECONDS = 0.1


def iterations_per_epoch(n: int, batch_size: int, sampling: str) -> int:
    if sampling == "replacement":
        return max(n // batch_size, 1)
    return math.ceil(n / batch_size)


def fit(net: Sequential, x_train, t_train, *, x_test=None, t_test=None, optimizer=None,
        batch_size: int = 100, epochs: int | None = None, iters: int | None = None,
        eval_every: int | None = None, shuffle: bool = True, sampling: str = "epoch",
        seed: int | None = None, progress: bool = True, callbacks=(),
        compiled: bool | None = None) -> History:
    """Train ``net`` with mini-batch gradient descent, evaluating as it goes.

    Parameters
    ----------
    net : Sequential
    x_train, t_train : arrays
        Training inputs and targets (labels or one-hot rows; regression targets for mse).
    x_test, t_test : arrays, optional
        Evaluated at each evaluation (both or neither).
    optimizer : SGD, Momentum, Nesterov, AdaGrad, RMSprop or Adam, optional
        Default ``SGD(lr=0.1)``; a name ("adam") means that optimizer with its defaults.
        Its state (if any) is created for ``net`` on the first
        step, or must already belong to ``net``.
    batch_size : int
    epochs, iters : int, optional
        How long to train: whole epochs or a number of iterations (at most one of them;
        neither means 10 epochs).
    eval_every : int, optional
        Iterations between evaluations; default once per epoch. The end of training is
        always evaluated.
    shuffle : bool
        Shuffle the samples each epoch (with ``sampling="epoch"``).
    sampling : {"epoch", "replacement"}
        Per-epoch permutations, or the book's sampling with replacement.
    seed : int, optional
        Seed of the batch order: the same seed and the same network give the same run.
    progress : bool
        Show a progress bar and a line per evaluation.
    callbacks : sequence of callables
        Each is called as ``cb(history)`` after every evaluation; returning True stops
        training. A callback that also has an ``on_step(iteration, loss)`` method is
        called after every step.
    compiled : bool, optional
        Whether to run whole epochs inside one compiled kernel (numba backend only).
        None (default) decides automatically; see ``fastnn.compiled``.

    Returns
    -------
    History

    Raises
    ------
    TrainingDiverged
        When the loss becomes NaN or infinite: training stops at that iteration, the
        parameters stay at their last finite values, and the exception carries the
        history so far.
    """
    if not isinstance(net, Sequential):
        raise TypeError(f"net: expected a fastnn.Sequential, got {type(net).__name__}")
    x_train, t_train = net.validate(x_train, t_train, names=("x_train", "t_train"))
    V.raise_if_nonfinite(x_train, "x_train")
    if (x_test is None) != (t_test is None):
        raise ValueError("x_test, t_test: pass both or neither")
    if x_test is not None:
        x_test, t_test = net.validate(x_test, t_test, names=("x_test", "t_test"))
        V.raise_if_nonfinite(x_test, "x_test")
    optimizer = SGD(lr=0.1) if optimizer is None else optimizer
    if isinstance(optimizer, str):  # a name, with the optimizer's defaults
        optimizer = optimizer_named(optimizer)
    check_optimizer(optimizer).prepare(net)  # another network's optimizer: refused here
    sampling = V.check_choice(sampling, "sampling", ("epoch", "replacement"))
    n = x_train.shape[0]
    batch_size = V.check_positive_int(batch_size, "batch_size")
    if sampling == "epoch" and batch_size > n:
        raise ValueError(f"batch_size: expected at most the number of training samples ({n}), "
                         f"got {batch_size}")
    if epochs is not None and iters is not None:
        raise ValueError("epochs, iters: give at most one of them")
    per_epoch = iterations_per_epoch(n, batch_size, sampling)
    if iters is not None:
        total = V.check_positive_int(iters, "iters")
    else:
        total = per_epoch * V.check_positive_int(10 if epochs is None else epochs, "epochs")
    if total > MAX_ITERATIONS:  # (beyond any run's length, and beyond int64 downstream)
        what = "iters" if iters is not None else "epochs"
        raise ValueError(f"{what}: at most {MAX_ITERATIONS:,} iterations in all, got "
                         f"{total:,}")
    eval_every = per_epoch if eval_every is None else V.check_positive_int(eval_every, "eval_every")
    if isinstance(callbacks, (str, bytes)) or not hasattr(callbacks, "__iter__"):
        raise TypeError(f"callbacks: expected a sequence of callables (e.g. [] or [cb]), got "
                        f"{callbacks!r}")
    callbacks = tuple(callbacks)
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"callbacks: expected callables, got {type(cb).__name__}")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"seed: expected a non-negative int or None, got {seed!r}")
        if seed < 0:
            raise ValueError(f"seed: expected a non-negative int or None, got {seed}")
    if compiled is not None and not isinstance(compiled, bool):
        raise TypeError(f"compiled: expected True, False or None, got {compiled!r}")
    rng = np.random.default_rng(seed)

    run = _Run(net, optimizer, x_train, t_train, x_test, t_test, batch_size, total, per_epoch,
               eval_every, progress, callbacks)
    schedule = BatchSchedule(n, batch_size, shuffle=shuffle, sampling=sampling, rng=rng)
    from .compiled import choose_path

    path = choose_path(net, batch_size, callbacks, compiled, optimizer)
    # overflow on the way to divergence is reported by the guard, not by NumPy warnings
    errstate = np.errstate(over="ignore", invalid="ignore")
    errstate.__enter__()
    try:
        run.history.path = path
        run.warm_up(path)
        run.open_bar()
        if path == "compiled":
            run.train_compiled(schedule)
        else:
            run.train_steps(schedule)
    finally:
        errstate.__exit__(None, None, None)
        run.close()
    return run.history


class _Run:
    """The state of one fit() call: history, timing, progress, evaluation, the guard."""

    def __init__(self, net, optimizer, x, t, x_test, t_test, batch_size, total, per_epoch,
                 eval_every, progress, callbacks):
        self.net, self.optimizer, self.batch_size = net, optimizer, batch_size
        self.x, self.t, self.x_test, self.t_test = x, t, x_test, t_test
        self.total, self.per_epoch, self.eval_every = total, per_epoch, eval_every
        self.callbacks = callbacks
        self.step_callbacks = [cb.on_step for cb in callbacks if hasattr(cb, "on_step")]
        self.history = History()
        self.iteration = 0
        self.loss_sum, self.loss_count = 0.0, 0  # training losses since the last evaluation
        self.period_seconds = 0.0
        self.snapshot = net.params.flat.copy()  # the last parameters known to be finite
        self.snapshot_state = net.state.copy()  # and BatchNorm's running statistics then
        self.initial = self.snapshot.copy()  # (what the guard's advice is judged at)
        self.snapshot_iteration = 0
        self.bar = None
        self.progress = progress
        self.bar_every = max(1, total // 200)

    def open_bar(self) -> None:
        """The progress bar, started after compiling so its rate and ETA are training's."""
        if self.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, unit="it", dynamic_ncols=True, leave=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()

    def warm_up(self, path: str) -> None:
        """Compile (or load from cache) what training will run, on a scratch copy.

        One batch on a copy of the network: the real run is untouched, and its timings
        (``train_seconds``, ``seconds_per_iter``) measure training, not compilation.
        """
        t0 = time.perf_counter()
        notice = None
        if self.progress:  # say so when compiling takes a noticeable time (not from the cache)
            notice = threading.Timer(COMPILE_NOTICE_SECONDS, lambda: print(
                "compiling kernels (first run only; later runs load them from numba's "
                "cache) ...", file=sys.stderr, flush=True))
            notice.daemon = True
            notice.start()
        engine = self.net.copy().engine
        # the untrained loss (at most 1,024 rows; BatchNorm with batch statistics: its
        # running ones are still zeros)
        rows = slice(0, 1024)
        self.history.initial_loss = engine.evaluate(self.x[rows], self.t[rows],
                                                    train=engine.batchnorm)[0]
        B = min(self.batch_size, self.x.shape[0])
        # (whether the compiled path can evaluate inside the kernel: decided once, here)
        self.inside = path == "compiled" and engine.evaluates_inside(
            self.batch_size, self.x, self.t, self.x_test, self.t_test)
        if path == "compiled" and not self.inside:
            engine.train_batches(self.x, self.t, np.arange(B, dtype=np.int64),
                                 np.array([0, B], dtype=np.int64), self.optimizer.lr)
        elif path == "compiled":  # one period with its evaluation, on the first batch
            x2, t2 = (None, None) if self.x_test is None else (self.x_test[:1], self.t_test[:1])
            engine.train_periods(self.x[:B], self.t[:B], x2, t2, np.arange(B, dtype=np.int64),
                                 np.array([0, B], dtype=np.int64), np.array([1], np.int64),
                                 self.optimizer.lr, np.empty((1, 4)),
                                 np.empty_like(engine.params.flat), np.empty_like(engine.state))
        else:
            engine.step(self.x[:B], self.t[:B], self.optimizer.fresh())
        engine.evaluate(self.x[:1], self.t[:1])
        self.history.compile_seconds = time.perf_counter() - t0
        if notice is not None:
            notice.cancel()

    # --- step-by-step ---------------------------------------------------------------

    def train_steps(self, schedule) -> None:
        engine, optimizer = self.net.engine, self.optimizer
        D = self.x.shape[1]
        names = ("x_train", "t_train")
        gather = {}  # batch size -> buffers for the gathered batch (reused)
        while self.iteration < self.total:
            order, starts = schedule.take(self.until_next_eval())
            losses = np.empty(starts.shape[0] - 1)  # summed as the compiled path sums them
            t0 = time.perf_counter()
            for i in range(starts.shape[0] - 1):
                idx = order[starts[i]:starts[i + 1]]
                B = idx.shape[0]
                if B not in gather:
                    gather[B] = (np.empty((B, D), self.x.dtype),
                                 np.empty((B, *self.t.shape[1:]), self.t.dtype))
                xb, tb = gather[B]
                np.take(self.x, idx, axis=0, out=xb)
                np.take(self.t, idx, axis=0, out=tb)
                loss = engine.step(xb, tb, optimizer, names)
                if not math.isfinite(loss):
                    self.period_seconds += time.perf_counter() - t0
                    self.diverged(loss, self.optimizer.lr)
                self.iteration += 1
                losses[i] = loss
                for on_step in self.step_callbacks:
                    on_step(self.iteration, loss)
                if self.bar is not None and self.iteration % self.bar_every == 0:
                    self.bar.update(self.bar_every)
            self.period_seconds += time.perf_counter() - t0
            self.loss_sum += _loss_sum(losses)
            self.loss_count += losses.shape[0]
            if self.evaluate():
                return

    def until_next_eval(self) -> int:
        """Batches from here to the next evaluation point (or the end)."""
        nxt = (self.iteration // self.eval_every + 1) * self.eval_every
        return min(self.total, nxt) - self.iteration

    # --- compiled epochs --------------------------------------------------------------

    def train_compiled(self, schedule) -> None:
        """Whole periods inside the kernel, evaluated there too when that gives what
        Python would (``Engine.evaluates_inside``); else one kernel call per period and
        the evaluation from Python."""
        engine = self.net.engine
        if not self.inside:
            self.train_compiled_periods(schedule)
            return
        lr, periods = self.optimizer.lr, 1
        n_eval = self.x.shape[0] + (0 if self.x_test is None else self.x_test.shape[0])
        while self.iteration < self.total:
            ends = self.period_ends(periods)
            order, starts = schedule.take(int(ends[-1]))
            records = np.empty((ends.shape[0], 4))
            t0 = time.perf_counter()
            losses, stop, done, not_finite = engine.train_periods(
                self.x, self.t, self.x_test, self.t_test, order, starts, ends, lr, records,
                self.snapshot, self.snapshot_state)
            elapsed = time.perf_counter() - t0
            # the kernel cannot time its evaluations apart: training's share of the time
            # is estimated from the rows each does (a batch row: forward and backward)
            train_rows = 3 * self.batch_size * int(ends[-1])
            share = train_rows / (train_rows + n_eval * ends.shape[0])
            seconds_per_batch = elapsed * share / max(int(ends[-1]), 1)
            if self.callbacks or self.bar is not None:  # Python after every evaluation
                begin = 0
                for j in range(done):
                    end = int(ends[j])
                    self.add_losses(losses[begin:end], seconds_per_batch)
                    r = records[j]
                    test = (None, None) if self.x_test is None else \
                        (float(r[2]), self.accuracy(r[3], self.x_test.shape[0]))
                    if self.record(self.accuracy(r[1], self.x.shape[0]), *test,
                                   snapshot=False):
                        return
                    begin = end
            else:
                self.record_all(losses, ends[:done], records[:done], seconds_per_batch)
                begin = int(ends[done - 1]) if done else 0
            if stop >= 0:  # a batch not applied, or a period ending with non-finite values
                self.add_losses(losses[begin:stop], seconds_per_batch)
                self.diverged(None if not_finite else float(losses[stop]), lr)
            if not self.callbacks:  # about CHUNK_SECONDS of training per kernel call
                periods = max(1, min(8 * periods, int(CHUNK_SECONDS * done / max(elapsed,
                                                                               1e-9))))

    def period_ends(self, periods: int) -> np.ndarray:
        """Batches from here to each of the next ``periods`` evaluation points."""
        E, it = self.eval_every, self.iteration
        first = (it // E + 1) * E
        points = np.minimum(np.arange(first, first + periods * E, E), self.total)
        points = points[: int(np.searchsorted(points, self.total)) + 1]
        return (points - it).astype(np.int64)

    def record_all(self, losses, ends, records, seconds_per_batch: float) -> None:
        """``record`` for each of the periods ending at batches ``ends`` (evaluated in the
        kernel: ``records``), at once: the same numbers, without a Python call each."""
        if not ends.shape[0]:
            return
        h, it = self.history, self.iteration
        bounds = np.concatenate([[0], ends[:-1]]).astype(np.intp)
        sums = np.add.reduceat(losses[: int(ends[-1])], bounds)  # as _loss_sum sums each
        counts = np.diff(np.concatenate([[0], ends]))
        iterations = it + ends
        h.iteration.extend(iterations.tolist())
        h.epoch.extend((iterations / self.per_epoch).tolist())
        h.loss.extend((sums / counts).tolist())
        none = [None] * ends.shape[0]
        acc = self.accuracy(records[:, 1], self.x.shape[0])
        h.train_acc.extend(none if acc is None else acc.tolist())
        if self.x_test is None:
            h.test_acc.extend(none)
            h.test_loss.extend(none)
        else:
            acc = self.accuracy(records[:, 3], self.x_test.shape[0])
            h.test_acc.extend(none if acc is None else acc.tolist())
            h.test_loss.extend(records[:, 2].tolist())
        h.seconds_per_iter.extend([seconds_per_batch] * ends.shape[0])
        self.iteration = h.iterations = int(iterations[-1])
        h.train_seconds += seconds_per_batch * int(ends[-1])
        self.snapshot_iteration = self.iteration
        self.loss_sum, self.loss_count, self.period_seconds = 0.0, 0, 0.0

    def add_losses(self, losses, seconds_per_batch: float) -> None:
        """Count the training batches ``losses`` (in order) into the current period."""
        if losses.shape[0]:
            self.loss_sum += _loss_sum(losses)
            self.loss_count += losses.shape[0]
            self.iteration += losses.shape[0]
            self.period_seconds += seconds_per_batch * losses.shape[0]
            if self.bar is not None:
                self.bar.update(losses.shape[0])

    def accuracy(self, correct, n: int):
        """Correct rows (a count, or an array of counts) as accuracy; None for regression."""
        return correct / n if self.net.engine.loss == "softmax" else None

    def train_compiled_periods(self, schedule) -> None:
        engine, lr = self.net.engine, self.optimizer.lr
        while self.iteration < self.total:
            # the batches up to the next evaluation run inside one kernel call
            k = self.until_next_eval()
            order, starts = schedule.take(k)
            t0 = time.perf_counter()
            losses, stop = engine.train_batches(self.x, self.t, order, starts, lr)
            self.period_seconds += time.perf_counter() - t0
            if stop >= 0:  # the kernel stopped before applying batch `stop`
                self.loss_sum += _loss_sum(losses[:stop])
                self.loss_count += stop
                self.iteration += stop
                self.diverged(float(losses[stop]), lr)
            self.loss_sum += _loss_sum(losses)
            self.loss_count += k
            self.iteration += k
            if self.bar is not None:
                self.bar.update(k)
            if self.evaluate():
                return

    # --- shared -----------------------------------------------------------------------

    def evaluate(self) -> bool:
        """Evaluate from Python and record it; True when a callback asks to stop."""
        net = self.net
        if not (np.all(np.isfinite(net.params.flat)) and np.all(np.isfinite(net.state))):
            # (a last update can overflow)
            self.diverged(None, self.optimizer.lr)
        _, train_acc = net.engine.evaluate(self.x, self.t, ("x_train", "t_train"))
        test_loss, test_acc = (None, None)
        if self.x_test is not None:
            test_loss, test_acc = net.engine.evaluate(self.x_test, self.t_test,
                                                      ("x_test", "t_test"))
        return self.record(train_acc, test_loss, test_acc)

    def record(self, train_acc, test_loss, test_acc, snapshot: bool = True) -> bool:
        """Record one evaluation (the parameters are finite); True when a callback asks
        to stop. ``snapshot``: keep these parameters as the last finite ones (the
        kernel did it itself when it evaluated)."""
        net, h = self.net, self.history
        loss = self.loss_sum / self.loss_count if self.loss_count else float("nan")
        done_in_period = self.iteration - (h.iteration[-1] if h.iteration else 0)
        h.iteration.append(self.iteration)
        h.epoch.append(self.iteration / self.per_epoch)
        h.loss.append(loss)
        h.train_acc.append(train_acc)
        h.test_acc.append(test_acc)
        h.test_loss.append(test_loss)
        h.seconds_per_iter.append(self.period_seconds / max(done_in_period, 1))
        h.iterations = self.iteration
        h.train_seconds += self.period_seconds
        self.loss_sum, self.loss_count, self.period_seconds = 0.0, 0, 0.0
        if snapshot:
            self.snapshot[...] = net.params.flat
            self.snapshot_state[...] = net.state
        self.snapshot_iteration = self.iteration
        if self.bar is not None:
            self.bar.set_postfix_str(_postfix(loss, train_acc, test_acc), refresh=False)
            self.bar.write(f"iter {self.iteration:>6} | {_postfix(loss, train_acc, test_acc)}")
        return any(cb(h) is True for cb in self.callbacks)

    def diverged(self, loss, lr: float):
        """Raise TrainingDiverged: the loss became ``loss`` at the next iteration, or (loss
        None) the parameters became non-finite by this iteration. Parameters that are not
        finite are restored from the last evaluation at which they were."""
        net = self.net
        where = "left at their values after iteration"
        if not np.all(np.isfinite(net.params.flat)) or not np.all(np.isfinite(net.state)):
            net.params.flat[...] = self.snapshot
            net.state[...] = self.snapshot_state
            where = "restored to their values after iteration"
            at = self.snapshot_iteration
        else:
            at = self.iteration
        self.history.iterations = self.iteration
        if loss is None:
            what, it = f"the parameters became NaN or infinite by iteration {self.iteration}", \
                self.iteration
        else:
            what, it = f"the loss became {loss} at iteration {self.iteration + 1}", \
                self.iteration + 1
        advice = divergence_advice(self.net, self.initial, self.x, self.t, self.batch_size,
                                   self.history.initial_loss, lr)
        raise TrainingDiverged(
            f"training diverged: {what} with learning rate {lr:g}; the parameters are {where} "
            f"{at} (all finite). {advice}", self.history, it)


def divergence_advice(net, initial, x, t, batch_size: int, initial_loss: float,
                      lr: float) -> str:
    """What to try after a divergence: a smaller learning rate, unless the untrained
    network (parameters ``initial``) already had a loss that is not finite or a gradient
    on the first batch's rows too large to step with (beyond the square root of the
    dtype's largest number a step's products overflow): then no learning rate helps, and
    the input, the init or the weight decay is what overflowed."""
    overflows = not np.isfinite(initial_loss)
    if not overflows:
        rows = slice(0, min(batch_size, 1024))
        try:
            untrained = net.copy()
            untrained.params.flat[...] = initial
            with np.errstate(all="ignore"):
                grads = untrained.gradient(x[rows], t[rows])
            limit = np.sqrt(np.finfo(initial.dtype).max)
            overflows = not all(np.all(np.abs(g) < limit) for g in grads.values())
        except (ValueError, TypeError, FloatingPointError):
            pass
    if not overflows:
        return f"Try a smaller learning rate (e.g. {lr / 10:g})."
    return ("The untrained network's loss or gradient is already infinite, NaN or too large "
            "to step with, whatever the learning rate: the input, the weight init or the "
            "weight decay overflow; scale the input to a moderate range or use a smaller "
            "init or weight decay.")


def _loss_sum(losses) -> float:
    """The sum of a period's batch losses, in order (``np.add.reduceat``'s sum: the
    compiled path sums many periods with one call, and every path must agree)."""
    return float(np.add.reduceat(losses, [0])[0]) if losses.shape[0] else 0.0


def _postfix(loss, train_acc, test_acc) -> str:
    parts = [f"loss {loss:.4g}"]
    if train_acc is not None:
        parts.append(f"train acc {train_acc:.4f}")
    if test_acc is not None:
        parts.append(f"test acc {test_acc:.4f}")
    return " | ".join(parts)

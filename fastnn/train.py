"""fit(): mini-batch training with evaluation, history, progress and a divergence guard.

fit owns the policy, the kernels own the arithmetic. One loop (``_Run.train``) takes the
batches up to the next evaluation point(s) from the schedule, hands them to a runner, and
records what comes back; the runners only run batches and evaluations:

* ``StepRunner``: one engine call per batch (any optimizer, Dropout, callbacks with
  ``on_step``), then the engine's evaluation;
* ``PeriodsRunner``: whole evaluation periods in one kernel call, evaluations included
  (``Engine.train_periods``), when that evaluates exactly as the engine would;
* ``BatchesRunner``: a period's batches in one kernel call (``Engine.train_batches``),
  then the engine's evaluation.

Each returns a ``Chunk`` (the batches' losses, one evaluation record per finished period,
how it stopped), so recording, callbacks and the divergence guard are written once, and
the paths give the same bits (History included) on the same batches.
"""

from __future__ import annotations

import math
import time

import numpy as np

from . import _validation as V
from .engine import compile_notice
from .history import History, TrainingDiverged
from .optim import SGD, check_optimizer, optimizer_named
from .runners import NO_RECORDS, BatchesRunner, Chunk, PeriodsRunner, StepRunner
from .schedule import BatchSchedule, iterations_per_epoch
from .sequential import Sequential

__all__ = ["History", "TrainingDiverged", "evaluate", "fit", "choose_path"]

MAX_ITERATIONS = 10**12  # fit() refuses longer runs up front
COMPILE_NOTICE_SECONDS = 0.5  # fit() says it is compiling when the warm-up takes longer
# Up to this many multiply-adds per step (batch * sum(fan_in * fan_out)) fit() takes the
# compiled path: beyond it the per-step Python it saves is a few percent of a step, while
# a kernel call that runs a whole period keeps Python (the progress bar, Ctrl-C) waiting
# for seconds (measured: docs/performance.md, "Which path fit() takes").
COMPILED_MAX_WORK = 12_000_000


def check_network(net):
    """``net`` when fit() and evaluate() can train and evaluate it: a fastnn.Sequential
    (and the book's MultiLayerNet, MultiLayerNetExtend) or a convnet (SimpleConvNet,
    DeepConvNet); else a TypeError naming ``net``."""
    from .convnet import ConvNet

    if not isinstance(net, (Sequential, ConvNet)):
        raise TypeError(f"net: expected a fastnn.Sequential, SimpleConvNet or DeepConvNet, "
                        f"got {type(net).__name__}")
    return net


def evaluate(net: Sequential, x, t, *, name: str = "x") -> tuple[float, float | None]:
    """Mean loss and accuracy (None for regression) of ``net`` on a whole data set."""
    check_network(net)
    names = (name, "t" if name == "x" else name.replace("x", "t", 1))
    x, t = net.validate(x, t, names=names)
    return net.engine.evaluate(x, t, names)


def step_work(net, batch_size: int) -> int:
    return batch_size * sum(i * o for i, o in zip(net.sizes[:-1], net.sizes[1:]))


def choose_path(net, batch_size, callbacks, compiled, optimizer=None) -> str:
    """"compiled" or "step" for a fit() call (``compiled``: True, False or None = auto).

    The compiled path runs SGD's fused step: other optimizers, Dropout (whose masks come
    from NumPy's random generators, in Python) and the convnets take the step path.
    """
    if compiled is False:
        return "step"
    why = None
    if not isinstance(net, Sequential):
        why = ("a convnet runs its layers' kernels one call per layer (each a whole batch "
               "of images) from Python")
    elif net.backend != "numba":
        why = "it needs backend='numba'"
    elif any(hasattr(cb, "on_step") for cb in callbacks):
        why = "a callback has on_step(), which runs Python after every step"
    elif optimizer is not None and not optimizer.fused_sgd:
        why = f"it runs SGD only (the optimizer is {type(optimizer).__name__})"
    elif getattr(net, "use_dropout", False):
        why = "the network has Dropout (its masks are drawn in Python)"
    if why is not None:
        if compiled:
            raise ValueError(f"compiled: the compiled path cannot be used here: {why}")
        return "step"
    if compiled:
        return "compiled"
    return "compiled" if step_work(net, batch_size) <= COMPILED_MAX_WORK else "step"


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
    shuffle : bool or "global"
        Shuffle the samples each epoch (with ``sampling="epoch"``), from a generator of
        ``seed``. "global": each epoch's order is ``idx = np.arange(n);
        np.random.shuffle(idx)`` from NumPy's global random state (``seed`` must be
        None), as scripts that call ``np.random.seed`` shuffle (the sine article's).
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
        None (default) decides automatically (``choose_path``).

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
    check_network(net)
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
    if not (isinstance(shuffle, (bool, np.bool_)) or shuffle == "global"):
        raise TypeError(f"shuffle: expected True, False or 'global', got {shuffle!r}")
    if shuffle == "global" and sampling != "epoch":
        raise ValueError("shuffle: 'global' shuffles each epoch, sampling must be 'epoch' "
                         f"(got {sampling!r})")
    if shuffle == "global" and seed is not None:
        raise ValueError(f"seed: shuffle='global' draws from NumPy's global random state "
                         f"(seed it with np.random.seed); expected None, got {seed!r}")
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
    seed = V.check_seed(seed)
    if compiled is not None and not isinstance(compiled, bool):
        raise TypeError(f"compiled: expected True, False or None, got {compiled!r}")
    rng = np.random.default_rng(seed)

    schedule = BatchSchedule(n, batch_size, shuffle=shuffle, sampling=sampling, rng=rng)
    run = _Run(net, optimizer, x_train, t_train, x_test, t_test, batch_size, total, per_epoch,
               eval_every, progress, callbacks, schedule)
    path = choose_path(net, batch_size, callbacks, compiled, optimizer)
    if path == "step":
        runner = StepRunner(run)
    elif net.engine.evaluates_inside(batch_size, x_train, t_train, x_test, t_test):
        runner = PeriodsRunner(run)
    else:
        runner = BatchesRunner(run)
    run.history.path = path
    # overflow on the way to divergence is reported by the guard, not by NumPy warnings
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            run.warm_up(runner)  # (announces compiling itself)
            run.open_bar()
            with compile_notice(0.0, show=False):
                run.train(runner)
        finally:
            run.close()
    return run.history




class Guard:
    """The divergence guard: the parameters (and BatchNorm's running statistics, for the
    networks that have them) at the start of the current stretch, known finite; restored
    when training diverges."""

    def __init__(self, net):
        self.net = net
        self.params = net.params.flat.copy()
        self.state = _state(net).copy()
        self.iteration = 0

    def keep(self, iteration: int) -> None:
        self.params[...] = self.net.params.flat
        self.state[...] = _state(self.net)
        self.iteration = iteration

    def finite(self) -> bool:
        net = self.net
        return bool(np.all(np.isfinite(net.params.flat)) and np.all(np.isfinite(_state(net))))

    def restore(self) -> None:
        self.net.params.flat[...] = self.params
        _state(self.net)[...] = self.state


_NO_STATE = np.empty(0)


def _state(net) -> np.ndarray:
    """The network's state besides its parameters (BatchNorm's running statistics); a
    convnet has none."""
    return getattr(net, "state", _NO_STATE)


class _Run:
    """The state of one fit() call: the one training loop, its record and its guard."""

    def __init__(self, net, optimizer, x, t, x_test, t_test, batch_size, total, per_epoch,
                 eval_every, progress, callbacks, schedule):
        self.net, self.optimizer, self.batch_size = net, optimizer, batch_size
        self.x, self.t, self.x_test, self.t_test = x, t, x_test, t_test
        self.total, self.per_epoch, self.eval_every = total, per_epoch, eval_every
        self.callbacks, self.schedule = callbacks, schedule
        self.history = History()
        self.iteration = 0
        self.guard = Guard(net)
        self.initial = net.params.flat.copy()  # (what the guard's advice is judged at)
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

    def warm_up(self, runner) -> None:
        """Compile (or load from cache) what training will run, on a scratch copy.

        One batch on a copy of the network: the real run is untouched, and its timings
        (``train_seconds``, ``seconds_per_iter``) measure training, not compilation.
        """
        t0 = time.perf_counter()
        # (said when compiling takes a noticeable time, i.e. not from the cache)
        with compile_notice(COMPILE_NOTICE_SECONDS, once=False, show=self.progress):
            engine = self.net.copy().engine
            # the untrained loss (at most 1,024 rows; BatchNorm with batch statistics: its
            # running ones are still zeros)
            rows = slice(0, 1024)
            self.history.initial_loss = engine.evaluate(self.x[rows], self.t[rows],
                                                        train=getattr(engine, "batchnorm",
                                                                      False))[0]
            runner.warm_up(engine, min(self.batch_size, self.x.shape[0]))
            engine.evaluate(self.x[:1], self.t[:1])
        self.history.compile_seconds = time.perf_counter() - t0

    def period_ends(self, periods: int) -> np.ndarray:
        """Batches from here to each of the next ``periods`` evaluation points."""
        E, it = self.eval_every, self.iteration
        first = (it // E + 1) * E
        points = np.minimum(np.arange(first, first + periods * E, E), self.total)
        points = points[: int(np.searchsorted(points, self.total)) + 1]
        return (points - it).astype(np.int64)

    # --- the one loop -------------------------------------------------------------------

    def train(self, runner) -> None:
        while self.iteration < self.total:
            ends = self.period_ends(runner.periods)
            order, starts = self.schedule.take(int(ends[-1]))
            self.guard.keep(self.iteration)
            chunk = runner.train(order, starts, ends)
            if self.record(chunk, ends, runner.shows_steps):
                return
            if chunk.stop >= 0:
                self.diverged(chunk, ends, order, starts)

    def evaluation(self, losses, per_batch: float, end: int) -> Chunk:
        """The engine's evaluation of a period that ended after batch ``end - 1`` of
        ``losses`` (the step and batch runners'): a record, or a stop when the last update
        left the parameters non-finite."""
        if not self.guard.finite():
            return Chunk(losses, NO_RECORDS, per_batch, stop=end, not_finite=True)
        engine = self.net.engine
        record = np.empty((1, 4))
        record[0, :2] = engine.evaluate_sums(self.x, self.t, ("x_train", "t_train"))
        record[0, 2:] = (math.nan, 0) if self.x_test is None else \
            engine.evaluate_sums(self.x_test, self.t_test, ("x_test", "t_test"))
        return Chunk(losses, record, per_batch)

    def record(self, chunk: Chunk, ends, steps_shown: bool) -> bool:
        """Append the chunk's finished periods to the history (each period's mean batch
        loss, summed in order), with the progress line and the callbacks after each;
        True when a callback asks to stop."""
        done = chunk.records.shape[0]
        if done == 0:
            return False
        h, r = self.history, chunk.records
        ends = ends[:done]
        bounds = np.concatenate([[0], ends[:-1]]).astype(np.intp)
        counts = np.diff(np.concatenate([[0], ends]))
        loss = (np.add.reduceat(chunk.losses[: int(ends[-1])], bounds) / counts).tolist()
        iterations = (self.iteration + ends).tolist()
        softmax = self.net.engine.loss == "softmax"
        none = [None] * done
        train_acc = (r[:, 1] / self.x.shape[0]).tolist() if softmax else none
        test_loss, test_acc = none, none
        if self.x_test is not None:
            test_loss = r[:, 2].tolist()
            test_acc = (r[:, 3] / self.x_test.shape[0]).tolist() if softmax else none
        columns = {"iteration": iterations, "epoch": [i / self.per_epoch for i in iterations],
                   "loss": loss, "train_acc": train_acc, "test_acc": test_acc,
                   "test_loss": test_loss, "seconds_per_iter": [chunk.per_batch] * done}
        if not (self.callbacks or self.bar is not None):  # all at once: nothing to show
            for name, values in columns.items():
                getattr(h, name).extend(values)
            self.iteration = h.iterations = iterations[-1]
            h.train_seconds += chunk.per_batch * int(ends[-1])
            return False
        for j in range(done):
            for name, values in columns.items():
                getattr(h, name).append(values[j])
            self.iteration = h.iterations = iterations[j]
            h.train_seconds += chunk.per_batch * int(counts[j])
            if self.bar is not None:
                if not steps_shown:
                    self.bar.update(int(counts[j]))
                line = _postfix(loss[j], train_acc[j], test_acc[j])
                self.bar.set_postfix_str(line, refresh=False)
                self.bar.write(f"iter {self.iteration:>6} | {line}")
            if any(cb(h) is True for cb in self.callbacks):
                return True
        return False

    def diverged(self, chunk: Chunk, ends, order, starts):
        """Raise TrainingDiverged for a chunk that stopped. Parameters that are not finite
        are restored to the last evaluation's: the stretch's start, then its finished
        periods replayed (the same batches give the same bits)."""
        done = chunk.records.shape[0]
        start = self.guard.iteration
        self.iteration = self.history.iterations = start + chunk.stop
        if self.guard.finite():
            where, at = "left at their values after iteration", self.iteration
        else:
            self.guard.restore()
            replay = int(ends[done - 1]) if done else 0
            if replay:
                self.net.engine.train_batches(self.x, self.t, order, starts[:replay + 1],
                                              self.optimizer.lr)
            where, at = "restored to their values after iteration", start + replay
        lr = self.optimizer.lr
        if chunk.not_finite:
            what, it = f"the parameters became NaN or infinite by iteration {self.iteration}", \
                self.iteration
        else:
            what, it = f"the loss became {float(chunk.losses[chunk.stop])} at iteration " \
                f"{self.iteration + 1}", self.iteration + 1
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


def _postfix(loss, train_acc, test_acc) -> str:
    parts = [f"loss {loss:.4g}"]
    if train_acc is not None:
        parts.append(f"train acc {train_acc:.4f}")
    if test_acc is not None:
        parts.append(f"test acc {test_acc:.4f}")
    return " | ".join(parts)

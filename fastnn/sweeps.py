"""Hyperparameter sweeps: the book's random search (and grids), in this process or on Dask.

A sweep is a training description (``fastnn.recipe``: the options of ``fastnn train``),
a search space, a seed and a number of trials. Trial ``i`` draws its hyperparameters and
its own seed from ``(seed, i)`` alone, so a trial gives the same result on any worker, in
any order and in any run. Each trial trains with ``fit`` on the training part of the
data and is evaluated, after every epoch, on the held-out validation part (20 %, the
book's); only the best trial ever sees the test set.

Trials run in this process (``workers=1``) or as tasks on Dask's ``distributed``
scheduler: an embedded local cluster (one single-threaded worker process per core) or a
``Client`` to an existing one. The data goes to the cluster once. A worker that dies is
replaced by Dask re-running its task elsewhere; a trial that diverges or raises is a
result (``status`` "diverged" / "error"), not retried.

Only the client writes the log (``fastnn.sweep_log``: every line checked on read, the
log locked for the sweep's lifetime). ``resume`` runs the trials a log lacks, and
refuses a log written with other options.

``sampler="tpe"`` (Optuna's TPE) and ``prune="median"|"asha"`` are ``fastnn.search``'s:
their trials run in rounds (``search.run_rounds``), the rest of this module unchanged.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time

import numpy as np

from . import _validation as V
from . import recipe
from .sweep_log import LOG_VERSION, MAX_TRIALS, SweepError, SweepLog  # noqa: F401

# Searchable hyperparameters: (kind, check of a value, what a value must be)
SPACE = {
    "lr": (float, lambda v: v > 0 and math.isfinite(v), "positive"),
    "weight_decay": (float, lambda v: v >= 0 and math.isfinite(v), "non-negative"),
    "momentum": (float, lambda v: 0 <= v < 1, "in [0, 1)"),
    "dropout": (float, lambda v: 0 <= v < 1, "in [0, 1)"),
    "batch_size": (int, lambda v: v >= 1, "a positive integer"),
    "epochs": (int, lambda v: v >= 1, "a positive integer"),
}
SCALES = ("log", "uniform")
BOOK_SEARCH = {"lr": "1e-6:1e-2:log", "weight_decay": "1e-8:1e-4:log"}  # ch06's search
BOOK_TRIALS = 100
INSTALL_HINT = ("pip install distributed (from a fastnn checkout: "
                "pip install '.[distributed]')")


def _name(raw: str, option: str) -> str:
    name = raw.strip().replace("-", "_")
    if name not in SPACE:
        shown = ", ".join(n.replace("_", "-") for n in SPACE)
        raise SweepError(f"{option}: unknown hyperparameter {raw.strip()!r}; expected one "
                         f"of {shown}")
    return name


def _value(name: str, text, option: str, what: str):
    kind, ok, expect = SPACE[name]
    try:
        if isinstance(text, str):
            value = float(text.strip())
        elif isinstance(text, bool) or not isinstance(text, (int, float, np.integer,
                                                             np.floating)):
            raise ValueError
        else:
            value = float(text)
    except ValueError:
        raise SweepError(f"{option}: {name.replace('_', '-')}'s {what} must be a number, got "
                         f"{text!r}") from None
    if kind is int:
        if value != int(value) if math.isfinite(value) else True:
            raise SweepError(f"{option}: {name.replace('_', '-')}'s {what} must be an "
                             f"integer, got {text!r}")
        value = int(value)
    if not ok(value):
        raise SweepError(f"{option}: {name.replace('_', '-')}'s {what} must be {expect}, "
                         f"got {text!r}")
    return value


def _named(spec, option: str, name, form: str, example: str):
    """(canonical name, the value part) of ``"NAME=..."`` (or of ``name`` and ``spec``)."""
    if name is None:
        if not isinstance(spec, str) or "=" not in spec:
            raise SweepError(f"{option}: expected {form}, such as {example}, got {spec!r}")
        name, spec = spec.split("=", 1)
    return _name(name, option), spec


def parse_search(spec, option: str = "search", name: str | None = None) -> tuple[str, dict]:
    """``"NAME=LOW:HIGH[:log|:uniform]"`` (or ``name`` and ``"LOW:HIGH[:scale]"`` /
    ``(low, high[, scale])``) -> ``(name, {"low", "high", "scale"})``."""
    name, spec = _named(spec, option, name, "NAME=LOW:HIGH[:log]", "lr=1e-4:1e-1:log")
    if isinstance(spec, str):
        parts = spec.split(":")
    elif isinstance(spec, (tuple, list)):
        parts = list(spec)
    else:
        parts = None
    if parts is None or len(parts) not in (2, 3):
        raise SweepError(f"{option}: expected {name.replace('_', '-')}=LOW:HIGH[:log], such "
                         f"as lr=1e-4:1e-1:log, got {spec!r}")
    scale = "uniform"
    if len(parts) == 3:
        scale = str(parts[2]).strip().lower()
        if scale not in SCALES:
            raise SweepError(f"{option}: {name.replace('_', '-')}: the scale must be log or "
                             f"uniform, got {parts[2]!r}")
    low = _value(name, parts[0], option, "LOW")
    high = _value(name, parts[1], option, "HIGH")
    if not low < high:
        raise SweepError(f"{option}: {name.replace('_', '-')}: LOW must be below HIGH, got "
                         f"{low:g}:{high:g}")
    if scale == "log" and low <= 0:
        raise SweepError(f"{option}: {name.replace('_', '-')}: a log scale needs LOW > 0, "
                         f"got {low:g}")
    return name, {"low": low, "high": high, "scale": scale}


def parse_grid(spec, option: str = "grid", name: str | None = None) -> tuple[str, list]:
    """``"NAME=a,b,c"`` (or ``name`` and a sequence of values) -> ``(name, [values])``."""
    name, spec = _named(spec, option, name, "NAME=a,b,c", "batch-size=32,64,128")
    values = spec.split(",") if isinstance(spec, str) else spec
    if isinstance(values, (int, float)) or not hasattr(values, "__iter__"):
        values = [values]
    values = list(values)
    if not values or any(isinstance(v, str) and not v.strip() for v in values):
        raise SweepError(f"{option}: expected {name.replace('_', '-')}=a,b,c (comma-separated "
                         f"values), got {spec!r}")
    values = [_value(name, v, option, "value") for v in values]
    if len(set(values)) != len(values):
        raise SweepError(f"{option}: {name.replace('_', '-')} lists a value twice: {spec!r}")
    return name, values


def make_space(search=None, grid=None) -> tuple[dict, dict]:
    """Canonical ``(search, grid)`` from dicts (name -> spec) or lists of "NAME=..." specs;
    a name may appear once in all. Neither given: the book's search (lr and weight decay,
    log-uniform)."""
    out = []
    for given, parse, option in ((search, parse_search, "search"), (grid, parse_grid, "grid")):
        parsed = {}
        if given is None:
            given = []
        if isinstance(given, str):
            given = [given]
        items = [(k, v) for k, v in given.items()] if isinstance(given, dict) else \
            [(None, v) for v in given]
        for key, spec in items:
            name, value = parse(spec, option, key)
            if name in parsed:
                raise SweepError(f"{option}: {name.replace('_', '-')} is given twice")
            parsed[name] = value
        out.append(parsed)
    search, grid = out
    both = sorted(set(search) & set(grid))
    if both:
        raise SweepError(f"search, grid: {both[0].replace('_', '-')} is in both; give it once")
    if not search and not grid:
        search = dict(parse_search(v, "search", k) for k, v in BOOK_SEARCH.items())
    return dict(sorted(search.items())), dict(sorted(grid.items()))


def spec_text(name: str, dim) -> str:
    """The command-line form of a search dimension or grid."""
    if isinstance(dim, dict):
        return f"{name.replace('_', '-')}={dim['low']:g}:{dim['high']:g}:{dim['scale']}"
    return f"{name.replace('_', '-')}={','.join(format(v, 'g') for v in dim)}"


def _draw(dim: dict, kind, u: float):
    low, high = dim["low"], dim["high"]
    if kind is int:  # every integer in [low, high] can come out
        if dim["scale"] == "log":
            v = math.exp(math.log(low) + u * (math.log(high + 1) - math.log(low)))
        else:
            v = low + u * (high - low + 1)
        return int(min(max(math.floor(v), low), high))
    if dim["scale"] == "log":
        v = 10.0 ** (math.log10(low) + u * (math.log10(high) - math.log10(low)))
    else:
        v = low + u * (high - low)
    return float(min(max(v, low), np.nextafter(high, low)))


def trial_plan(search: dict, grid: dict, seed: int, i: int) -> tuple[dict, int]:
    """Trial ``i``'s hyperparameters and seed: from ``(seed, i)`` alone. Grid points are
    taken in turn (trial i has point i mod the grid's size); searched values are drawn
    from the trial's own random stream."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, i)))
    trial_seed = int(rng.integers(0, 2**31 - 1))
    params = {}
    if grid:
        points = list(itertools.product(*grid.values()))
        params.update(zip(grid, points[i % len(points)]))
    for name, dim in search.items():
        params[name] = _draw(dim, SPACE[name][0], float(rng.random()))
    return dict(sorted(params.items())), trial_seed


def params_problem(params: dict, search: dict, grid: dict) -> str | None:
    """What makes ``params`` (a log record's) something this sweep could not have drawn:
    other names, a value of the wrong type, outside a searched range or not on the grid;
    None when they are fine."""
    names = sorted(set(search) | set(grid))
    if sorted(params) != names:
        return (f"params must name {', '.join(names) or 'nothing'} (this sweep's search "
                f"space), got {', '.join(sorted(map(str, params))) or 'none'}")
    for name, value in params.items():
        kind = SPACE[name][0]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                (kind is int and not isinstance(value, int)) or not math.isfinite(value):
            return f"params: {name} must be {'an integer' if kind is int else 'a number'}, " \
                   f"got {value!r}"
        if name in grid and value not in grid[name]:
            return f"params: {name} {value!r} is not on this sweep's grid " \
                   f"({spec_text(name, grid[name])})"
        if name in search and not search[name]["low"] <= value <= search[name]["high"]:
            return f"params: {name} {value!r} is outside this sweep's search " \
                   f"({spec_text(name, search[name])})"
    return None


def grid_size(grid: dict) -> int:
    return math.prod(len(v) for v in grid.values()) if grid else 1


def split(x, t, fraction: float, seed: int):
    """(x_train, t_train, x_val, t_val): a seeded shuffle, the first ``fraction`` of the
    samples held out for validation (the book's ``shuffle_dataset`` + slice)."""
    n = x.shape[0]
    n_val = int(n * fraction)
    if n_val < 1 or n - n_val < 1:
        raise SweepError(f"validation_fraction: {fraction:g} of {n} samples leaves "
                         f"{n_val} for validation and {n - n_val} for training; both need "
                         f"at least one")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    order = rng.permutation(n)
    val, train = order[:n_val], order[n_val:]
    return x[train], t[train], x[val], t[val]


def fingerprint(*arrays) -> str:
    """SHA-256 over the arrays' shapes, dtypes and bytes (the data a log was made from)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype.str}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _finite(value):
    """JSON-safe: non-finite floats (and numpy scalars) as None / plain floats."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


# --- one trial (runs on a worker, or here) ---------------------------------------------

def _numba_threads():
    try:
        import numba

        return numba.get_num_threads()
    except ImportError:
        return None


def _set_numba_threads(n) -> None:
    try:
        import numba

        if n is not None:
            numba.set_num_threads(min(int(n), numba.config.NUMBA_NUM_THREADS))
    except (ImportError, ValueError):
        pass


def _single_threaded(threads) -> None:
    """BLAS at ``threads`` (1 by default: parallel trials get the cores), numba at one."""
    from .kernels._threads import set_num_threads

    set_num_threads(None if threads == "auto" else threads)
    _set_numba_threads(1)


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "local"


def run_trial(data: dict, base: dict, trial: dict, threads=1, final: bool = False) -> dict:
    """Train one trial and return its record (never raises for the trial's own failures:
    divergence and errors are statuses). ``final``: the best trial again, this time
    evaluated on the test set too; the trained network comes back under "net"."""
    from .train import TrainingDiverged, fit

    _single_threaded(threads)
    t0 = time.perf_counter()
    stopper = None
    if trial.get("prune") is not None:  # a pruned sweep's trial: it may stop between epochs
        from .search import Stopper

        stopper = Stopper(trial["prune"])
    record = {"trial": trial["trial"], "params": trial["params"], "seed": trial["seed"],
              "status": "ok", "val_acc": None, "val_loss": None, "history": {},
              "seconds": 0.0, "wall_seconds": 0.0, "worker": _worker_name()}
    config = dict(base, **trial["params"], seed=trial["seed"])
    if stopper is not None:
        record["epochs_planned"] = config["epochs"]
    history = None
    try:
        net, optimizer = recipe.build(config, data["x"].shape[1],
                                      recipe.n_outputs(config, data["t"]))
        try:
            history = fit(net, data["x"], data["t"], x_test=data["x_val"], t_test=data["t_val"],
                          optimizer=optimizer, progress=False,
                          callbacks=() if stopper is None else (stopper,),
                          **recipe.fit_arguments(config))
            if stopper is not None and stopper.stopped_at is not None:
                record.update(status="pruned", pruned_at=stopper.stopped_at)
        except TrainingDiverged as exc:
            history = exc.history
            record.update(status="diverged", error=str(exc))
        if record["status"] in ("ok", "pruned") and history.test_loss:
            record["val_acc"], record["val_loss"] = history.test_acc[-1], history.test_loss[-1]
        if final and record["status"] == "ok":
            if data.get("x_test") is not None:
                from .train import evaluate

                record["test_loss"], record["test_acc"] = evaluate(
                    net, data["x_test"], data["t_test"], name="x_test")
            record["net"] = net
    except Exception as exc:  # the trial's failure is its result, logged as "error"
        record.update(status="error", error=f"{type(exc).__name__}: {exc}")
    if history is not None:
        record["history"] = {"epoch": history.epoch, "loss": history.loss,
                             "train_acc": history.train_acc, "val_acc": history.test_acc,
                             "val_loss": history.test_loss}
        record["seconds"] = history.train_seconds
    record["wall_seconds"] = time.perf_counter() - t0
    net = record.pop("net", None)
    record = _finite(record)
    if net is not None:
        record["net"] = net
    return record


# --- running ----------------------------------------------------------------------------

class Trials(list):
    """The trials' records in trial order; ``best`` is the best one (with ``test_acc``
    when there was a test set), ``ranked()`` orders them best first."""

    best: dict | None = None
    log: str | None = None
    regression: bool = False

    def ranked(self) -> list:
        return rank(self, self.regression)


def rank(records, regression: bool = False) -> list:
    """Best first: finished trials by validation accuracy (loss for regression), then the
    diverged and failed ones; ties by trial number."""
    def key(r):
        if r.get("status") != "ok" or (r.get("val_loss") if regression else
                                       r.get("val_acc")) is None:
            return (1, 0.0, r["trial"])
        score = r["val_loss"] if regression else -r["val_acc"]
        return (0, score, r["trial"])

    return sorted(records, key=key)


def _usable_cores() -> int:
    from .kernels._threads import usable_cores

    return usable_cores()


def _need_distributed(option: str):
    try:
        import distributed
    except ImportError:
        raise SweepError(f"{option}: running trials on Dask needs its distributed package: "
                         f"{INSTALL_HINT} (workers=1 / --workers 1 runs them in this process)"
                         ) from None
    return distributed


def sweep(x=None, t=None, *, x_test=None, t_test=None, dataset: str = "digits",
          data_dir=None, trials: int | None = None, search=None, grid=None, seed: int = 0,
          validation_fraction: float = 0.2, client=None, workers: int | None = None,
          scheduler: str | None = None, timeout: float = 10.0, log=None,
          resume: bool = False, threads=1, progress=None, sampler: str | None = None,
          prune: str = "none", round_size: int | None = None, **training) -> Trials:
    """Run a hyperparameter sweep; return its trials as records (``Trials``).

    Parameters
    ----------
    x, t : arrays, optional
        The data to sweep on (trials train on ``1 - validation_fraction`` of it); by
        default the training split of ``dataset``.
    x_test, t_test : arrays, optional
        Evaluated once, on the best trial (default: the data set's test split).
    dataset : str
        digits (default), mnist, fashion-mnist or sine: the data when ``x`` is not given,
        and the defaults of the training options (as for ``fastnn train``).
    trials : int, optional
        How many trials; default the grid's size with a grid alone, else 100 (the book's).
    search : dict or list, optional
        Random search: ``{"lr": "1e-6:1e-2:log", "batch_size": (16, 128)}`` or
        ``["lr=1e-6:1e-2:log"]``; names lr, weight_decay, momentum, dropout, batch_size,
        epochs; scale log or uniform (the default); integers for sizes. Neither search
        nor grid: the book's (lr 10^U(-6,-2), weight decay 10^U(-8,-4)).
    grid : dict or list, optional
        ``{"batch_size": [32, 64]}`` or ``["batch-size=32,64"]``; trial i takes grid
        point i mod the grid's size, searched values drawn on top.
    seed : int
        The sweep's seed: trial i's hyperparameters and seed come from (seed, i) alone.
    validation_fraction : float
        Held out of ``x`` for validation (the book's 0.2).
    client : distributed.Client, optional
        Run the trials on this client's cluster.
    workers : int, optional
        Without a client: an embedded local cluster of this many single-threaded worker
        processes (default: one per usable core); 1 runs the trials in this process.
    scheduler : str, optional
        The address of an existing scheduler to connect to (instead of ``workers``),
        within ``timeout`` seconds.
    log : path, optional
        JSON lines, one per finished trial (see the module's notes).
    resume : bool
        Continue ``log``: run only the trials it lacks (it must come from the same sweep).
    threads : int or "auto"
        BLAS threads in each trial (default 1: the cores go to parallel trials).
    progress : callable, optional
        Called as ``progress(record, done, total)`` after each trial is logged.
    sampler : {"random", "grid", "tpe"}, optional
        How trials get their hyperparameters: the book's random search (default), the
        grid's points alone (the default for a grid without a search), or Optuna's TPE
        over ``search`` (needs Optuna; no grid). See ``fastnn.search``.
    prune : {"none", "median", "asha"}
        Stop hopeless trials after an epoch (status "pruned", with their curve so far).
    round_size : int, optional
        With tpe or a pruner, trials run in rounds of this many (default 4): each round
        learns from the earlier ones only, so the results do not depend on the cluster.
        Make it the number of workers to keep them all busy.
    **training
        Options of the training description (``recipe.KEYS``): hidden, activation, init,
        loss, batch_size, epochs, iters, eval_every, optimizer, lr, momentum,
        weight_decay, dropout, batchnorm, backend, dtype. Searched names override them.

    Raises
    ------
    SweepError (a ValueError)
        Bad options, named, before any trial runs.
    KeyboardInterrupt
        After cancelling what is in flight; the log holds every trial finished so far.
    """
    plan = prepare(x, t, x_test=x_test, t_test=t_test, dataset=dataset, data_dir=data_dir,
                   trials=trials, search=search, grid=grid, seed=seed,
                   validation_fraction=validation_fraction, client=client, workers=workers,
                   scheduler=scheduler, timeout=timeout, log=log, resume=resume,
                   threads=threads, sampler=sampler, prune=prune, round_size=round_size,
                   training=training)
    return plan.run(progress)


def prepare(x=None, t=None, *, x_test=None, t_test=None, dataset="digits", data_dir=None,
            trials=None, search=None, grid=None, seed=0, validation_fraction=0.2,
            client=None, workers=None, scheduler=None, timeout=10.0, log=None, resume=False,
            threads=1, sampler=None, prune="none", round_size=None, training=None) -> _Plan:
    """Check everything and load the data; the returned plan's ``run()`` runs the sweep."""
    from .kernels._threads import check_threads

    training = dict(training or {})
    options = [k for k in recipe.KEYS if k not in ("dataset", "seed")]  # (own arguments)
    unknown = sorted(set(training) - set(options))
    if unknown:
        raise TypeError(f"sweep: unknown training option {unknown[0]!r}; expected one of "
                        f"{', '.join(options)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SweepError(f"seed: expected a non-negative integer, got {seed!r}")
    seed = int(seed)
    if isinstance(validation_fraction, bool) or \
            not isinstance(validation_fraction, (int, float)) or \
            not 0 < validation_fraction < 1:
        raise SweepError(f"validation_fraction: expected a number between 0 and 1 "
                         f"(exclusive), got {validation_fraction!r}")
    if threads != "auto":
        check_threads(threads, "threads")
    search, grid = make_space(search, grid)
    trials_given = trials is not None
    if trials is None:
        trials = grid_size(grid) if grid and not search else BOOK_TRIALS
    trials = V.check_positive_int(trials, "trials")
    if trials > MAX_TRIALS:
        raise SweepError(f"trials: at most {MAX_TRIALS:,} trials, got {trials:,}")
    modes = [n for n, v in (("client", client), ("workers", workers),
                            ("scheduler", scheduler)) if v is not None]
    if len(modes) > 1:
        raise SweepError(f"{', '.join(modes)}: give at most one of them")
    if workers is not None:
        workers = V.check_positive_int(workers, "workers")
        cores = _usable_cores()
        if workers > cores:
            raise SweepError(f"workers: at most {cores} (the usable cores here: one "
                             f"single-threaded worker each), got {workers}")
    elif client is None and scheduler is None:
        workers = _usable_cores()
    if scheduler is not None:
        if not isinstance(scheduler, str) or not scheduler.strip():
            raise SweepError(f"scheduler: expected an address such as tcp://10.0.0.5:8786, "
                             f"got {scheduler!r}")
        timeout = V.check_positive_float(timeout, "timeout")
    if client is not None or scheduler is not None or workers > 1:
        _need_distributed("client" if client is not None else
                          "scheduler" if scheduler is not None else "workers")
    sweep_log = None
    if log is not None:
        sweep_log = SweepLog(log)
        sweep_log.check(V.check_bool(resume, "resume"))
    elif resume:
        raise SweepError("resume: needs a log (log=PATH / --log PATH) to continue")

    base = recipe.resolve(dataset, **training)
    from . import search as learn

    try:
        chosen = learn.check(sampler, prune, round_size, search, grid, base)
    except learn.SearchError as exc:
        raise SweepError(str(exc)) from None
    if ("momentum" in search or "momentum" in grid) and \
            base["optimizer"] not in ("momentum", "nesterov"):
        raise SweepError(f"{'search' if 'momentum' in search else 'grid'}: momentum needs "
                         f"optimizer momentum or nesterov (the optimizer is {base['optimizer']})")
    if (x is None) != (t is None):
        raise SweepError("x, t: pass both or neither")
    if x is None:
        (x, t), (x_default_test, t_default_test) = recipe.load_dataset(dataset, data_dir)
        if x_test is None and t_test is None:
            x_test, t_test = x_default_test, t_default_test
        data_name = dataset
    else:
        data_name = "arrays"
    if (x_test is None) != (t_test is None):
        raise SweepError("x_test, t_test: pass both or neither")
    x = np.asarray(x)
    t = np.asarray(t)
    if x.ndim < 2 or t.shape[:1] != x.shape[:1]:
        raise SweepError(f"x, t: expected x of shape (n, features) and t with n rows, got "
                         f"{x.shape} and {t.shape}")
    if x.shape[0] == 0 or math.prod(x.shape[1:]) == 0:
        raise SweepError(f"x: expected samples with features, got shape {x.shape}")
    x = x.reshape(x.shape[0], -1)
    # the labels checked once here, not failing in every trial (nor, for the test set,
    # in the best trial's final evaluation alone)
    n_out = recipe.n_outputs(base, t)
    V.check_targets(t, "t", x.shape[0], n_out, base["loss"], base["dtype"])
    if x_test is not None:
        x_test, t_test = np.asarray(x_test), np.asarray(t_test)
        if x_test.ndim < 2 or x_test.shape[0] == 0 or \
                math.prod(x_test.shape[1:]) != x.shape[1]:
            raise SweepError(f"x_test: expected samples of {x.shape[1]} features like x's, "
                             f"got shape {x_test.shape}")
        x_test = x_test.reshape(x_test.shape[0], -1)
        V.check_targets(t_test, "t_test", x_test.shape[0], n_out, base["loss"], base["dtype"])
    parts = split(x, t, validation_fraction, seed)
    n_train = parts[0].shape[0]
    batch_sizes = grid.get("batch_size") or ([search["batch_size"]["high"]]
                                             if "batch_size" in search else [base["batch_size"]])
    if max(batch_sizes) > n_train:
        where = "search" if "batch_size" in search else "grid" if "batch_size" in grid \
            else "batch_size"
        raise SweepError(f"{where}: a batch size of {max(batch_sizes)} is more than the "
                         f"{n_train} training samples a trial gets")
    # one trial's description checked here, so a bad option fails now, not in every trial
    probe = dict(base, **trial_plan(search, grid, seed, 0)[0])
    recipe.build(probe, x.shape[1], recipe.n_outputs(probe, t))

    options = _finite({
        "version": LOG_VERSION,
        # (bias only when off: the logs of sweeps before the option stay resumable)
        "training": {k: v for k, v in base.items()
                     if k != "seed" and not (k == "bias" and v is True)},
        "search": [spec_text(k, v) for k, v in search.items()],
        "grid": [spec_text(k, v) for k, v in grid.items()],
        "seed": seed, "validation_fraction": float(validation_fraction),
        "threads": threads,
        "data": {"name": data_name, "shape": list(x.shape),
                 "sha256": fingerprint(x, t)},
        **learn.log_options(chosen),
    })
    options = json.loads(json.dumps(options))  # as a log line will read back
    done = {}
    if sweep_log is not None:
        sweep_log.lock()  # (held until the plan has run: _Plan.run releases it)
        try:
            if resume:
                try:
                    learn.check_log(sweep_log.path, options)
                except learn.SearchError as exc:
                    raise SweepError(str(exc)) from None
            done = sweep_log.read(options, base["loss"] != "softmax",
                                  lambda params: params_problem(params, search, grid))
        except BaseException:
            sweep_log.unlock()
            raise
        logged = [r["trials"] for r in done.values() if "trials" in r]
        if not trials_given and logged:  # resuming: the logged sweep's own length
            trials = max(logged)
        done = {i: r for i, r in done.items() if i < trials}
    data = {"x": parts[0], "t": parts[1], "x_val": parts[2], "t_val": parts[3],
            "x_test": x_test, "t_test": t_test}
    return _Plan(options=options, base=base, search=search, grid=grid, seed=seed,
                 trials=trials, data=data, client=client, workers=workers,
                 scheduler=scheduler, timeout=timeout, log=sweep_log, threads=threads,
                 regression=base["loss"] != "softmax", done=done)


def _client_within(distributed, address: str, timeout: float):
    """A Client of the scheduler at ``address``, or SweepError once ``timeout`` seconds
    have passed, whatever answers there: distributed's own timeout covers the TCP connect
    but not its handshake, which waits for ever on a service that is not a scheduler (an
    HTTP server, a dashboard port) or reads a length from its bytes and tries to allocate
    it. So the attempt runs in a thread, and the deadline is this one's."""
    import threading

    outcome = {}

    def attempt():
        try:
            outcome["client"] = distributed.Client(address, timeout=timeout)
        except BaseException as exc:  # (any failure of the attempt is reported below)
            outcome["error"] = exc

    thread = threading.Thread(target=attempt, name="fastnn-connect", daemon=True)
    thread.start()
    thread.join(timeout + 1.0)
    if "client" in outcome:
        return outcome["client"]
    exc = outcome.get("error")
    if exc is None:
        reason = "nothing that speaks Dask's protocol answered: is it a scheduler's address?"
    elif isinstance(exc, MemoryError):
        reason = "what answered is not a Dask scheduler"
    else:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    raise SweepError(f"scheduler: cannot reach {address} within {timeout:g} s ({reason})")


def _ctrl_c_ignored():
    """A context in which SIGINT is ignored (main thread only; else it changes nothing):
    processes started inside it ignore Ctrl-C too."""
    import contextlib
    import signal
    import threading

    @contextlib.contextmanager
    def ignored():
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        before = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, before)

    return ignored()


class _Plan:
    def __init__(self, **kw):
        self.__dict__.update(kw)
        self.cluster = None
        self._scattered = None  # the training data's futures on the cluster

    def pending(self) -> int:
        """How many trials the log lacks."""
        return self.trials - len(self.done)

    def planned(self, i: int) -> tuple[dict, int]:
        """Trial i's hyperparameters and seed as the random search (or grid) plans them."""
        return trial_plan(self.search, self.grid, self.seed, i)

    def todo(self) -> list:
        """The trials the log lacks, planned up front (random and grid samplers without
        pruning; the others are planned round by round: ``search.run_rounds``)."""
        plans = []
        for i in range(self.trials):
            if i in self.done:
                continue
            params, trial_seed = trial_plan(self.search, self.grid, self.seed, i)
            plans.append({"trial": i, "params": params, "seed": trial_seed})
        return plans

    def run(self, progress=None, on_start=None) -> Trials:
        """Run the trials the log lacks. ``on_start(client)`` is called once connected
        (client None: in this process); ``progress(record, done, total)`` after each
        trial is logged. The log's lock is released at the end, however it ends."""
        try:
            return self._run(progress, on_start)
        finally:
            if self.log is not None:
                self.log.unlock()

    def _run(self, progress, on_start) -> Trials:
        from .kernels._threads import policy

        todo = [] if self.options.get("round_size") is not None else self.todo()
        before = policy(), _numba_threads()
        client = self._connect()
        try:
            if on_start is not None:
                on_start(client)
            finished = len(self.done)

            def record_result(record):
                nonlocal finished
                record["sweep"], record["trials"] = self.options, self.trials
                if self.log is not None:
                    self.log.append(record)
                self.done[record["trial"]] = record
                finished += 1
                if progress is not None:
                    progress(record, finished, self.trials)

            if self.options.get("round_size") is not None:  # tpe or a pruner
                from .search import run_rounds

                run_rounds(self, client, record_result)
            elif client is None:
                self._run_here(todo, record_result)
            else:
                self._run_on(client, todo, record_result)
            result = Trials(self.done[i] for i in sorted(self.done))
            result.regression = self.regression
            result.log = None if self.log is None else str(self.log.path)
            result.best = self._final(client, result)
        finally:
            self._close(client)
            if client is None:  # this process's thread settings as they were
                from .kernels._threads import set_num_threads

                set_num_threads(None if before[0] == "auto" else before[0])
                _set_numba_threads(before[1])
        return result

    # in this process
    def _run_here(self, todo, record_result) -> None:
        for trial in todo:
            record_result(run_trial(self.data, self.base, trial, self.threads))

    # on Dask
    def _connect(self):
        if self.client is not None:
            return self.client
        if self.scheduler is None and self.workers == 1:
            return None
        distributed = _need_distributed("workers")
        import logging

        if self.scheduler is not None:
            return _client_within(distributed, self.scheduler, self.timeout)
        try:
            with _ctrl_c_ignored():  # (the workers inherit it: Ctrl-C reaches this process
                # alone, which cancels the trials and closes the cluster, quietly)
                self.cluster = distributed.LocalCluster(
                    n_workers=self.workers, threads_per_worker=1, processes=True,
                    dashboard_address=":0", silence_logs=logging.ERROR)
        except RuntimeError as exc:  # "Nanny failed to start", usually for this reason:
            raise SweepError(
                f"workers: the {self.workers} local worker processes did not start ({exc}). "
                "Dask starts them by importing your program's main module again: in a "
                "script, call fastnn.sweep under `if __name__ == \"__main__\":`, or run "
                "the trials in this process with workers=1") from None
        return distributed.Client(self.cluster)

    def _close(self, client) -> None:
        self._scattered = None  # (futures of this client: gone with it)
        if client is not None and client is not self.client:
            try:
                client.close(timeout=5)
            except Exception:  # closing a half-dead connection: nothing left to save
                pass
        if self.cluster is not None:
            try:
                self.cluster.close(timeout=5)
            except Exception:
                pass
            self.cluster = None

    def _run_on(self, client, todo, record_result) -> None:
        from distributed import as_completed

        if not todo:
            return
        if self._scattered is None:  # once a sweep (it may run in rounds)
            self._scattered = client.scatter(
                {k: v for k, v in self.data.items() if not k.endswith("_test")},
                broadcast=True)
        data = self._scattered
        tag = self.options["data"]["sha256"][:8] + hashlib.sha256(
            json.dumps(self.options, sort_keys=True).encode()).hexdigest()[:8]
        futures = {}
        for trial in todo:
            future = client.submit(run_trial, data, self.base, trial, self.threads,
                                   key=f"fastnn-trial-{tag}-{trial['trial']}", pure=False)
            futures[future] = trial
        try:
            for future in as_completed(futures):
                trial = futures[future]
                try:
                    record = future.result()
                except Exception as exc:  # not the trial's own failure: the cluster's
                    record = _finite({"trial": trial["trial"], "params": trial["params"],
                                      "seed": trial["seed"], "status": "error",
                                      "val_acc": None, "val_loss": None, "history": {},
                                      "seconds": 0.0, "wall_seconds": 0.0, "worker": None,
                                      "error": f"{type(exc).__name__}: {exc}"})
                record_result(record)
        except BaseException:
            client.cancel(list(futures), force=True)
            raise

    def _final(self, client, result: Trials):
        """The best trial, trained again (the same numbers: it is deterministic) to hand
        back its network (``best["net"]``) and evaluate it on the test set, if any."""
        ranked = result.ranked()
        if not ranked or ranked[0].get("status") != "ok":
            return None
        best = dict(ranked[0])
        trial = {k: best[k] for k in ("trial", "params", "seed")}
        if client is None:
            again = run_trial(self.data, self.base, trial, self.threads, final=True)
        else:  # the training data already on the cluster, the test set sent now
            data = dict(self._scattered or {k: v for k, v in self.data.items()
                                            if not k.endswith("_test")},
                        x_test=self.data["x_test"], t_test=self.data["t_test"])
            again = client.submit(run_trial, data, self.base, trial, self.threads,
                                  final=True, pure=False).result()
        best.update({k: again[k] for k in ("test_acc", "test_loss", "net") if k in again})
        if again.get("status") != "ok" or "net" not in again:  # said, never dropped
            best["final_error"] = again.get("error") or f"it ended {again.get('status')}"
        return best

"""The public ``sweep`` and ``prepare``: every argument checked, the data loaded and
split, the log opened, before any trial runs."""

from __future__ import annotations

import json
import math

import numpy as np

from .. import _validation as V
from .. import recipe
from .log import LOG_VERSION, MAX_TRIALS, SweepError, SweepLog
from .plan import _need_distributed, _Plan, _usable_cores
from .space import (
    BOOK_TRIALS,
    CONVNET_FIXED,
    CONVNET_SEARCH,
    grid_size,
    make_space,
    params_problem,
    spec_text,
    trial_plan,
)
from .trials import Trials, fingerprint, finite_json, split


def sweep(x=None, t=None, *, x_test=None, t_test=None, dataset: str = "digits",
          data_dir=None, trials: int | None = None, search=None, grid=None, seed: int = 0,
          validation_fraction: float = 0.2, client=None, workers: int | None = None,
          scheduler: str | None = None, timeout: float = 10.0, log=None,
          resume: bool = False, threads=1, progress=None, sampler: str | None = None,
          prune: str = "none", round_size: int | None = None, warmup: bool = True,
          **training) -> Trials:
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
        Without a client: an embedded local cluster of this many worker processes
        (default: one per usable core, or per ``threads`` usable cores); 1 runs the
        trials in this process. Workers times ``threads`` may not exceed the usable
        cores.
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
        over ``search`` (needs Optuna; no grid). See ``fastnn.sweeps.search``.
    prune : {"none", "median", "asha"}
        Stop hopeless trials after an epoch (status "pruned", with their curve so far).
    round_size : int, optional
        With tpe or a pruner, trials run in rounds of this many (default 4): each round
        learns from the earlier ones only, so the results do not depend on the cluster.
        Make it the number of workers to keep them all busy.
    warmup : bool
        On a Dask cluster, warm each worker before its first trial (default True): a
        worker plugin runs one short trial of each kind the sweep plans, which compiles
        the kernels the trials use into numba's cache, shared by the workers of a machine
        (``fastnn.sweeps.warm``). A failing warm-up is logged; the trials then compile on
        first use. The results do not depend on it.
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
                   warmup=warmup, training=training)
    return plan.run(progress)


def prepare(x=None, t=None, *, x_test=None, t_test=None, dataset="digits", data_dir=None,
            trials=None, search=None, grid=None, seed=0, validation_fraction=0.2,
            client=None, workers=None, scheduler=None, timeout=10.0, log=None, resume=False,
            threads=1, sampler=None, prune="none", round_size=None, warmup=True,
            training=None) -> _Plan:
    """Check everything and load the data; the returned plan's ``run()`` runs the sweep."""
    from ..threads import check_threads

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
    warmup = V.check_bool(warmup, "warmup")
    convnet = training.get("model") not in (None, "mlp")
    search, grid = make_space(search, grid, CONVNET_SEARCH if convnet else None)
    for option, space in (("search", search), ("grid", grid)):
        fixed = [name for name in CONVNET_FIXED if convnet and name in space]
        if fixed:
            raise SweepError(f"{option}: {fixed[0].replace('_', '-')} is not an option of "
                             f"{training['model']} (the book's convnets fix it)")
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
    per_trial = 1 if threads == "auto" else threads  # (auto: each worker's own policy)
    if workers is not None:
        workers = V.check_positive_int(workers, "workers")
        cores = _usable_cores()
        if workers > cores:
            raise SweepError(f"workers: at most {cores} (the usable cores here: one "
                             f"single-threaded worker each), got {workers}")
        if workers * per_trial > cores:
            raise SweepError(f"threads: {per_trial} threads in each of {workers} workers "
                             f"would ask for {workers * per_trial} cores; {cores} are usable "
                             f"here (fewer workers, or fewer threads a trial)")
    elif client is None and scheduler is None:  # as many workers as the threads leave room
        workers = max(_usable_cores() // per_trial, 1)
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
        (x, t), (x_default_test, t_default_test) = recipe.load_dataset(
            dataset, data_dir, images=base["model"] != "mlp")
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
    if not convnet:  # (a convnet's samples stay images)
        x = x.reshape(x.shape[0], -1)
    # the labels checked once here, not failing in every trial (nor, for the test set,
    # in the best trial's final evaluation alone)
    n_out = recipe.n_outputs(base, t)
    V.check_targets(t, "t", x.shape[0], n_out, base["loss"], base["dtype"])
    if x_test is not None:
        x_test, t_test = np.asarray(x_test), np.asarray(t_test)
        if x_test.ndim < 2 or x_test.shape[0] == 0 or \
                math.prod(x_test.shape[1:]) != math.prod(x.shape[1:]) or \
                (convnet and x_test.shape[1:] != x.shape[1:]):
            like = f"shape {x.shape[1:]}" if convnet else f"{x.shape[1]} features"
            raise SweepError(f"x_test: expected samples of {like} like x's, got shape "
                             f"{x_test.shape}")
        if not convnet:
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
    recipe.build(probe, x.shape[1:], recipe.n_outputs(probe, t))

    options = finite_json({
        "version": LOG_VERSION,
        # (bias only when off: the logs of sweeps before the option stay resumable)
        # (and model only when not mlp)
        "training": {k: v for k, v in base.items()
                     if k != "seed" and not (k == "bias" and v is True)
                     and not (k == "model" and v == "mlp")},
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
                 regression=base["loss"] != "softmax", done=done, warmup=warmup)

"""Sweeps that learn: which hyperparameters a trial gets (the sampler) and which trials stop
early (the pruner), decided the same way on any cluster.

Samplers
    ``random``: the book's random search (``sweeps.trial_plan``: trial i from (seed, i)).
    ``grid``: the ``grid`` points in turn, nothing drawn.
    ``tpe``: Optuna's Tree-structured Parzen Estimator, asked and told in the client
    (ask-and-tell: the client stays the only writer of the log, and nothing of Optuna runs
    on a worker).

Pruners (``prune``)
    ``median``: a trial stops after epoch e when its best validation score so far is below
    the median of the finished trials' scores at epoch e (at least ``MEDIAN_MIN_TRIALS``).
    ``asha``: asynchronous successive halving: at the rung epochs 1, 3, 9 ... (factor
    ``ASHA_ETA``) a trial goes on only while it is among the best 1/3 of the trials that
    reached that rung, itself included (the first comers: while it is the best).
    A trial never stops at its last epoch (that saves nothing). A stopped trial is logged
    with status ``pruned``, its curve so far and its last validation accuracy.

Reproducible: when the sampler is ``tpe`` or a pruner is on, the trials run in rounds of
``round_size`` (trial numbers ``[r * size, (r + 1) * size)``). A round's hyperparameters
are asked before it starts, from a sampler told every earlier round's results in trial
order; a round's pruning thresholds (one per epoch) are computed before it starts from the
earlier rounds' curves only. The thresholds travel with each trial to its worker, which
stops the trial itself after the epoch that falls below them: no round trip to the client
per epoch, and the outcome does not depend on which worker finished first, on how many
workers there are, or on the run being resumed. (The cost: a round waits for its slowest
trial; a round as large as the cluster keeps every worker busy.)

Resume: the same loop runs again; the trials the log holds are not trained but asked
(so that the sampler's random state advances exactly as before, and their parameters are
checked against the log) and told from the log, so the rest of the sweep comes out as an
uninterrupted one would.

The log's options carry ``sampler`` (only when not the book's random/grid), ``prune`` and
``round_size`` (only when in use), so an older random-search log still resumes and a
mismatch is refused.
"""

from __future__ import annotations

import math

SAMPLERS = ("random", "grid", "tpe")
PRUNERS = ("none", "median", "asha")
DEFAULT_ROUND_SIZE = 4
TPE_STARTUP_TRIALS = 10  # random trials before TPE models the results (Optuna's default)
MEDIAN_MIN_TRIALS = 4  # finished trials at an epoch before the median rule prunes there
ASHA_ETA = 3  # rungs at epochs 1, 3, 9, ...; the best 1/3 of a rung goes on
SEARCH_HINT = 'pip install optuna (in a fastnn checkout: pip install ".[search]")'


class SearchError(ValueError):
    """A sampler or pruner that cannot run as asked (``fastnn.sweep`` raises it as a
    ``SweepError``, naming the option)."""


def _error(message: str):
    return SearchError(message)


def _optuna(option: str = "sampler"):
    try:
        import optuna
    except ImportError:
        raise _error(f"{option}: tpe needs Optuna, which is not installed: "
                     f"{SEARCH_HINT}") from None
    return optuna


def _most_epochs(search: dict, grid: dict, base: dict) -> int:
    if "epochs" in search:
        return int(search["epochs"]["high"])
    if "epochs" in grid:
        return int(max(grid["epochs"]))
    return int(base["epochs"] or 0)


def check(sampler, prune, round_size, search: dict, grid: dict, base: dict) -> dict:
    """Checked ``{"sampler", "prune", "round_size"}`` (round_size None when trials need no
    rounds); a ``SearchError`` naming the option otherwise. ``sampler`` None: grid for a
    grid alone, else random."""
    if sampler is None:
        sampler = "grid" if grid and not search else "random"
    if sampler not in SAMPLERS:
        raise _error(f"sampler: expected one of {', '.join(SAMPLERS)}, got {sampler!r}")
    prune = "none" if prune is None else prune
    if prune not in PRUNERS:
        raise _error(f"prune: expected one of {', '.join(PRUNERS)}, got {prune!r}")
    if sampler == "grid":
        if not grid:
            raise _error("sampler: grid needs --grid NAME=a,b,c (grid=...) to take its "
                         "points from")
        if search:
            raise _error(f"sampler: grid takes grid points only, and --search gives "
                         f"{next(iter(search)).replace('_', '-')}; use --sampler random to "
                         f"draw it on top of the grid, or give it as --grid values")
    if sampler == "tpe":
        if grid:
            raise _error(f"sampler: tpe draws every value itself and cannot take --grid "
                         f"({next(iter(grid)).replace('_', '-')}); give it as "
                         f"--search NAME=LOW:HIGH instead")
        _optuna()
    if prune != "none":
        if base.get("iters") is not None:
            raise _error("prune: needs epochs to prune over, and the trials train "
                         "--iters; give --epochs instead")
        if base.get("eval_every") is not None:
            raise _error(f"prune: decides after every epoch, and these trials are "
                         f"evaluated every {base['eval_every']} iterations (--eval-every, "
                         f"or the {base.get('dataset')} data set's default); pruning needs "
                         f"an evaluation per epoch")
        most = _most_epochs(search, grid, base)
        if most < 2:
            raise _error(f"prune: needs at least 2 epochs to prune over (a trial stops "
                         f"between epochs), and the trials train {most}")
    rounds = sampler == "tpe" or prune != "none"
    if round_size is not None:
        from .. import _validation as V

        round_size = V.check_positive_int(round_size, "round_size")
        if not rounds:
            raise _error("round_size: only for --sampler tpe or --prune median/asha (the "
                         "other trials need no rounds)")
    elif rounds:
        round_size = DEFAULT_ROUND_SIZE
    return {"sampler": sampler, "prune": prune, "round_size": round_size if rounds else None}


def log_options(chosen: dict) -> dict:
    """What the log records of ``check``'s result (nothing for the book's random search or
    a grid, so that their logs stay as they were)."""
    out = {}
    if chosen["sampler"] == "tpe":
        out["sampler"] = "tpe"
    if chosen["prune"] != "none":
        out["prune"] = chosen["prune"]
    if chosen["round_size"] is not None:
        out["round_size"] = chosen["round_size"]
    return out


def check_log(path, options: dict) -> None:
    """Refuse, naming the option, a log whose first record was written with another
    sampler, pruner or round size (the whole options are compared when it is read)."""
    import json
    from pathlib import Path

    try:
        with open(Path(path), "rb") as f:
            first = next((line for line in f if line.strip()), b"")
        theirs = json.loads(first).get("sweep") if first else None
    except (OSError, ValueError, AttributeError):
        return  # not readable as ours: the full read says why
    if not isinstance(theirs, dict):
        return
    for key, option, default in (("sampler", "--sampler", "random"),
                                 ("prune", "--prune", "none"),
                                 ("round_size", "--round-size", None)):
        was, now = theirs.get(key, default), options.get(key, default)
        if was != now:
            shown = "(none)" if was is None else was
            raise _error(f"{key}: {path} was written by a sweep with {option} {shown} and "
                         f"this one has {'(none)' if now is None else now}; resume with "
                         f"{option} {shown}, or choose another file")


# --- samplers ------------------------------------------------------------------------------

class _Planned:
    """random and grid: trial i's parameters from (seed, i) alone; nothing to learn."""

    def __init__(self, plan):
        self.plan = plan

    def ask(self, i: int) -> dict:
        return self.plan.planned(i)[0]

    def tell(self, record: dict) -> None:
        pass

    def close(self) -> None:
        pass


class _TPE:
    """Optuna's TPE sampler in the client: ``ask(i)`` in trial order within a round,
    ``tell(record)`` in trial order after it."""

    def __init__(self, plan):
        import numpy as np

        optuna = _optuna()
        self.optuna = optuna
        self.verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per trial
        self.distributions = {}
        for name, dim in plan.search.items():
            log = dim["scale"] == "log"
            if isinstance(dim["low"], int):  # sizes: parsed as integers
                self.distributions[name] = optuna.distributions.IntDistribution(
                    int(dim["low"]), int(dim["high"]), log=log)
            else:
                self.distributions[name] = optuna.distributions.FloatDistribution(
                    float(dim["low"]), float(dim["high"]), log=log)
        # the sampler's own stream: from the sweep's seed, apart from the trials' streams
        seed = int(np.random.SeedSequence(plan.seed, spawn_key=(2,)).generate_state(1)[0])
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=TPE_STARTUP_TRIALS)
        self.regression = plan.regression
        self.study = optuna.create_study(
            sampler=sampler, direction="minimize" if plan.regression else "maximize")
        self.asked = {}

    def ask(self, i: int) -> dict:
        trial = self.study.ask(self.distributions)
        self.asked[i] = trial
        return {name: (int(value) if isinstance(self.distributions[name],
                                                self.optuna.distributions.IntDistribution)
                       else float(value))
                for name, value in sorted(trial.params.items())}

    def tell(self, record: dict) -> None:
        """A finished trial's score; a pruned one's curve (TPE ranks it below the finished
        ones); a diverged one as the worst score; an error as a failure (ignored)."""
        from optuna.trial import TrialState

        trial = self.asked.pop(record["trial"])
        key = "val_loss" if self.regression else "val_acc"
        status = record.get("status")
        if status == "ok" and record.get(key) is not None:
            self.study.tell(trial, record[key])
        elif status == "pruned":
            for step, value in enumerate((record.get("history") or {}).get(key) or []):
                if value is not None:
                    trial.report(value, step)
            self.study.tell(trial, state=TrialState.PRUNED)
        elif status == "diverged":
            self.study.tell(trial, math.inf if self.regression else 0.0)
        else:
            self.study.tell(trial, state=TrialState.FAIL)

    def close(self) -> None:
        self.optuna.logging.set_verbosity(self.verbosity)


def make_sampler(plan):
    return _TPE(plan) if plan.options.get("sampler") == "tpe" else _Planned(plan)


# --- pruners -------------------------------------------------------------------------------

def _scores(record: dict, regression: bool) -> list:
    """A record's validation score per epoch, higher is better (minus the loss for
    regression); None where it was not finite."""
    history = record.get("history") or {}
    values = history.get("val_loss" if regression else "val_acc") or []
    return [None if v is None else (-v if regression else v) for v in values]


def asha_rungs(most_epochs: int) -> list:
    """The epochs (1-based) at which ASHA decides: 1, 3, 9, ... below ``most_epochs``."""
    rungs, e = [], 1
    while e < most_epochs:
        rungs.append(e)
        e *= ASHA_ETA
    return rungs


def thresholds(prune: str, earlier: list, regression: bool, most_epochs: int) -> list:
    """Per epoch (index e - 1), the score a trial of the next round must reach to go on
    after epoch e (None: no decision there), from the earlier rounds' records alone."""
    out = [None] * most_epochs
    curves = [(r.get("status"), _scores(r, regression)) for r in earlier]
    if prune == "median":
        for e in range(1, most_epochs + 1):
            values = sorted(s[e - 1] for status, s in curves
                            if status == "ok" and len(s) >= e and s[e - 1] is not None)
            if len(values) >= MEDIAN_MIN_TRIALS:
                mid = len(values) // 2
                out[e - 1] = values[mid] if len(values) % 2 else \
                    0.5 * (values[mid - 1] + values[mid])
    elif prune == "asha":
        for e in asha_rungs(most_epochs):
            values = sorted((s[e - 1] for status, s in curves
                             if status in ("ok", "pruned") and len(s) >= e
                             and s[e - 1] is not None), reverse=True)
            if values:
                # among the m values and its own, a trial goes on while fewer than k of
                # the others beat it: k = (m + 1) // eta, at least 1
                k = max(1, (len(values) + 1) // ASHA_ETA)
                out[e - 1] = values[k - 1] if k <= len(values) else None
    return out


class Stopper:
    """fit()'s callback in a pruned trial: after each epoch, True (stop) when the trial's
    score falls below that epoch's threshold. ``spec`` is what ``run_rounds`` sends with
    the trial: ``{"rule", "thresholds", "regression", "epochs"}``."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.stopped_at = None

    def __call__(self, history) -> bool:
        values = history.test_loss if self.spec["regression"] else history.test_acc
        e = len(values)
        limits = self.spec["thresholds"]
        if e >= self.spec["epochs"] or e > len(limits) or limits[e - 1] is None:
            return False
        scores = [-v if self.spec["regression"] else v for v in values if v is not None]
        if not scores:
            return False
        score = max(scores) if self.spec["rule"] == "median" else scores[-1]
        if score < limits[e - 1]:
            self.stopped_at = e
            return True
        return False


# --- the rounds ----------------------------------------------------------------------------

def run_rounds(plan, client, record_result) -> None:
    """Run ``plan``'s missing trials round by round (see the module's notes);
    ``record_result(record)`` logs each finished trial (and puts it in ``plan.done``)."""
    size = plan.options["round_size"]
    prune = plan.options.get("prune", "none")
    most = _most_epochs(plan.search, plan.grid, plan.base)
    sampler = make_sampler(plan)
    try:
        for start in range(0, plan.trials, size):
            numbers = range(start, min(start + size, plan.trials))
            spec = None
            if prune != "none":
                earlier = [plan.done[i] for i in range(start)]
                spec = {"rule": prune, "regression": plan.regression,
                        "thresholds": thresholds(prune, earlier, plan.regression, most)}
            todo = []
            for i in numbers:
                params = sampler.ask(i)
                trial_seed = plan.planned(i)[1]  # weights and batch order: from (seed, i)
                if i in plan.done:
                    if plan.done[i]["params"] != params or plan.done[i]["seed"] != trial_seed:
                        raise SearchError(
                            f"log: trial {i} in {plan.log.path} has {plan.done[i]['params']}, "
                            f"and the {plan.options.get('sampler', 'random')} sampler now "
                            f"suggests {params} (was the log written by another version of "
                            f"Optuna or fastnn?); resume with that version, or choose "
                            f"another file")
                    continue
                trial = {"trial": i, "params": params, "seed": trial_seed}
                if spec is not None:
                    epochs = params.get("epochs", plan.base["epochs"])
                    trial["prune"] = dict(spec, epochs=int(epochs))
                todo.append(trial)
            if todo:
                if client is None:
                    plan._run_here(todo, record_result)
                else:
                    plan._run_on(client, todo, record_result)
            for i in numbers:  # told in trial order, whoever finished first
                sampler.tell(plan.done[i])
    finally:
        sampler.close()


def pruning_summary(records) -> dict | None:
    """How much a pruned sweep trained: trials stopped, epochs trained and planned (None
    when its records do not say: a sweep without pruning)."""
    records = [r for r in records if r.get("epochs_planned") is not None]
    if not records:
        return None
    planned = sum(int(r["epochs_planned"]) for r in records)
    trained = sum(len((r.get("history") or {}).get("epoch") or []) for r in records)
    pruned = [r for r in records if r.get("status") == "pruned"]
    saved = sum(int(r["epochs_planned"]) - len((r.get("history") or {}).get("epoch") or [])
                for r in pruned)
    return {"trials": len(records), "pruned": len(pruned), "planned_epochs": planned,
            "trained_epochs": trained, "saved_epochs": saved}

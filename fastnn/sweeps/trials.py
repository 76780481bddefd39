"""One trial: the data split, its training and evaluation (``run_trial``, run in this
process or on a Dask worker), and the results (``Trials``, ``rank``)."""

from __future__ import annotations

import hashlib
import math
import time

import numpy as np

from .. import recipe
from .log import SweepError


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


def finite_json(value):
    """JSON-safe: non-finite floats (and numpy scalars) as None / plain floats."""
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
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
    from ..threads import set_num_threads

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
    from ..train import TrainingDiverged, fit

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
        net, optimizer = recipe.build(config, data["x"].shape[1:],
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
                from ..train import evaluate

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
    record = finite_json(record)
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

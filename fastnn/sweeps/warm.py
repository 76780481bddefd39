"""Warming each Dask worker before its first trial (``sweep(..., warmup=True)``, the default).

A worker's first trial compiles the kernels it runs (seconds: about 7 s quiet on a 2-core
machine, four times that on a busy one) or loads them from numba's cache. A sweep
registers ``WarmWorker``, a ``distributed.WorkerPlugin``: its ``setup`` runs on every
worker (and on any worker that joins later, a replaced one included) before the worker
takes a trial, and runs the sweep's own trial code (``run_trial``) once for each kind of
trial the sweep plans, on a sample of the sweep's data for one epoch. That compiles
exactly the kernels the trials call — the sweep's dtype, activation and loss; the
compiled epoch loop or the step path, with or without Dropout and weight decay; the
evaluation — and nothing else (``fastnn warmup`` compiles every variant of the install).

The kernels go into numba's on-disk cache, so the workers of one machine share them: a
lock file in the cache folder lets one worker compile while the others wait, then load.
A warm-up that fails is logged (logger ``fastnn.sweeps``) and changes nothing else: the
trials run, and compile on first use as they did without it. The results of a sweep do
not depend on it (its networks are thrown away; each trial seeds its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time

try:
    from distributed import WorkerPlugin
except ImportError:  # (sweeps without Dask never build one)
    WorkerPlugin = object

from .space import trial_plan
from .trials import _numba_threads, _set_numba_threads, run_trial

LOG = logging.getLogger("fastnn.sweeps")
PLANS_LOOKED_AT = 256  # the trials whose kinds the warm-up covers (a sweep's first ones)
SAMPLE_ROWS = 8  # validation rows of the data sample (the kernels' types, not its size)

# In a worker process: {plugin name: what its setup did} (read by tests and diagnostics)
warmed: dict = {}


def trial_kind(config: dict, n_features: int, n_out: int) -> tuple:
    """What decides the kernels a trial runs, beyond the sweep's fixed options: Dropout,
    weight decay, and whether fit() takes the compiled epoch loop (by the step's work,
    as ``fastnn.train.choose_path`` decides; other optimizers always take the step path)."""
    from ..train import COMPILED_MAX_WORK

    sizes = [n_features, *config["hidden"], n_out]
    work = config["batch_size"] * sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))
    return (config["dropout"] is not None, config["weight_decay"] > 0,
            work <= COMPILED_MAX_WORK)


def warm_trials(plan) -> list[dict]:
    """One short trial for each kind of trial among the sweep's first ``PLANS_LOOKED_AT``
    (for Optuna's sampler: drawn from the same space), one epoch each."""
    from .. import recipe

    n_features = plan.data["x"].shape[1]
    n_out = recipe.n_outputs(plan.base, plan.data["t"])
    kinds = {}
    for i in range(min(plan.trials, PLANS_LOOKED_AT)):
        params, _ = trial_plan(plan.search, plan.grid, plan.seed, i)
        config = dict(plan.base, **params)
        kinds.setdefault(trial_kind(config, n_features, n_out), params)
    return [{"trial": -1, "params": dict(params, epochs=1, iters=None), "seed": 0}
            for params in kinds.values()]


def data_sample(data: dict, trials: list[dict], base: dict) -> dict:
    """The first rows of the training data (one batch of the largest batch size among
    ``trials``) and of the validation data: the trials' types, a tiny cost."""
    rows = max(t["params"].get("batch_size", base["batch_size"]) for t in trials)
    return {"x": data["x"][:rows], "t": data["t"][:rows],
            "x_val": data["x_val"][:SAMPLE_ROWS], "t_val": data["t_val"][:SAMPLE_ROWS],
            "x_test": None, "t_test": None}


@contextlib.contextmanager
def _machine_lock():
    """Held by one process of this machine at a time (a lock file in the kernel cache
    folder): the first worker compiles into the cache, the next ones load from it. No
    cache folder, or no lock to be had: nothing is shared, each compiles for itself."""
    from ..kernels import _cache

    folder = _cache.usable_folder() if _cache.ENABLED else None
    if folder is None:
        yield
        return
    with _cache.file_lock(os.path.join(folder, "warmup.lock")) as error:
        if error is not None:  # (an optimisation only)
            LOG.info("fastnn warm-up: no machine-wide lock (%s); compiling without it", error)
        yield


class WarmWorker(WorkerPlugin):
    """Runs a sweep's warm-up trials on each worker before it takes a trial."""

    def __init__(self, name: str, data: dict, base: dict, trials: list[dict], threads=1):
        self.name = name  # (distributed keys plugins by it: one per sweep)
        self.data, self.base, self.trials, self.threads = data, base, trials, threads

    def warm(self) -> dict:
        """Run the warm-up trials here; never raises (a failure is logged and returned).
        The process's thread settings are left as they were (the trials set their own)."""
        from ..threads import set_num_threads, thread_policy

        t0 = time.perf_counter()
        report = {"trials": len(self.trials), "seconds": 0.0, "error": None}
        before = thread_policy(), _numba_threads()
        try:
            with _machine_lock():
                for trial in self.trials:
                    record = run_trial(self.data, self.base, trial, self.threads)
                    if record["status"] == "error":  # (diverging is fine: it compiled)
                        report["error"] = record["error"]
                        break
        except Exception as exc:  # (run_trial returns its failures; anything else here)
            report["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            set_num_threads(None if before[0] == "auto" else before[0])
            _set_numba_threads(before[1])
        if report["error"] is not None:
            LOG.warning("fastnn warm-up failed on this worker (its trials compile on first "
                        "use instead): %s", report["error"])
        report["seconds"] = time.perf_counter() - t0
        warmed[self.name] = report
        return report

    async def setup(self, worker=None):
        # in a thread: the worker's event loop keeps answering the scheduler meanwhile
        await asyncio.get_running_loop().run_in_executor(None, self.warm)


def register(client, plan, tag: str) -> str | None:
    """Register the sweep's warm-up on ``client``'s workers (it runs on each before the
    call returns, and on workers that join later); its name, or None when there is
    nothing to warm (the numpy backend) or registering failed (logged)."""
    if plan.base["backend"] != "numba":
        return None
    name = f"fastnn-warmup-{tag}"
    try:
        trials = warm_trials(plan)
        plugin = WarmWorker(name, data_sample(plan.data, trials, plan.base), plan.base,
                            trials, plan.threads)
        client.register_plugin(plugin, name=name)
    except Exception as exc:
        LOG.warning("fastnn warm-up: not registered on the cluster (the trials compile on "
                    "first use instead): %s: %s", type(exc).__name__, exc)
        return None
    return name


def unregister(client, name: str | None) -> None:
    """Remove the sweep's plugin from a cluster that outlives the sweep."""
    if name is None:
        return
    with contextlib.suppress(Exception):
        client.unregister_worker_plugin(name)

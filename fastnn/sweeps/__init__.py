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

Only the client writes the log (``sweeps.log``: every line checked on read, the
log locked for the sweep's lifetime). ``resume`` runs the trials a log lacks, and
refuses a log written with other options.

``sampler="tpe"`` (Optuna's TPE) and ``prune="median"|"asha"`` are ``sweeps.search``'s:
their trials run in rounds (``search.run_rounds``), the rest of this module unchanged.
"""

from .api import prepare, sweep
from .log import LOG_VERSION, MAX_TRIALS, SweepError, SweepLog
from .space import (
    BOOK_SEARCH,
    BOOK_TRIALS,
    SPACE,
    grid_size,
    make_space,
    params_problem,
    parse_grid,
    parse_search,
    spec_text,
    trial_plan,
)
from .trials import Trials, fingerprint, finite_json, rank, run_trial, split

__all__ = ["sweep", "prepare", "SweepError", "SweepLog", "Trials", "rank", "run_trial",
           "split", "fingerprint", "trial_plan", "make_space", "parse_search", "parse_grid",
           "spec_text", "grid_size", "params_problem", "finite_json", "SPACE", "BOOK_SEARCH",
           "BOOK_TRIALS",
           "LOG_VERSION", "MAX_TRIALS"]

"""Running the trials a log lacks: in this process, or on a Dask cluster (embedded or
reached by address), with the client the only writer of the log."""

from __future__ import annotations

import hashlib
import json

from .log import SweepError
from .space import trial_plan
from .trials import Trials, _numba_threads, _set_numba_threads, finite_json, run_trial

INSTALL_HINT = ("pip install distributed (from a fastnn checkout: "
                "pip install '.[distributed]')")


def _usable_cores() -> int:
    from ..threads import usable_cores

    return usable_cores()


def _need_distributed(option: str):
    try:
        import distributed
    except ImportError:
        raise SweepError(f"{option}: running trials on Dask needs its distributed package: "
                         f"{INSTALL_HINT} (workers=1 / --workers 1 runs them in this process)"
                         ) from None
    return distributed


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
        from ..threads import thread_policy as policy

        todo = [] if self.options.get("round_size") is not None else self.todo()
        before = policy(), _numba_threads()
        client = self._connect()
        warming = None
        try:
            if on_start is not None:
                on_start(client)
            if client is not None and self.warmup:  # (before the first trial is submitted)
                from .warm import register

                warming = register(client, self, self._tag())
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
            if warming is not None and self.cluster is None:
                from .warm import unregister  # (from a cluster that outlives the sweep)

                unregister(client, warming)
            self._close(client)
            if client is None:  # this process's thread settings as they were
                from ..threads import set_num_threads

                set_num_threads(None if before[0] == "auto" else before[0])
                _set_numba_threads(before[1])
        return result

    # in this process
    def _run_here(self, todo, record_result) -> None:
        for trial in todo:
            record_result(run_trial(self.data, self.base, trial, self.threads))

    # on Dask
    def _tag(self) -> str:
        """The sweep's name on the cluster (its data and options): its tasks' keys."""
        return self.options["data"]["sha256"][:8] + hashlib.sha256(
            json.dumps(self.options, sort_keys=True).encode()).hexdigest()[:8]

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
        tag = self._tag()
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
                    record = finite_json({"trial": trial["trial"], "params": trial["params"],
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

"""fastnn.sweep / `fastnn sweep`: deterministic trials, the log, resume, faults, Dask.

The Dask tests start a real cluster on loopback (a scheduler and two worker processes,
each behind its nanny) and an embedded LocalCluster; they are skipped only when the
optional `distributed` package is not installed (it is part of the dev extra).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from _helpers import sigint_default

from fastnn import sweeps as S
from fastnn.cli import main

# Small trials: digits, one hidden layer of 16, two epochs (milliseconds each)
TINY = dict(hidden=[16], epochs=2, batch_size=32)
SEARCH = {"lr": "0.01:0.5:log", "weight_decay": "1e-6:1e-3:log"}


def cli(argv, capsys):
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def lines(path):
    return [json.loads(line) for line in open(path).read().splitlines()]


def by_trial(records):
    return {r["trial"]: r for r in records}


def same_results(a, b):
    """Trial for trial, the same hyperparameters, seed, status and curves (bitwise)."""
    a, b = by_trial(a), by_trial(b)
    assert sorted(a) == sorted(b)
    for i in a:
        for key in ("params", "seed", "status", "val_acc", "val_loss"):
            assert a[i][key] == b[i][key], (i, key)
        assert a[i]["history"] == b[i]["history"], i


@pytest.fixture(scope="module")
def reference():
    """Six tiny trials run in this process: what every other way of running must give."""
    return list(S.sweep(trials=6, search=SEARCH, seed=3, workers=1, **TINY))


# --- trials are a function of (seed, i) --------------------------------------------------

def test_trial_plan_depends_on_seed_and_index_alone():
    search, grid = S.make_space({"lr": "1e-4:1:log", "batch_size": (8, 64, "log")},
                                {"momentum": [0.5, 0.9]})
    first = [S.trial_plan(search, grid, 7, i) for i in range(6)]
    again = [S.trial_plan(search, grid, 7, i) for i in reversed(range(6))][::-1]
    assert first == again
    assert len({p[1] for p in first}) == 6  # each trial its own seed
    assert [p[0]["momentum"] for p in first] == [0.5, 0.9] * 3  # the grid in turn
    for params, _ in first:
        assert 1e-4 <= params["lr"] < 1 and isinstance(params["batch_size"], int)
        assert 8 <= params["batch_size"] <= 64
    assert S.trial_plan(search, grid, 8, 0) != first[0]
    # the order the options were given in does not matter
    search2, grid2 = S.make_space({"batch_size": (8, 64, "log"), "lr": "1e-4:1:log"},
                                  {"momentum": [0.5, 0.9]})
    assert S.trial_plan(search2, grid2, 7, 3) == first[3]


def test_draws_cover_the_range_on_the_asked_scale():
    search, _ = S.make_space({"lr": "1e-6:1e-2:log", "dropout": "0.1:0.6"}, None)
    draws = [S.trial_plan(search, {}, 0, i)[0] for i in range(400)]
    logs = np.log10([d["lr"] for d in draws])
    assert logs.min() >= -6 and logs.max() < -2
    assert abs(np.median(logs) + 4) < 0.4  # log-uniform: the median decade is the middle
    drops = np.array([d["dropout"] for d in draws])
    assert drops.min() >= 0.1 and drops.max() < 0.6 and abs(np.median(drops) - 0.35) < 0.05
    sizes = [S.trial_plan(S.make_space({"batch_size": "1:3"}, None)[0], {}, 0, i)[0]
             ["batch_size"] for i in range(200)]
    assert set(sizes) == {1, 2, 3}  # integers, both ends included


def test_the_book_search_is_the_default():
    search, grid = S.make_space(None, None)
    assert grid == {}
    assert search == {"lr": {"low": 1e-6, "high": 1e-2, "scale": "log"},
                      "weight_decay": {"low": 1e-8, "high": 1e-4, "scale": "log"}}


# --- in this process ---------------------------------------------------------------------

def test_records_and_log(tmp_path, reference):
    log = tmp_path / "sweep.jsonl"
    seen = []
    trials = S.sweep(trials=6, search=SEARCH, seed=3, workers=1, log=log,
                     progress=lambda r, done, total: seen.append((r["trial"], done, total)),
                     **TINY)
    assert [r["trial"] for r in trials] == list(range(6))
    assert seen == [(i, i + 1, 6) for i in range(6)]
    written = lines(log)
    assert len(written) == 6 and {r["trial"] for r in written} == set(range(6))
    for r in written:
        for key in ("trial", "params", "seed", "status", "val_acc", "history", "seconds",
                    "worker"):
            assert key in r
        assert r["status"] == "ok" and 0 <= r["val_acc"] <= 1
        assert set(r["params"]) == {"lr", "weight_decay"}
        assert len(r["history"]["val_acc"]) == 2  # after each epoch
        assert r["history"]["val_acc"][-1] == r["val_acc"]
    same_results(written, reference)
    assert oct(log.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    best = trials.best
    assert best["val_acc"] == max(r["val_acc"] for r in trials)
    assert 0 <= best["test_acc"] <= 1  # the test set, for the best trial only
    assert trials.ranked()[0]["trial"] == best["trial"]


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_validation_split_is_the_book_fraction():
    x = np.arange(100, dtype=float).reshape(50, 2)
    t = np.arange(50) % 3
    xt, tt, xv, tv = S.split(x, t, 0.2, seed=1)
    assert xv.shape == (10, 2) and xt.shape == (40, 2)
    assert sorted(np.concatenate([xt[:, 0], xv[:, 0]])) == sorted(x[:, 0])
    assert np.array_equal(S.split(x, t, 0.2, seed=1)[2], xv)


def test_resume_runs_only_what_the_log_lacks(tmp_path, reference):
    log = tmp_path / "s.jsonl"
    S.sweep(trials=2, search=SEARCH, seed=3, workers=1, log=log, **TINY)
    ran = []
    trials = S.sweep(trials=6, search=SEARCH, seed=3, workers=1, log=log, resume=True,
                     progress=lambda r, done, total: ran.append(r["trial"]), **TINY)
    assert ran == [2, 3, 4, 5]
    same_results(lines(log), reference)
    same_results(list(trials), reference)
    # a log that exists is never overwritten without --resume
    before = log.read_bytes()
    with pytest.raises(ValueError, match="log: .*exists; pass resume=True"):
        S.sweep(trials=6, search=SEARCH, seed=3, workers=1, log=log, **TINY)
    assert log.read_bytes() == before


def test_a_torn_last_line_runs_that_trial_again(tmp_path, reference):
    log = tmp_path / "s.jsonl"
    S.sweep(trials=6, search=SEARCH, seed=3, workers=1, log=log, **TINY)
    text = log.read_text().splitlines(keepends=True)
    log.write_text("".join(text[:4]) + text[4][: len(text[4]) // 2])  # a crash mid-write
    ran = []
    S.sweep(trials=6, search=SEARCH, seed=3, workers=1, log=log, resume=True,
            progress=lambda r, done, total: ran.append(r["trial"]), **TINY)
    assert sorted(ran) == sorted({0, 1, 2, 3, 4, 5} - {r["trial"] for r in
                                                        map(json.loads, text[:4])})
    same_results(lines(log), reference)  # every line whole, each trial once


@pytest.mark.parametrize("content, message", [
    ("hello\n", "line 1 of .* is not JSON"),
    ('{"a": 1}\n', "line 1 of .* is not a fastnn sweep record"),
    ("just text, no newline", "is not JSON"),
])
def test_a_foreign_log_is_refused_and_kept(tmp_path, content, message):
    log = tmp_path / "s.jsonl"
    log.write_text(content)
    with pytest.raises(ValueError, match=message):
        S.sweep(trials=2, workers=1, log=log, resume=True, **TINY)
    assert log.read_text() == content


def test_a_log_of_another_sweep_is_refused_naming_what_differs(tmp_path):
    log = tmp_path / "s.jsonl"
    S.sweep(trials=1, search=SEARCH, seed=3, workers=1, log=log, **TINY)
    before = log.read_bytes()
    with pytest.raises(ValueError, match=r"other options \(epochs 2 in the log, 3 now\)"):
        S.sweep(trials=2, search=SEARCH, seed=3, workers=1, log=log, resume=True,
                **dict(TINY, epochs=3))
    with pytest.raises(ValueError, match=r"other options \(seed 3 in the log, 4 now\)"):
        S.sweep(trials=2, search=SEARCH, seed=4, workers=1, log=log, resume=True, **TINY)
    with pytest.raises(ValueError, match=r"search \[.*\] in the log"):
        S.sweep(trials=2, search={"lr": "0.01:0.6:log"}, seed=3, workers=1, log=log,
                resume=True, **TINY)
    assert log.read_bytes() == before


def test_a_diverging_trial_is_logged_as_diverged(tmp_path):
    log = tmp_path / "s.jsonl"
    trials = S.sweep(trials=2, grid={"weight_decay": [0.0, 1e6]}, workers=1, log=log,
                     **TINY)
    ok, diverged = trials
    assert ok["status"] == "ok"
    assert diverged["status"] == "diverged" and diverged["val_acc"] is None
    assert "diverged" in diverged["error"]
    assert [r["status"] for r in lines(log)] == ["ok", "diverged"]
    assert trials.best["trial"] == 0
    assert trials.ranked()[-1]["trial"] == 1


def test_a_failing_trial_is_logged_as_error_with_its_message(tmp_path):
    x = np.random.default_rng(0).normal(size=(60, 4))
    t = np.arange(60) % 3
    x[5, 1] = np.nan  # every trial's fit refuses it
    trials = S.sweep(x, t, trials=2, workers=1, log=tmp_path / "s.jsonl", **TINY)
    assert [r["status"] for r in trials] == ["error", "error"]
    assert "NaN" in trials[0]["error"] and trials.best is None
    assert len(lines(tmp_path / "s.jsonl")) == 2


def test_arrays_in_python(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 5))
    t = (x[:, 0] > 0).astype(int)
    trials = S.sweep(x, t, x_test=x[:50], t_test=t[:50], trials=3,
                     search={"lr": (0.05, 0.5, "log")}, workers=1, hidden=[8], epochs=5,
                     batch_size=16)
    assert len(trials) == 3 and trials.best["val_acc"] > 0.8
    assert "test_acc" in trials.best


def test_thread_settings_are_restored():
    import fastnn

    fastnn.set_num_threads(None)
    S.sweep(trials=1, workers=1, **TINY)
    assert fastnn.thread_policy() == "auto"


@pytest.mark.parametrize("kwargs, message", [
    (dict(search={"lr": "1:0.1"}), "search: lr: LOW must be below HIGH"),
    (dict(search={"lr": "0:1:log"}), "search: lr's LOW must be positive"),
    (dict(search={"lr": "-1:1"}), "search: lr's LOW must be positive"),
    (dict(search={"weight_decay": "0:1:log"}), "a log scale needs LOW > 0"),
    (dict(search={"depth": "1:2"}), "search: unknown hyperparameter 'depth'"),
    (dict(search=["lr"]), "search: expected NAME=LOW:HIGH"),
    (dict(search=["lr=1:2:3:4"]), "search: expected lr=LOW:HIGH"),
    (dict(search=["lr=0.1:1:cubic"]), "the scale must be log or uniform"),
    (dict(grid={"batch_size": [8, 8.5]}), "grid: batch-size's value must be an integer"),
    (dict(grid=["batch-size="]), "grid: expected batch-size=a,b,c"),
    (dict(grid={"momentum": [0.5, 1.5]}, optimizer="momentum"), "must be in \\[0, 1\\)"),
    (dict(search={"momentum": "0.1:0.9"}), "momentum needs optimizer momentum or nesterov"),
    (dict(search={"lr": "0.1:1"}, grid={"lr": [0.1]}), "search, grid: lr is in both"),
    (dict(trials=0), "trials: expected a positive integer"),
    (dict(workers=999), "workers: at most"),
    (dict(validation_fraction=1.0), "validation_fraction: expected a number between 0"),
    (dict(grid={"batch_size": [32, 5000]}), "grid: a batch size of 5000 is more than"),
    (dict(resume=True), "resume: needs a log"),
    (dict(log="/no/such/folder/s.jsonl"), "log: .*the folder /no/such/folder does not exist"),
])
def test_bad_options_fail_before_any_trial(kwargs, message):
    ran = []
    with pytest.raises(ValueError, match=message):
        S.sweep(**dict(dict(trials=2, workers=1, progress=lambda *a: ran.append(a), **TINY),
                       **kwargs))
    assert ran == []


# --- the command -------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--search", "lr=1:0.1"], "--search: lr: LOW must be below HIGH"),
    (["--search", "lr"], "--search: expected NAME=LOW:HIGH[:log]"),
    (["--search", "foo=1:2"], "--search: unknown hyperparameter 'foo'"),
    (["--search", "lr=0:1:log"], "--search: lr's LOW must be positive"),
    (["--grid", "batch-size=a,b"], "--grid: batch-size's value must be a number"),
    (["--trials", "0"], "argument --trials: expected a positive int"),
    (["--workers", "64"], "--workers: at most"),
    (["--validation-fraction", "0"], "--validation-fraction: expected a number between 0"),
    (["--log", "/no/such/folder/s.jsonl"], "--log: "),
    (["--workers", "1", "--scheduler", "tcp://127.0.0.1:1"],
     "argument --scheduler: not allowed with argument --workers"),
    (["--resume"], "--resume: needs a log"),
])
def test_bad_sweep_options_name_the_option(argv, message, capsys, tmp_path):
    rc, out, err = cli(["sweep", "--trials", "2", "--epochs", "1", "--workers", "1", *argv]
                       if "--trials" not in argv and "--workers" not in argv else
                       ["sweep", "--epochs", "1", *argv], capsys)
    assert rc == 2
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and out == ""


def test_sweep_command_in_process(tmp_path, capsys, reference):
    log = tmp_path / "s.jsonl"
    argv = ["sweep", "--trials", "6", "--seed", "3", "--workers", "1", "--hidden", "16",
            "--epochs", "2", "--batch-size", "32", "--log", str(log),
            "--search", "lr=0.01:0.5:log", "--search", "weight-decay=1e-6:1e-3:log"]
    rc, out, err = cli(argv + ["--save", str(tmp_path / "best.npz")], capsys)
    assert rc == 0, err
    same_results(lines(log), reference)
    table = out.splitlines()
    assert table[0].split()[:3] == ["rank", "trial", "val"]
    accs = [float(row.split()[2]) for row in table[1:7]]
    assert accs == sorted(accs, reverse=True)
    assert table[-1].startswith("best: trial ") and "test acc" in table[-1]
    assert err.count("] trial ") == 6  # a line per finished trial
    import fastnn

    net = fastnn.load(tmp_path / "best.npz")
    assert net.hidden_size_list == [16]
    rc, out, err = cli(argv + ["--resume", "--json"], capsys)
    result = json.loads(out)
    assert rc == 0 and len(result["trials"]) == 6 and result["best"]["test_acc"] > 0


def test_a_grid_alone_runs_each_point_once(capsys):
    rc, out, err = cli(["sweep", "--grid", "batch-size=16,32", "--grid", "lr=0.05,0.2",
                        "--workers", "1", "--hidden", "8", "--epochs", "1", "--json"], capsys)
    assert rc == 0, err
    trials = json.loads(out)["trials"]
    assert sorted((r["params"]["batch_size"], r["params"]["lr"]) for r in trials) == [
        (16, 0.05), (16, 0.2), (32, 0.05), (32, 0.2)]
    assert err == ""  # --json: nothing but the result


def test_sweep_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    rc, out, err = cli(["sweep", "--trials", "3", "--workers", "1", "--hidden", "8",
                        "--epochs", "2", "--plot", str(tmp_path / "s.png"), "--quiet"], capsys)
    assert rc == 0, err
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert err == ""


def test_the_warm_up_runs_one_short_trial_of_each_kind():
    """One warm-up trial per kind of trial the sweep plans (Dropout or not, weight decay
    or not, the compiled epoch loop or the step path), one epoch each, on a data sample
    of the largest batch; the warm-up option is checked like the others."""
    from fastnn.sweeps import warm

    book = S.prepare(trials=20, seed=0, workers=1, training=TINY)  # weight decay always on
    (one,) = warm.warm_trials(book)
    assert one["params"]["epochs"] == 1 and one["params"]["weight_decay"] > 0
    mixed = S.prepare(trials=8, seed=0, workers=1,
                      grid={"dropout": [0.2, 0.0], "batch_size": [16, 400]},
                      training=dict(hidden=[500], epochs=1, weight_decay=0.0))
    kinds = {warm.trial_kind(dict(mixed.base, **t["params"]), 64, 10)
             for t in warm.warm_trials(mixed)}  # (batch 400 of 64-500-10: 15 M madds)
    assert kinds == {(True, False, True), (True, False, False)}
    sample = warm.data_sample(mixed.data, warm.warm_trials(mixed), mixed.base)
    assert sample["x"].shape == (400, 64) and sample["x_val"].shape[0] == warm.SAMPLE_ROWS
    with pytest.raises(TypeError, match="warmup: expected True or False, got 'yes'"):
        S.sweep(trials=2, workers=1, warmup="yes", **TINY)


def test_a_failing_warm_up_is_logged_and_raises_nothing(caplog):
    import numba

    import fastnn
    from fastnn.sweeps import warm

    plan = S.prepare(trials=2, seed=0, workers=1, training=TINY)
    trials = warm.warm_trials(plan)
    bad = dict(warm.data_sample(plan.data, trials, plan.base))
    bad["t"] = -1 - bad["t"]  # labels out of range: the warm-up trial fails
    plugin = warm.WarmWorker("fastnn-warmup-test", bad, plan.base, trials)
    fastnn.set_num_threads(None)
    threads = numba.get_num_threads()
    with caplog.at_level("WARNING", logger="fastnn.sweeps"):
        report = plugin.warm()
    assert fastnn.thread_policy() == "auto" and numba.get_num_threads() == threads
    assert "t_train: class labels must lie in" in report["error"] and warm.warmed["fastnn-warmup-test"] is report
    assert "warm-up failed on this worker" in caplog.text


def test_without_distributed(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    with pytest.raises(ValueError, match=r"workers: .*pip install distributed \(from a fastnn checkout"):
        S.sweep(trials=2, workers=2, **TINY)
    rc, out, err = cli(["sweep", "--trials", "1", "--epochs", "1", "--hidden", "8",
                        "--scheduler", "tcp://127.0.0.1:1"], capsys)
    assert rc == 2 and "pip install distributed" in err
    assert len(S.sweep(trials=2, workers=1, **TINY)) == 2  # in this process: no Dask needed


# --- on Dask ---------------------------------------------------------------------------

needs_dask = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                reason="the optional distributed package is not installed")


def _popen(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, **kw)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    import distributed

    """A scheduler and two single-threaded worker processes on loopback, as
    `dask scheduler` / `dask worker ADDRESS` start them."""
    folder = tmp_path_factory.mktemp("cluster")
    scheduler_file = folder / "scheduler.json"
    procs = [_popen("distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                    "--no-dashboard", "--scheduler-file", str(scheduler_file))]
    try:
        for _ in range(300):
            if scheduler_file.exists() and scheduler_file.stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        for _ in range(2):
            procs.append(_popen("distributed.cli.dask_worker", address, "--nthreads", "1",
                                "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1"))
        client = distributed.Client(address, timeout=30)
        client.wait_for_workers(2, timeout=60)
        yield address, client
        client.close()
    finally:
        for p in procs[::-1]:
            p.send_signal(signal.SIGINT)
        for p in procs[::-1]:  # (a throwaway cluster: no need to wait for a graceful close)
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@needs_dask
def test_workers_times_threads_may_not_exceed_the_usable_cores(monkeypatch, capsys):
    """A local sweep's workers times its threads a trial stay within the usable cores:
    refused (naming threads / --threads) when given, fewer workers by default."""
    from fastnn.kernels import _threads

    from fastnn.sweeps import api

    monkeypatch.setattr(_threads, "usable_cores", lambda: 4)  # (a 4-core machine)
    with pytest.raises(ValueError, match="threads: 2 threads in each of 3 workers would "
                                         "ask for 6 cores; 4 are usable"):
        S.sweep(trials=2, workers=3, threads=2, **TINY)
    rc, out, err = cli(["sweep", "--trials", "2", "--epochs", "1", "--workers", "4",
                        "--threads", "2"], capsys)
    assert rc == 2 and "--threads: 2 threads in each of 4 workers" in err, err
    for threads, workers in ((1, 4), (2, 2), (3, 1), (4, 1), ("auto", 4)):
        assert api.prepare(trials=2, threads=threads, training=TINY).workers == workers
    assert api.prepare(trials=2, workers=2, threads=2, training=TINY).workers == 2


@needs_dask
def test_the_same_results_on_two_local_workers_and_on_a_cluster(cluster, reference):
    address, client = cluster
    local = S.sweep(trials=6, search=SEARCH, seed=3, workers=2, **TINY)
    same_results(list(local), reference)
    assert len({r["worker"] for r in local}) >= 1 and "local" not in {r["worker"] for r in local}
    remote = S.sweep(trials=6, search=SEARCH, seed=3, client=client, **TINY)
    same_results(list(remote), reference)
    assert {r["worker"] for r in remote} <= set(client.scheduler_info()["workers"])
    assert remote.best["test_acc"] == local.best["test_acc"]

    def blas_threads():  # (defined here: sent to the workers by value)
        import threadpoolctl

        import fastnn

        counts = {info["num_threads"] for info in threadpoolctl.threadpool_info()
                  if info["user_api"] == "blas"}
        return max(counts | {fastnn.get_num_threads()})

    # no oversubscription: BLAS ran single-threaded in the workers
    assert set(client.run(blas_threads).values()) == {1}
    # each worker was warmed before its first trial, and the plugin is gone afterwards
    name = warmed_name(trials=6, search=SEARCH, seed=3, client=client, **TINY)
    for report in warm_reports(client):
        assert report[name]["error"] is None and report[name]["trials"] == 1
    assert not any(name in plugins for plugins in plugin_names(client))


def warmed_name(**kwargs):
    """The name of the warm-up plugin a sweep with these options registers."""
    training = {k: kwargs.pop(k) for k in list(kwargs) if k in TINY}
    return f"fastnn-warmup-{S.prepare(**kwargs, training=training)._tag()}"


def warm_reports(client) -> list:
    """Each worker's warm-up reports ({plugin name: report})."""
    def reports():  # (defined here: sent to the workers by value)
        from fastnn.sweeps import warm

        return dict(warm.warmed)

    return list(client.run(reports).values())


def plugin_names(client) -> list:
    """The names of each worker's plugins."""
    return list(client.run(lambda dask_worker: list(dask_worker.plugins)).values())


@needs_dask
def test_a_failing_warm_up_changes_nothing_and_can_be_turned_off(cluster, reference,
                                                                   monkeypatch, capsys):
    address, client = cluster
    from fastnn.sweeps import warm

    real = warm.data_sample  # a warm-up whose trials fail on the workers (bad labels)
    monkeypatch.setattr(warm, "data_sample", lambda data, trials, base: dict(
        real(data, trials, base), t=-1 - real(data, trials, base)["t"]))
    trials = S.sweep(trials=6, search=SEARCH, seed=3, client=client, **TINY)
    same_results(list(trials), reference)
    name = warmed_name(trials=6, search=SEARCH, seed=3, client=client, **TINY)
    assert all(r[name]["error"] for r in warm_reports(client))
    monkeypatch.undo()
    quiet = dict(trials=2, seed=4, client=client, **TINY)
    S.sweep(warmup=False, **quiet)
    assert not any(warmed_name(**quiet) in r for r in warm_reports(client))
    rc, out, err = cli(["sweep", "--trials", "2", "--seed", "4", "--hidden", "16",
                        "--epochs", "2", "--no-warmup", "--scheduler", address, "--quiet"],
                       capsys)
    assert rc == 0, err


@needs_dask
def test_a_worker_killed_mid_sweep(cluster, tmp_path):
    address, client = cluster
    slow = dict(hidden=[64], epochs=40, batch_size=16)  # ~0.2-0.5 s a trial
    expected = list(S.sweep(trials=8, seed=5, workers=1, **slow))
    log = tmp_path / "s.jsonl"
    box = {}
    thread = threading.Thread(target=lambda: box.update(trials=S.sweep(
        trials=8, seed=5, client=client, log=log, **slow)))
    thread.start()
    while not (log.exists() and log.stat().st_size):
        time.sleep(0.02)
    pids = client.run(os.getpid)  # worker address -> its process
    victim = sorted(pids)[0]
    os.kill(pids[victim], signal.SIGKILL)  # its nanny starts a new one
    thread.join(timeout=120)
    assert not thread.is_alive()
    written = lines(log)
    assert sorted(r["trial"] for r in written) == list(range(8))  # each exactly once
    same_results(written, expected)
    client.wait_for_workers(2, timeout=60)


@needs_dask
def test_a_worker_that_joins_mid_sweep_is_warmed_first(cluster, tmp_path):
    """A worker that joins while a sweep runs gets the sweep's warm-up as it joins, before
    its first trial. (The two workers there are held busy until the newcomer has run a
    trial, so the sweep is sure to be running when it joins, and it takes trials.)"""
    import distributed

    address, client = cluster
    options = dict(trials=4, seed=6, **TINY)
    expected = list(S.sweep(workers=1, **options))
    hold = distributed.Event(f"hold-{tmp_path.name}", client=client)

    def busy(name):  # (defined here: sent to the workers by value)
        import distributed

        distributed.Event(name).wait(120)

    before = set(client.scheduler_info()["workers"])
    held = [client.submit(busy, hold.name, workers=[w], pure=False) for w in before]
    log = tmp_path / "s.jsonl"
    box = {}
    thread = threading.Thread(target=lambda: box.update(trials=S.sweep(
        client=client, log=log, **options)))
    thread.start()
    joiner = _popen("distributed.cli.dask_worker", address, "--nthreads", "1",
                    "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1")
    try:
        deadline = time.time() + 120
        while not (log.exists() and log.stat().st_size) and time.time() < deadline:
            time.sleep(0.05)
        hold.set()
        thread.join(timeout=120)
        assert not thread.is_alive()
        written = lines(log)
        same_results(written, expected)
        new = set(client.scheduler_info()["workers"]) - before
        assert len(new) == 1
        newcomer = new.pop()
        assert newcomer in {r["worker"] for r in written}  # it ran trials of the sweep

        def reports():  # (defined here: sent to the workers by value)
            from fastnn.sweeps import warm

            return dict(warm.warmed)

        name = warmed_name(client=client, **options)
        report = client.run(reports, workers=[newcomer])[newcomer][name]
        assert report["error"] is None and report["trials"] == 1
    finally:
        hold.set()
        distributed.wait(held, timeout=30)
        joiner.send_signal(signal.SIGINT)
        try:
            joiner.wait(timeout=10)
        except subprocess.TimeoutExpired:
            joiner.kill()
            joiner.wait()
        deadline = time.time() + 30
        while len(client.scheduler_info()["workers"]) > 2 and time.time() < deadline:
            time.sleep(0.1)


@needs_dask
def test_ctrl_c_then_resume(cluster, tmp_path, capsys):
    address, client = cluster
    log = tmp_path / "s.jsonl"
    # (trials of about 0.25 s: long enough that Ctrl-C lands while some are still running,
    # on a quiet machine too)
    argv = ["sweep", "--trials", "4", "--seed", "5", "--hidden", "64", "--epochs", "250",
            "--batch-size", "16", "--log", str(log)]
    proc = subprocess.Popen([sys.executable, "-m", "fastnn.cli", *argv,
                             "--scheduler", address], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_default)
    deadline = time.time() + 120
    while not (log.exists() and log.stat().st_size) and time.time() < deadline:
        time.sleep(0.02)
    sent = time.time()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert time.time() - sent < 10
    assert proc.returncode == 130, err
    assert "--resume" in err
    first = lines(log)  # every line whole
    assert 1 <= len(first) < 4
    rc, out, err = cli(argv + ["--resume", "--workers", "1"], capsys)
    assert rc == 0, err
    written = lines(log)
    assert sorted(r["trial"] for r in written) == list(range(4))
    expected = S.sweep(trials=4, seed=5, workers=1, hidden=[64], epochs=250, batch_size=16)
    same_results(written, list(expected))


@needs_dask
def test_an_unreachable_scheduler_is_one_line(capsys):
    t0 = time.time()
    rc, out, err = cli(["sweep", "--trials", "1", "--epochs", "1", "--hidden", "8",
                        "--scheduler", "tcp://127.0.0.1:9", "--timeout", "1"], capsys)
    assert rc == 2 and time.time() - t0 < 15
    assert err.startswith("fastnn: error: --scheduler: cannot reach tcp://127.0.0.1:9")
    assert len(err.strip().splitlines()) == 1

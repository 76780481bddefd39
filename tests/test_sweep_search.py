"""Sweeps that learn: `--sampler tpe` (Optuna's TPE, asked and told in the client) and
`--prune median|asha`, reproducible in this process, on a LocalCluster and on a cluster
reached by address; resume; the log's options; bad input.

Optuna is in the dev extra (`search`); the Dask tests need `distributed` (also in dev).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from test_sweep import TINY, by_trial, cli, cluster, lines, needs_dask, same_results  # noqa: F401

from fastnn import sweeps as S
from fastnn.sweeps import search as L

pytest.importorskip("optuna")

SPACE = {"lr": "0.005:1:log"}
LEARN = dict(TINY, epochs=3)  # digits, one hidden layer of 16, batch 32: ms a trial
# 14 trials: rounds of 4; TPE models the results from trial 10 on (after 10 random ones)
TPE_ASHA = dict(trials=14, search=SPACE, seed=2, sampler="tpe", prune="asha", **LEARN)


@pytest.fixture(scope="module")
def tpe_asha():
    """The reference: a tpe + asha sweep in this process."""
    return S.sweep(workers=1, **TPE_ASHA)


# --- the rules, on made-up curves -----------------------------------------------------------

def _record(i, accs, status="ok"):
    return {"trial": i, "status": status, "history": {"val_acc": list(accs),
                                                     "val_loss": [1 - a for a in accs]}}


def test_median_thresholds_use_finished_trials_at_each_epoch():
    earlier = [_record(0, [0.1, 0.2, 0.3]), _record(1, [0.2, 0.4, 0.6]),
               _record(2, [0.3, 0.6, 0.9]), _record(3, [0.4, 0.8]),  # a 2-epoch trial
               _record(4, [0.9], status="pruned")]  # not finished: not counted
    limits = L.thresholds("median", earlier, False, 3)
    assert limits[:2] == [pytest.approx(0.25), pytest.approx(0.5)]
    assert limits[2] is None  # 3 finished trials reached epoch 3: fewer than 4
    loss = L.thresholds("median", earlier, True, 3)  # regression: minus the loss
    assert loss[:2] == [pytest.approx(-0.75), pytest.approx(-0.5)]


def test_asha_thresholds_keep_the_best_third_of_a_rung():
    assert L.asha_rungs(10) == [1, 3, 9] and L.asha_rungs(3) == [1] and L.asha_rungs(1) == []
    earlier = [_record(i, [a] * 4, status="pruned" if i == 5 else "ok")
               for i, a in enumerate([0.1, 0.5, 0.3, 0.9, 0.7, 0.2])]
    limits = L.thresholds("asha", earlier, False, 4)
    # 6 earlier values + the trial's own: the best 7 // 3 = 2 go on: beat the 2nd best
    assert limits == [0.7, None, 0.7, None]
    assert L.thresholds("asha", earlier[:1], False, 4)[0] == 0.1  # first comers: the best
    assert L.thresholds("asha", [], False, 4) == [None] * 4


def test_the_stopper_never_stops_at_the_last_epoch():
    class H:
        test_acc, test_loss = [], []

    stop = L.Stopper({"rule": "median", "regression": False, "epochs": 3,
                      "thresholds": [0.5, 0.5, 0.9]})
    H.test_acc = [0.6]
    assert not stop(H)
    H.test_acc = [0.6, 0.4]  # the best so far (0.6) counts for the median rule
    assert not stop(H)
    H.test_acc = [0.6, 0.4, 0.1]
    assert not stop(H) and stop.stopped_at is None  # the last epoch: nothing to save
    asha = L.Stopper({"rule": "asha", "regression": False, "epochs": 3,
                      "thresholds": [None, 0.5, None]})
    H.test_acc = [0.6, 0.4]
    assert asha(H) and asha.stopped_at == 2  # the value at the rung counts for asha


# --- in this process ------------------------------------------------------------------------

def test_tpe_is_deterministic_and_learns_from_the_trials(tpe_asha):
    again = S.sweep(workers=1, **TPE_ASHA)
    same_results(list(again), list(tpe_asha))
    assert again.best["test_acc"] == tpe_asha.best["test_acc"]
    assert [r["trial"] for r in tpe_asha] == list(range(14))
    for r in tpe_asha:
        assert 0.005 <= r["params"]["lr"] <= 1 and set(r["params"]) == {"lr"}
    # not the random search's draws, and another seed asks other values
    random = [S.trial_plan(*S.make_space(SPACE, None), 2, i)[0] for i in range(14)]
    assert [r["params"] for r in tpe_asha] != random
    other = S.sweep(workers=1, **dict(TPE_ASHA, seed=3, trials=4))
    assert [r["params"] for r in other] != [r["params"] for r in tpe_asha[:4]]


def test_pruned_trials_stop_early_with_their_curve(tpe_asha):
    pruned = [r for r in tpe_asha if r["status"] == "pruned"]
    assert pruned, "asha pruned nothing: the test does not test pruning"
    first_round = [r for r in tpe_asha if r["trial"] < 4]
    assert all(r["status"] == "ok" for r in first_round)  # nothing earlier to compare with
    for r in pruned:
        assert r["trial"] >= 4 and r["pruned_at"] in (1,)  # the rungs below 3 epochs: 1
        assert len(r["history"]["val_acc"]) == r["pruned_at"] < r["epochs_planned"] == 3
        assert r["val_acc"] == r["history"]["val_acc"][-1]
    for r in tpe_asha:
        if r["status"] == "ok":
            assert len(r["history"]["val_acc"]) == 3
    assert tpe_asha.best["status"] == "ok"
    summary = L.pruning_summary(tpe_asha)
    assert summary["pruned"] == len(pruned) and summary["planned_epochs"] == 42
    assert summary["saved_epochs"] == summary["planned_epochs"] - summary["trained_epochs"] > 0


def test_pruning_leaves_the_other_trials_bit_for_bit():
    """A trial that is not stopped trains exactly as without a pruner (the callback only
    reads the history), so a pruned sweep's finished trials equal the unpruned ones."""
    kw = dict(trials=10, search=SPACE, seed=4, workers=1, **LEARN)
    plain = by_trial(S.sweep(**kw))
    median = S.sweep(prune="median", round_size=3, **kw)
    finished = [r for r in median if r["status"] == "ok"]
    assert any(r["status"] == "pruned" for r in median) and finished
    for r in median:
        assert r["params"] == plain[r["trial"]]["params"]
        if r["status"] == "ok":
            assert r["history"] == plain[r["trial"]]["history"]
        else:
            n = r["pruned_at"]
            assert r["history"]["val_acc"] == plain[r["trial"]]["history"]["val_acc"][:n]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_both_backends_prune_and_repeat(backend):
    kw = dict(trials=8, search=SPACE, seed=5, workers=1, sampler="tpe", prune="median",
              round_size=2, backend=backend, **LEARN)
    first, again = S.sweep(**kw), S.sweep(**kw)
    same_results(list(first), list(again))
    assert any(r["status"] == "pruned" for r in first)
    assert all(r["status"] in ("ok", "pruned") for r in first)


def test_regression_is_pruned_and_told_by_its_validation_loss():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    t = (x @ np.array([[1.0], [-2.0], [0.5]])) + 0.1 * rng.normal(size=(200, 1))
    trials = S.sweep(x, t, trials=10, search={"lr": "1e-4:0.05:log"}, seed=1, workers=1,
                     sampler="tpe", prune="median", round_size=3, loss="mse", hidden=[8],
                     epochs=4, batch_size=16)
    assert trials.regression
    pruned = [r for r in trials if r["status"] == "pruned"]
    finished = [r for r in trials if r["status"] == "ok"]
    assert pruned and finished
    for r in pruned:  # stopped with a worse best-so-far loss than the median then
        assert r["val_loss"] == r["history"]["val_loss"][-1] and r["val_acc"] is None
    assert trials.best["val_loss"] == min(r["val_loss"] for r in finished)


def test_resume_gives_the_uninterrupted_result(tmp_path, tpe_asha):
    log = tmp_path / "s.jsonl"
    S.sweep(workers=1, log=log, **TPE_ASHA)
    whole = log.read_text().splitlines(keepends=True)
    assert all(json.loads(line)["sweep"]["sampler"] == "tpe" for line in whole)
    assert json.loads(whole[0])["sweep"]["prune"] == "asha"
    assert json.loads(whole[0])["sweep"]["round_size"] == 4
    log.write_text("".join(whole[:6]))  # cut in the middle of the second round
    seen = []
    resumed = S.sweep(workers=1, log=log, resume=True,
                      progress=lambda r, *_: seen.append(r["trial"]), **TPE_ASHA)
    assert seen == list(range(6, 14))  # only what the log lacked
    same_results(list(resumed), list(tpe_asha))
    same_results(lines(log), list(tpe_asha))
    assert resumed.best["trial"] == tpe_asha.best["trial"]


def test_a_log_of_another_sampler_or_pruner_is_refused_by_name(tmp_path):
    log = tmp_path / "s.jsonl"
    small = dict(trials=2, search=SPACE, workers=1, log=log, **LEARN)
    S.sweep(sampler="tpe", **small)
    before = log.read_bytes()
    with pytest.raises(S.SweepError, match=r"^sampler: .* --sampler tpe and this one has "
                                           r"random"):
        S.sweep(resume=True, **small)
    with pytest.raises(S.SweepError, match=r"^prune: .* --prune none and this one has asha"):
        S.sweep(resume=True, sampler="tpe", prune="asha", **small)
    with pytest.raises(S.SweepError, match=r"^round_size: .* --round-size 4 and this one "
                                           r"has 2"):
        S.sweep(resume=True, sampler="tpe", round_size=2, **small)
    assert log.read_bytes() == before
    # the book's random search keeps its log as it was: no sampler written
    plain = tmp_path / "plain.jsonl"
    S.sweep(**dict(small, log=plain))
    assert "sampler" not in lines(plain)[0]["sweep"]


# --- the command ----------------------------------------------------------------------------

BASE = ["sweep", "--workers", "1", "--hidden", "16", "--batch-size", "32"]


@pytest.mark.parametrize("argv, message", [
    (["--sampler", "tpe", "--grid", "batch-size=16,32", "--epochs", "2"],
     "--sampler: tpe draws every value itself and cannot take --grid"),
    (["--sampler", "grid", "--epochs", "2"], "--sampler: grid needs --grid"),
    (["--sampler", "grid", "--grid", "lr=0.1,0.2", "--search", "weight-decay=1e-6:1e-3",
      "--epochs", "2"], "--sampler: grid takes grid points only"),
    (["--prune", "median", "--iters", "50"], "--prune: needs epochs to prune over"),
    (["--prune", "asha", "--epochs", "1"], "--prune: needs at least 2 epochs"),
    (["--prune", "asha", "--epochs", "3", "--eval-every", "10"],
     "--prune: decides after every epoch"),
    (["--round-size", "2", "--epochs", "2"], "--round-size: only for --sampler tpe or --prune"),
    (["--sampler", "bayes"], "argument --sampler: invalid choice: 'bayes'"),
])
def test_bad_input_is_one_line_naming_the_option(argv, message, capsys, tmp_path):
    log = tmp_path / "s.jsonl"
    rc, out, err = cli(BASE + ["--log", str(log), *argv], capsys)
    assert rc == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not log.exists()  # before any trial ran


def test_tpe_without_optuna_says_what_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna fails
    rc, out, err = cli(BASE + ["--sampler", "tpe", "--epochs", "2", "--log",
                               str(tmp_path / "s.jsonl")], capsys)
    assert rc == 2 and out == ""
    assert err.strip() == ('fastnn: error: --sampler: tpe needs Optuna, which is not '
                           'installed: pip install optuna (in a fastnn checkout: pip install '
                           '".[search]")')
    assert not (tmp_path / "s.jsonl").exists()


def test_resume_with_another_sampler_names_the_option(tmp_path, capsys):
    log = tmp_path / "s.jsonl"
    argv = BASE + ["--trials", "2", "--epochs", "2", "--log", str(log), "--quiet"]
    assert cli(argv + ["--sampler", "tpe"], capsys)[0] == 0
    rc, out, err = cli(argv + ["--resume"], capsys)
    assert rc == 2 and err.startswith(f"fastnn: error: --sampler: {log} was written by a "
                                      f"sweep with --sampler tpe"), err


def test_the_table_says_what_pruning_saved_and_the_plot_marks_it(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    picture = tmp_path / "s.png"
    rc, out, err = cli(BASE + ["--trials", "8", "--epochs", "3", "--search",
                               "lr=0.005:1:log", "--prune", "asha", "--seed", "2",
                               "--plot", str(picture)], capsys)
    assert rc == 0, err
    last = out.strip().splitlines()[-1]
    assert last.startswith("pruning: ") and "trials stopped early" in last
    pruned = int(last.split()[1])
    assert pruned > 0 and f"{24 - pruned * 2} of 24 epochs trained" in last
    assert err.count("pruned after epoch 1") == pruned
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_marks_pruned_trials(tmp_path, tpe_asha, monkeypatch):
    """The scatter of the searched values gets a red x per pruned trial."""
    pytest.importorskip("matplotlib")
    from matplotlib.axes import Axes

    from fastnn.plot import plot_sweep

    calls = []
    original = Axes.scatter

    def spy(self, *args, **kw):
        calls.append((len(args[0]), kw.get("marker"), kw.get("label")))
        return original(self, *args, **kw)

    monkeypatch.setattr(Axes, "scatter", spy)
    plot_sweep(tpe_asha, tmp_path / "s.svg")
    n_pruned = sum(r["status"] == "pruned" for r in tpe_asha)
    assert (n_pruned, "x", f"pruned ({n_pruned})") in calls
    assert (14 - n_pruned, None, "finished") in calls


# --- on Dask --------------------------------------------------------------------------------

@needs_dask
def test_the_same_trials_on_a_local_cluster_and_on_a_cluster(cluster, tpe_asha):  # noqa: F811
    """Rounds are asked before they start and told in trial order: which worker finished
    first changes nothing."""
    address, client = cluster
    local = S.sweep(workers=2, **TPE_ASHA)
    same_results(list(local), list(tpe_asha))
    remote = S.sweep(client=client, **TPE_ASHA)
    same_results(list(remote), list(tpe_asha))
    assert {r["worker"] for r in remote} <= set(client.scheduler_info()["workers"])
    assert remote.best["test_acc"] == local.best["test_acc"] == tpe_asha.best["test_acc"]
    assert np.isfinite(remote.best["val_acc"])

"""The asv dashboard tooling's logic: the timer's statistic, the honesty verdict, the
command's argument checks and the offline error page (no asv run: that is CI's
``dashboard_honesty.py --short``)."""

import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import dashboard, dashboard_honesty, offline_dashboard, timing

    return dashboard, dashboard_honesty, offline_dashboard, timing


def test_best_blocks_keeps_the_fastest_block_not_the_disturbed_ones(bench):
    *_, timing = bench
    calls = {"n": 0}

    def sometimes_slow():  # every third call is disturbed by 20 ms, as by another process
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            timing.time.sleep(0.02)

    best = timing.best_blocks({"case": sometimes_slow}, rounds=9, block=1e-4)
    assert best["case"] < 0.01  # a mean or median would be near 20 ms / 3 or 20 ms


def test_in_turns_pauses_between_cases_and_runs_each_in_a_turn_of_its_own(bench,
                                                                          monkeypatch):
    *_, timing = bench
    log = []  # each call's case, and each pause (its length)
    cases = {name: (lambda name=name: log.append(name)) for name in ("a", "b")}
    clock = types.SimpleNamespace(perf_counter=timing.time.perf_counter,
                                  sleep=lambda seconds: log.append(seconds))
    monkeypatch.setattr(timing, "time", clock)  # (this module's clock only)
    r = timing.in_turns(cases, rounds=4, turn=2e-3, settle=0.05,
                        statistic=lambda v: len(v))
    log = log[6:]  # calls_per's two warm-up calls and one sizing call per case
    assert log[0] == 0.05
    pauses = [i for i, entry in enumerate(log) if entry == 0.05]
    turns = [log[i + 1:j] for i, j in zip(pauses, [*pauses[1:], len(log)])]
    assert len(turns) == 4 * 2  # one turn per case per round, each after a pause
    assert all(turn and len(set(turn)) == 1 for turn in turns)  # one case a turn
    assert [turn[0] for turn in turns] == list("abbaabba")  # the order rotates
    assert r["a"] == log.count("a") and r["b"] == log.count("b")  # every call counted


def test_honesty_verdict(bench):
    _, honesty, *_ = bench
    same, planted = ["a0", "a1", "a2"], "p"
    sgd = honesty.PLANTED + "'float32')"
    assert honesty.judge([(sgd, "p", 1.0, 1.3)], same, planted) == []
    wrong = honesty.judge([(sgd, "a1", 1.0, 1.3)], same, planted)
    assert len(wrong) == 1 and "unchanged commit a1" in wrong[0]
    other = "bench_kernels.AffineReluForward.track_seconds('numba', 32, 'float32')"
    wrong = honesty.judge([(other, "p", 1.0, 1.3)], same, planted)
    assert len(wrong) == 1 and "does not touch" in wrong[0]
    assert "after the plant" in honesty.judge([(sgd, "q", 1.0, 1.3)], same, planted)[0]


def test_the_planted_line_is_in_the_kernel_it_slows(bench):
    _, honesty, *_ = bench
    assert (ROOT / honesty.PLANT_FILE).read_text().count(honesty.PLANT_AT) == 1


@pytest.mark.parametrize("argv, message", [
    (["--last", "0"], "--last: expected at least 1 commit, got 0"),
    (["--last", "five"], "--last: expected a whole number of commits, got 'five'"),
    (["--port", "70000"], "--port: expected a port in 0..65535, got 70000"),
])
def test_dashboard_rejects_bad_options_before_running_anything(bench, argv, message, capsys):
    dashboard, *_ = bench
    with pytest.raises(SystemExit) as exit_info:
        dashboard.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_publish_writes_an_error_page_that_says_what_to_run(bench, tmp_path):
    *_, offline, _ = bench
    pytest.importorskip("asv")
    conf = type("Conf", (), {"html_dir": str(tmp_path)})()
    offline.OfflineNotice.publish(conf, None, None, None, None)
    page = (tmp_path / "error.html").read_text()
    assert f"python benchmarks/offline_dashboard.py {tmp_path}" in page
    assert "python benchmarks/dashboard.py --last 5" in page


def test_offline_notice_is_an_asv_plugin_in_the_config(bench):
    dashboard, *_ = bench
    conf = dashboard.read_config(ROOT / "asv.conf.json")
    assert ".benchmarks.offline_dashboard" in conf["plugins"]
    assert conf["matrix"]["env_nobuild"]["NUMBA_NUM_THREADS"] == ["1"]
    assert sys.modules["benchmarks.offline_dashboard"].OfflineNotice.order > 3

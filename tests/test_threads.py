"""The BLAS thread policy: automatic by size (reproducible), or forced; bad counts refused."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from fastnn.kernels import _threads

import fastnn
from fastnn.cli import main

CORES = _threads.usable_cores()


@pytest.fixture(autouse=True)
def auto_policy_after():
    yield
    fastnn.set_num_threads(None)


def test_auto_is_the_default_and_can_be_restored():
    assert fastnn.thread_policy() == "auto"
    fastnn.set_num_threads(1)
    assert fastnn.thread_policy() == 1 and fastnn.get_num_threads() == 1
    fastnn.set_num_threads("auto")
    assert fastnn.thread_policy() == "auto"
    fastnn.set_num_threads(1)
    fastnn.set_num_threads(None)
    assert fastnn.thread_policy() == "auto"


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-1, ValueError), (CORES + 1, ValueError),
                                      (1.5, TypeError), ("two", TypeError), (True, TypeError)])
def test_bad_thread_counts_are_refused_and_change_nothing(bad, exc):
    fastnn.set_num_threads(1)
    with pytest.raises(exc, match="n: "):
        fastnn.set_num_threads(bad)
    assert fastnn.thread_policy() == 1


def test_the_automatic_choice_follows_the_size_of_the_work():
    assert _threads.threads_for(_threads.AUTO_WORK - 1) == 1
    assert _threads.threads_for(_threads.AUTO_WORK) == CORES
    net = fastnn.Sequential(64, [1024, 1024], 10, seed=0)  # 1,124,352 madds per row
    x = np.random.default_rng(0).random((600, 64))
    net.train_step(x[:8], np.arange(8) % 10, fastnn.SGD(0.01))  # 9 M madds
    assert fastnn.get_num_threads() == 1
    net.predict(x)  # 512-row passes: 576 M madds
    assert fastnn.get_num_threads() == CORES
    fastnn.set_num_threads(1)
    net.predict(x)
    assert fastnn.get_num_threads() == 1  # forced stays forced


def test_the_same_seed_gives_the_same_bits_whatever_the_load(digits):
    """Large batches run on all cores, small ones on one, by size alone: a busy core
    beside the run changes its speed, not its numbers."""
    (x, t), _ = digits

    def run():
        net = fastnn.Sequential(64, [128, 128], 10, "he", seed=0)
        fastnn.fit(net, x, t, batch_size=700, epochs=2, seed=0, progress=False)
        fastnn.fit(net, x, t, batch_size=16, epochs=1, seed=1, progress=False)
        return net.params.flat.copy()

    quiet = run()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        loaded = run()
    finally:
        busy.kill()
        busy.wait()
    np.testing.assert_array_equal(quiet, loaded)


def test_cli_threads_option(capsys):
    assert main(["train", "--epochs", "1", "--quiet", "--threads", "auto"]) == 0
    assert main(["train", "--epochs", "1", "--quiet", "--threads", "1"]) == 0
    capsys.readouterr()
    for bad in ("0", str(CORES + 1), "1.5", "many"):
        assert main(["train", "--epochs", "1", "--threads", bad]) == 2
        err = capsys.readouterr().err
        assert "argument --threads:" in err and len(err.strip().splitlines()) == 1


def test_a_run_much_slower_than_the_machines_best_is_noted(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path))
    assert main(["train", "--epochs", "3", "--quiet", "--json"]) == 0
    record = json.loads((tmp_path / "speeds.json").read_text())
    (key, best), = record.items()
    assert best["seconds_per_iter"] > 0
    record[key]["seconds_per_iter"] = best["seconds_per_iter"] / 100  # a much faster past
    (tmp_path / "speeds.json").write_text(json.dumps(record))
    capsys.readouterr()
    assert main(["train", "--epochs", "3", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("note: this run took") == 1 and "BLAS thread" in err
    (tmp_path / "speeds.json").write_text("not json")  # a damaged record is replaced
    assert main(["train", "--epochs", "3", "--quiet"]) == 0
    assert isinstance(json.loads((tmp_path / "speeds.json").read_text()), dict)

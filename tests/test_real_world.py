"""Hostile deployments (issue 23): what a run keeps when the world around it fails."""

import errno
import os
import subprocess
import sys

import numpy as np
import pytest
from test_datasets import fake_set

import fastnn
from fastnn import datasets, serialize
from fastnn._signals import Terminated
from fastnn.cli import main

# --- kind 2: the model is saved before anything optional; a failed save is named ---------


TRAIN = ["train", "--epochs", "3", "--quiet"]  # (digits: 72 iterations, the note's minimum 50)


def _speeds_key(tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("FASTNN_DATA", str(tmp_path))
    assert main(TRAIN) == 0
    (key,) = json.loads((tmp_path / "speeds.json").read_text())
    return key


@pytest.mark.parametrize("entry", [0.0, None, "fast", -1.0, True, [1], {"seconds_per_iter": 0.0},
                                   {"seconds_per_iter": None}, {"seconds_per_iter": "1e-5"},
                                   {"seconds_per_iter": -1e-5}, {"seconds_per_iter": True},
                                   {"seconds_per_iter": 1e-300}])
def test_a_malformed_speed_record_never_fails_the_run(entry, tmp_path, monkeypatch, capsys):
    import json

    key = _speeds_key(tmp_path, monkeypatch)
    (tmp_path / "speeds.json").write_text(json.dumps({key: entry}))
    assert main([*TRAIN, "--save", str(tmp_path / "m.npz")]) == 0
    assert (tmp_path / "m.npz").is_file()
    record = json.loads((tmp_path / "speeds.json").read_text())[key]
    if entry != {"seconds_per_iter": 1e-300}:  # (a valid, unbeatable record stays)
        assert 0 < record["seconds_per_iter"] < 1
    assert "Traceback" not in capsys.readouterr().err


def test_no_home_folder_the_model_is_still_saved(tmp_path, monkeypatch):
    """``docker run --user 12345``: HOME unset, no passwd entry, Path.home() raises."""
    from pathlib import Path

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv("FASTNN_DATA", raising=False)
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    assert main([*TRAIN, "--save", str(tmp_path / "m.npz")]) == 0
    assert (tmp_path / "m.npz").is_file()


def test_a_failed_save_names_the_path_and_keeps_the_previous_file(tmp_path, monkeypatch,
                                                                    capsys):
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "cache"))
    target = tmp_path / "m.npz"
    target.write_bytes(b"the previous model")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert main([*TRAIN, "--save", str(target)]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("train acc ")  # the summary still printed
    assert err.strip() == (f"fastnn: error: {target}: not saved: No space left on device; "
                           "the previous file is unchanged")
    assert target.read_bytes() == b"the previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "m.npz"]


def test_the_model_is_saved_before_the_optional_features_run(tmp_path, monkeypatch):
    import fastnn.cli as cli

    saved = []

    def speed_note(summary):
        saved.append((tmp_path / "m.npz").is_file())
        raise ZeroDivisionError("a bug in an optional feature")

    monkeypatch.setattr(cli, "speed_note", speed_note)
    assert main([*TRAIN, "--save", str(tmp_path / "m.npz")]) == 0
    assert saved == [True]


# --- kind 3: only provably own temporaries are cleaned; SIGTERM leaves none ---------------

def test_only_this_machines_temporaries_of_dead_processes_are_removed(tmp_path):
    dead = 4194305  # (above Linux's largest pid: no such process)
    own = serialize._TAG
    names = {
        f".m.npz.{own}-{dead}.a1.tmp": False,  # ours, its process gone: removed
        f".m.npz.{own}-{os.getppid()}.a2.tmp": True,  # ours, alive
        f".m.npz.0123456789ab-{dead}.a3.tmp": True,  # another container's / host's
        f".m.npz.{dead}.a4.tmp": True,  # an older fastnn's: not provably ours
        f".m.npz.{own}-x{dead}.a5.tmp": True,  # not a pid
        f".n.npz.{own}-{dead}.a6.tmp": True,  # another file's
    }
    for name in names:
        (tmp_path / name).write_text("in progress")
    serialize.atomic_write(tmp_path / "m.npz", lambda f: f.write(b"new"))
    assert (tmp_path / "m.npz").read_bytes() == b"new"
    for name, kept in names.items():
        assert (tmp_path / name).exists() == kept, name


def test_tags_differ_between_pid_namespaces_and_machines(monkeypatch):
    real_stat = os.stat

    class Other:
        st_ino = 1

    monkeypatch.setattr(os, "stat", lambda p, *a, **k: Other() if p == "/proc/self/ns/pid"
                        else real_stat(p, *a, **k))
    assert serialize._machine_tag() != serialize._TAG


def test_sigterm_during_a_save_leaves_no_temporary(tmp_path):
    import signal

    target = tmp_path / "m.npz"
    target.write_bytes(b"previous")

    def write(f):
        f.write(b"x" * 1000)
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # (the handler runs between bytecodes)
            f.write(b"y")

    with pytest.raises(Terminated):
        serialize.atomic_write(target, write)
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]
    assert target.read_bytes() == b"previous"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


# --- kind 8: SIGTERM stops `fastnn train` like Ctrl-C, in one line --------------------------

def test_sigterm_stops_training_cleanly_in_one_line(tmp_path):
    import signal
    import time

    cmd = [sys.executable, "-m", "fastnn.cli", "train", "--epochs", "100000",
           "--save", str(tmp_path / "m.npz")]
    env = {**os.environ, "FASTNN_DATA": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    env.pop("NUMBA_DISABLE_JIT", None)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=tmp_path)
    try:
        os.set_blocking(proc.stderr.fileno(), False)
        seen, deadline = b"", time.time() + 300
        while b"it/s" not in seen and b"s/it" not in seen and time.time() < deadline:
            time.sleep(0.2)
            seen += proc.stderr.read() or b""
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    err = (seen + (err or b"")).decode()
    assert proc.returncode == 143, err
    assert err.endswith("\n") and err.splitlines()[-1].startswith("fastnn: stopped by SIGTERM")
    assert "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# --- kind 7: bounded and clear at the edges ---------------------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["--iters", "100000000000000000000"], "--iters: at most 1,000,000,000,000 iterations"),
    (["--epochs", "100000000000000000000"], "--epochs: at most 1,000,000,000,000 iterations"),
])
def test_absurd_run_lengths_are_refused_up_front(argv, message, capsys):
    assert main(["train", *argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_fit_refuses_absurd_lengths_before_training():
    net = fastnn.Sequential(2, [2], 2, seed=0)
    before = net.params.flat.copy()
    with pytest.raises(ValueError, match="iters: at most"):
        fastnn.fit(net, np.ones((4, 2)), np.array([0, 1, 0, 1]), batch_size=2, iters=10**13,
                   progress=False)
    np.testing.assert_array_equal(net.params.flat, before)


@pytest.mark.parametrize("case, lr_advice", [
    ("huge input", False), ("huge init", False), ("huge weight decay", False),
    ("huge learning rate", True)])
def test_divergence_advice_names_the_real_cause(case, lr_advice):
    """"Try a smaller learning rate" was advised at lr 1e-12 when the input overflowed."""
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((32, 3)), np.arange(32) % 2
    kw, lr = {}, 1e-12
    if case == "huge input":
        x = x * 1e300
    elif case == "huge init":
        kw["weight_init_std"] = 1e200
    elif case == "huge weight decay":
        kw["weight_decay_lambda"], lr = 1e300, 1e-3
    else:
        lr = 1e200
    net = fastnn.Sequential(3, [4], 2, seed=0, **kw)
    with pytest.raises(fastnn.TrainingDiverged) as info:
        fastnn.fit(net, x, t, optimizer=fastnn.SGD(lr), batch_size=4, iters=50,
                   progress=False)
    message = str(info.value)
    assert ("Try a smaller learning rate" in message) == lr_advice, message
    assert ("the input, the weight init or the weight decay overflow" in message) != lr_advice


@pytest.mark.parametrize("version, message", [
    ("2", "not a model file fastnn wrote"), (-1, "not a model file fastnn wrote"),
    (True, "not a model file fastnn wrote"), (1.5, "not a model file fastnn wrote"),
    (None, "not a model file fastnn wrote"), (10**6, "written by a newer fastnn")])
def test_a_malformed_model_version_is_not_called_newer(version, message, tmp_path):
    path = tmp_path / "m.npz"
    fastnn.Sequential(2, [2], 2, seed=0).save(path)
    meta, arrays = serialize.read_model(path)
    meta["version"] = version
    serialize.write_model(path, meta, arrays)
    with pytest.raises(ValueError, match=message):
        fastnn.load(path)


# --- kind 9: IDX files changed while they are read ------------------------------------------


def _as_arrays(loaded):
    (x, t), (xt, tt) = loaded
    return x, t, xt, tt


def test_a_set_replaced_while_it_is_read_is_read_again(tmp_path, monkeypatch):
    fake_set(tmp_path, seed=0)
    real, calls = datasets._read_file, []

    def read_file(path):
        calls.append(path)
        if len(calls) == 2:  # between the first file and the rest: a new version lands
            fake_set(tmp_path, seed=1)
        return real(path)

    monkeypatch.setattr(datasets, "_read_file", read_file)
    got = _as_arrays(datasets.load_mnist(data_dir=tmp_path, download=False))
    monkeypatch.setattr(datasets, "_read_file", real)
    expected = _as_arrays(datasets.load_mnist(data_dir=tmp_path, download=False))
    assert len(calls) == 8  # read twice
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def test_a_set_that_keeps_changing_is_refused_naming_the_file(tmp_path, monkeypatch):
    fake_set(tmp_path, seed=0)
    real, calls = datasets._read_file, []
    labels = tmp_path / datasets._FILES["mnist"]["test_labels"][0]

    def read_file(path):
        calls.append(path)
        os.utime(labels, ns=(len(calls), len(calls)))  # touched during every read
        return real(path)

    monkeypatch.setattr(datasets, "_read_file", read_file)
    with pytest.raises(datasets.DatasetError, match=rf"{labels}: changed while being read"):
        datasets.load_mnist(data_dir=tmp_path, download=False)
    assert len(calls) == 4 * datasets.READ_ATTEMPTS

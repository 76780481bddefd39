"""Issue 23: a sweep's log is checked on read and locked; sweeps bounded and honest."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from _helpers import sigint_default

from fastnn import sweeps as S
from fastnn.cli import main
from fastnn.sweeps.log import SweepLog

TINY = dict(hidden=[8], epochs=1, batch_size=64)
SEARCH = {"lr": "0.01:0.5:log", "weight_decay": "1e-6:1e-3:log"}
needs_dask = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                reason="needs the distributed extra")


def _sweep(log, **kw):
    args = dict(trials=3, search=SEARCH, seed=3, workers=1, log=log, **TINY)
    args.update(kw)
    return S.sweep(**args)


@pytest.fixture(scope="module")
def good_log(tmp_path_factory):
    log = tmp_path_factory.mktemp("log") / "s.jsonl"
    _sweep(log)
    return log.read_text().splitlines()


def _edit(record: dict, how: str):
    """A record changed as a hostile or careless hand would."""
    if how == "hidden 3000": record["params"]["hidden"] = [3000, 3000]  # noqa: E701
    elif how == "lr outside": record["params"]["lr"] = 5.0  # noqa: E701
    elif how == "lr text": record["params"]["lr"] = "0.1"  # noqa: E701
    elif how == "lr missing": del record["params"]["lr"]  # noqa: E701
    elif how == "val_acc huge": record["val_acc"] = 1e308  # noqa: E701
    elif how == "val_acc text": record["val_acc"] = "0.97"  # noqa: E701
    elif how == "val_acc negative": record["val_acc"] = -0.5  # noqa: E701
    elif how == "trial -1": record["trial"] = -1  # noqa: E701
    elif how == "trial true": record["trial"] = True  # noqa: E701
    elif how == "trial 1.5": record["trial"] = 1.5  # noqa: E701
    elif how == "trial text": record["trial"] = "1"  # noqa: E701
    elif how == "trial huge": record["trial"] = 10**30  # noqa: E701
    elif how == "seed -5": record["seed"] = -5  # noqa: E701
    elif how == "status": record["status"] = "great"  # noqa: E701
    elif how == "diverged with a score": record["status"] = "diverged"  # noqa: E701
    elif how == "seconds text": record["seconds"] = "fast"  # noqa: E701
    elif how == "history list": record["history"] = [1, 2]  # noqa: E701
    elif how == "worker number": record["worker"] = 7  # noqa: E701
    elif how == "trials 0": record["trials"] = 0  # noqa: E701
    elif how == "params list": record["params"] = [0.1]  # noqa: E701
    elif how == "pruned_at text": record.update(status="pruned", pruned_at="1")  # noqa: E701
    else: raise AssertionError(how)  # noqa: E701
    return json.dumps(record)


EDITS = ["hidden 3000", "lr outside", "lr text", "lr missing", "val_acc huge", "val_acc text",
         "val_acc negative", "trial -1", "trial true", "trial 1.5", "trial text", "trial huge",
         "seed -5", "status", "diverged with a score", "seconds text", "history list",
         "worker number", "trials 0", "params list", "pruned_at text"]
LITERALS = [("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity")]


def _refused(log, capsys=None):
    """The sweep refuses ``log`` before any trial runs, naming line 2; the log is kept."""
    before = log.read_bytes()
    ran = []
    with pytest.raises(S.SweepError, match=rf"log: line 2 of {log}") as info:
        _sweep(log, resume=True, progress=lambda *a: ran.append(a))
    assert ran == [] and log.read_bytes() == before
    return str(info.value)


@pytest.mark.parametrize("how", EDITS)
def test_a_bad_record_is_one_error_naming_its_line(good_log, tmp_path, how):
    log = tmp_path / "s.jsonl"
    lines = list(good_log)
    lines[1] = _edit(json.loads(lines[1]), how)
    log.write_text("\n".join(lines) + "\n")
    message = _refused(log)
    assert "fix or delete that line" in message


@pytest.mark.parametrize("literal", [v for v, _ in LITERALS])
def test_non_finite_json_literals_are_refused(good_log, tmp_path, literal):
    """One ``NaN`` made the worst trial "best"; JSON has no such numbers."""
    log = tmp_path / "s.jsonl"
    record = json.loads(good_log[1])
    lines = list(good_log)
    lines[1] = json.dumps(record).replace(f'"val_acc": {record["val_acc"]!r}',
                                          f'"val_acc": {literal}')
    assert literal in lines[1]
    log.write_text("\n".join(lines) + "\n")
    _refused(log)


def test_a_repeated_trial_is_refused(good_log, tmp_path):
    log = tmp_path / "s.jsonl"
    log.write_text("\n".join([good_log[0], good_log[0], *good_log[1:]]) + "\n")
    assert "trial 0 again (it is on line 1 too)" in _refused(log)


def test_a_pruned_trials_record_is_a_valid_one(good_log, tmp_path):
    """A pruner's records (status pruned, a score so far, the epochs) read as valid."""
    log = tmp_path / "s.jsonl"
    record = json.loads(good_log[1])
    record.update(status="pruned", pruned_at=1, epochs_planned=3)
    log.write_text("\n".join([good_log[0], json.dumps(record), good_log[2]]) + "\n")
    ran = []
    trials = _sweep(log, resume=True, progress=lambda *a: ran.append(a))
    assert ran == [] and [r["status"] for r in trials] == ["ok", "pruned", "ok"]


def test_a_good_log_resumes(good_log, tmp_path):
    log = tmp_path / "s.jsonl"
    log.write_text("\n".join(good_log[:2]) + "\n")
    trials = _sweep(log, resume=True)
    assert [r["trial"] for r in trials] == [0, 1, 2]


def test_resume_without_trials_takes_the_logged_sweeps_length(good_log, tmp_path, capsys):
    """A finished 3-trial sweep resumed with the default --trials runs nothing more."""
    log = tmp_path / "s.jsonl"
    log.write_text("\n".join(good_log) + "\n")
    ran = []
    trials = _sweep(log, resume=True, trials=None, progress=lambda *a: ran.append(a))
    assert ran == [] and len(trials) == 3
    log.write_text("\n".join(good_log[:1]) + "\n")  # interrupted: the rest of its 3 run
    trials = _sweep(log, resume=True, trials=None)
    assert [r["trial"] for r in trials] == [0, 1, 2]
    trials = _sweep(log, resume=True, trials=4)  # a longer sweep asked for: extended
    assert [r["trial"] for r in trials] == [0, 1, 2, 3]


def test_a_sweep_holds_its_log_and_a_second_is_refused_naming_the_holder(tmp_path):
    log = tmp_path / "s.jsonl"
    holder = SweepLog(log)
    holder.lock()
    try:
        with pytest.raises(S.SweepError, match=rf"log: {log} is in use by another sweep "
                                               rf"\(process {os.getpid()}"):
            _sweep(log)
        with pytest.raises(S.SweepError, match="in use by another sweep"):
            _sweep(log, resume=True)
    finally:
        holder.unlock()
    assert log.read_text() == ""  # nothing written by the refused sweeps
    _sweep(log, trials=1)  # free again; and free after each sweep
    _sweep(log, trials=2, resume=True)
    assert len(log.read_text().splitlines()) == 2


def test_a_crashed_sweeps_lock_is_released(tmp_path):
    log = tmp_path / "s.jsonl"
    code = ("import sys, time\nfrom fastnn.sweeps.log import SweepLog\n"
            "SweepLog(sys.argv[1]).lock()\nprint('locked', flush=True)\ntime.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(log)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(S.SweepError, match=rf"process {proc.pid}: .*-c"):
            _sweep(log, trials=1)
    finally:
        proc.kill()  # (SIGKILL: no clean-up runs; the kernel drops the lock)
        proc.wait()
    assert len(_sweep(log, trials=1)) == 1


def test_the_cli_names_a_held_log_in_one_line(tmp_path, capsys):
    log = tmp_path / "s.jsonl"
    holder = SweepLog(log)
    holder.lock()
    try:
        rc = main(["sweep", "--trials", "1", "--epochs", "1", "--hidden", "8", "--workers",
                   "1", "--log", str(log)])
    finally:
        holder.unlock()
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "is in use by another sweep" in err


# --- kind 7: bounds at the edges, bad data once --------------------------------------------

@pytest.mark.parametrize("trials", ["100000000000000000000", "1000001"])
def test_absurd_trial_counts_are_refused_at_once(trials, capsys):
    t0 = time.time()
    rc = main(["sweep", "--trials", trials, "--workers", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and time.time() - t0 < 60
    assert err.strip().startswith("fastnn: error: --trials: at most 1,000,000 trials")


@pytest.mark.parametrize("x, t, message", [
    (np.zeros((0, 4)), np.zeros(0, int), "x: expected samples with features"),
    (np.zeros((10, 0)), np.zeros(10, int), "x: expected samples with features"),
    (np.ones((10, 4)), np.array([0, 1] * 4 + [0, -1]), "t: class labels must lie"),
    (np.ones((10, 4)), np.linspace(0, 1, 10), "t: expected integer class labels"),
])
def test_bad_data_fails_once_before_any_trial(x, t, message):
    ran = []
    with pytest.raises((ValueError, TypeError), match=message):
        S.sweep(x, t, trials=3, workers=1, progress=lambda *a: ran.append(a), **TINY)
    assert ran == []


def test_test_labels_the_training_lacks_fail_before_any_trial():
    """The final test evaluation was swallowed: no test accuracy, no model, exit 0."""
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((40, 4)), np.arange(40) % 3
    with pytest.raises(ValueError, match=r"t_test: class labels must lie in \[0, 2\]"):
        S.sweep(x, t, x_test=x[:5], t_test=np.array([0, 1, 2, 3, 1]), trials=2, workers=1,
                **TINY)
    with pytest.raises(ValueError, match="x_test: expected samples of 4 features"):
        S.sweep(x, t, x_test=x[:5, :3], t_test=t[:5], trials=2, workers=1, **TINY)
    with pytest.raises(ValueError, match="x_test: expected samples of 4 features"):
        S.sweep(x, t, x_test=x[:0], t_test=t[:0], trials=2, workers=1, **TINY)


def test_a_best_trial_that_fails_when_retrained_is_said_not_dropped(tmp_path, capsys,
                                                                     monkeypatch):
    real = S.run_trial

    def final_fails(data, base, trial, threads=1, final=False):
        record = real(data, base, trial, threads, final=False)
        if final:
            record.update(status="error", error="MemoryError: (a hostile final run)")
        return record

    monkeypatch.setattr(S.plan, "run_trial", final_fails)
    rc = main(["sweep", "--trials", "2", "--epochs", "1", "--hidden", "8", "--workers", "1",
               "--save", str(tmp_path / "m.npz")])
    out, err = capsys.readouterr()
    assert rc == 1 and "best: trial" in out
    import re

    assert re.fullmatch(r"fastnn: error: --save: the best trial \(\d\) failed when trained "
                        r"again for the test set and its model: MemoryError: \(a hostile "
                        r"final run\)", err.strip().splitlines()[-1])
    assert not (tmp_path / "m.npz").exists()


def test_json_output_is_json_proper(capsys):
    rc = main(["sweep", "--trials", "2", "--epochs", "1", "--hidden", "8", "--workers", "1",
               "--json", "--search", "lr=10:1000:log"])  # (diverging trials: no scores)
    out = capsys.readouterr().out
    assert rc in (0, 1)

    def refuse(name):
        raise AssertionError(f"bare {name} in --json")

    json.loads(out, parse_constant=refuse)


# --- kind 11: any address times out; Ctrl-C on local workers is one line -----------------

@needs_dask
@pytest.mark.parametrize("service", ["http", "garbage", "silent"])
def test_a_scheduler_address_of_another_service_times_out(capsys, service):
    """An HTTP server (a dashboard port, an easy copy mistake), a service that sends
    bytes Dask reads as a huge length, one that accepts and says nothing: the timeout
    holds for each, in one line."""
    import http.server
    import socketserver
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    class Other(socketserver.BaseRequestHandler):
        def handle(self):
            if service == "garbage":
                self.request.sendall(b"\xff" * 64)
            time.sleep(5)

    server = (http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet) if service == "http"
              else socketserver.ThreadingTCPServer(("127.0.0.1", 0), Other))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = f"tcp://127.0.0.1:{server.server_address[1]}"
        t0 = time.time()
        rc = main(["sweep", "--trials", "1", "--epochs", "1", "--hidden", "8",
                   "--scheduler", address, "--timeout", "1"])
        elapsed = time.time() - t0
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    assert rc == 2 and elapsed < 30
    assert err.startswith(f"fastnn: error: --scheduler: cannot reach {address} within 1 s")
    assert err.count("\n") == 1


@needs_dask
def test_ctrl_c_on_local_workers_is_one_line(tmp_path):
    """Ctrl-C goes to the terminal's whole process group: the workers ignore it, the
    sweep cancels them and says so in one line (no worker tracebacks)."""
    import signal

    cmd = [sys.executable, "-m", "fastnn.cli", "sweep", "--trials", "40", "--epochs", "300",
           "--hidden", "64", "--workers", "2", "--log", str(tmp_path / "s.jsonl")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, preexec_fn=sigint_default)
    try:
        os.set_blocking(proc.stderr.fileno(), False)
        seen, deadline = b"", time.time() + 300
        while b"[1/40]" not in seen and time.time() < deadline:
            time.sleep(0.1)
            seen += proc.stderr.read() or b""
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    err = (seen + (err or b"")).decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("fastnn: sweep interrupted;")


def test_sigterm_stops_a_sweep_like_ctrl_c(tmp_path, capsys, monkeypatch):
    """SIGTERM (docker stop, systemd, batch schedulers): the finished trials stay in the
    log, the log's lock is released, one line says how to go on; exit status 143."""
    import signal

    real = S.run_trial

    def then_sigterm(*args, **kw):
        record = real(*args, **kw)
        if record["trial"] == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return record

    monkeypatch.setattr(S.plan, "run_trial", then_sigterm)
    log = tmp_path / "s.jsonl"
    argv = ["sweep", "--trials", "4", "--epochs", "1", "--hidden", "8", "--workers", "1",
            "--log", str(log)]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 143
    # (trial 1 was stopped before it was logged: it runs again on resume)
    assert err.splitlines()[-1].startswith("fastnn: sweep stopped by SIGTERM; 1 of 4 trials")
    assert [json.loads(line)["trial"] for line in log.read_text().splitlines()] == [0]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    monkeypatch.setattr(S.plan, "run_trial", real)
    assert main([*argv, "--resume"]) == 0  # not locked any more
    assert len(log.read_text().splitlines()) == 4

"""A hostile battery for deployments: caches, disks, homes, logs, signals, addresses.

    python benchmarks/hostile_deploy.py            # every case (a few minutes: compiles)
    python benchmarks/hostile_deploy.py --only log # the cases whose name contains "log"
    python benchmarks/hostile_deploy.py --install  # also install -> run -> editable reinstall

Each case sets up one thing that real deployments meet (a damaged kernel cache, no home
folder, a disk that refuses writes, a hand-edited sweep log, a second sweep on one log,
SIGTERM, an address that is not a scheduler, ...) and checks the promise fastnn makes
about it: it runs, or it refuses in one line that names the problem, and nothing the
user had is lost. A case prints "held" or what broke; the summary counts both. Cases
run fastnn in subprocesses where the promise is about a process (its exit status, its
stderr, what it leaves on disk). Not an asv benchmark (asv finds none in it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in (
        "FASTNN_CACHE_DIR", "NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "FASTNN_NUMBA_CACHE",
        "NUMBA_DISABLE_JIT")}
    env["PYTHONWARNINGS"] = "ignore"
    env.update({k: v for k, v in extra.items() if v is not None})
    for k in [k for k, v in extra.items() if v is None]:
        env.pop(k, None)
    return env


def _py(code, env, cwd, preexec=None, timeout=600):
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=preexec)


def _fastnn(args, env, cwd, preexec=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "fastnn.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=preexec)


# --- kind 1: the kernel cache in any state -------------------------------------------------

KERNEL = ("import numpy as np\nfrom fastnn.kernels import network\n"
          "assert network.first_bad_label_(np.array([0, 1, 5]), 2) == 2\n"
          "print(sum(network.first_bad_label_.stats.cache_hits.values()))\n")


def _cache_files(folder, suffix):
    return sorted(Path(folder).rglob(f"*{suffix}"))


def _damaged_cache(tmp, suffix, damage):
    env = _env(FASTNN_CACHE_DIR=tmp)
    first = _py(KERNEL, env, tmp)
    if first.returncode or first.stdout.strip() != "0":
        return f"first run: {first.stderr[-300:]}"
    for path in _cache_files(tmp, suffix):
        path.write_bytes(damage(path.read_bytes()))
    second = _py(KERNEL, env, tmp)
    if second.returncode or second.stdout.strip() != "0":
        return f"damaged run (rc {second.returncode}): {second.stderr[-300:]}"
    if second.stderr.count("\n") != 1 or "damaged kernel cache file" not in second.stderr:
        return f"expected one line about the damage, got {second.stderr!r}"
    third = _py(KERNEL, env, tmp)
    if third.returncode or third.stdout.strip() != "1":
        return f"not rebuilt: hits {third.stdout.strip()!r} {third.stderr[-200:]}"
    return None


def _flip(blob):
    middle = len(blob) // 2
    return blob[:middle] + bytes(b ^ 0x5A for b in blob[middle:middle + 64]) + \
        blob[middle + 64:]


for _suffix in (".nbi", ".nbc"):
    for _name, _damage in (("empty", lambda b: b""), ("truncated", lambda b: b[:len(b) // 2]),
                           ("flipped", _flip), ("garbage", lambda b: os.urandom(len(b))),
                           ("one_byte_short", lambda b: b[:-1])):
        def _make(suffix=_suffix, damage=_damage):
            return lambda tmp: _damaged_cache(tmp, suffix, damage)

        CASES[f"cache_{_name}_{_suffix[1:]}"] = _make()


@case
def cache_folder_is_a_file(tmp):
    (Path(tmp) / "file").write_text("x")
    out = _py(KERNEL, _env(FASTNN_CACHE_DIR=str(Path(tmp) / "file")), tmp)
    if out.returncode or out.stderr.count("\n") != 1 or "compile on every run" not in out.stderr:
        return f"rc {out.returncode}: {out.stderr[-300:]!r}"


@case
def cache_no_writable_home(tmp):
    out = _py(KERNEL, _env(HOME="/proc/no-such-home"), tmp)
    if out.returncode or out.stderr.count("\n") != 1 or "compile on every run" not in out.stderr:
        return f"rc {out.returncode}: {out.stderr[-300:]!r}"


def _stranger():
    """Become uid/gid 12345 (no passwd entry), as ``docker run --user 12345`` runs."""
    os.setgid(12345)
    os.setuid(12345)


def _no_stranger() -> str | None:
    """Why this machine cannot run fastnn as uid 12345, or None."""
    if os.getuid() != 0:
        return "skipped (needs root to switch users)"
    try:
        subprocess.run([sys.executable, "-c", "import fastnn"], preexec_fn=_stranger,
                       capture_output=True, check=True, timeout=300, env=_env(HOME=None))
    except (OSError, subprocess.CalledProcessError):
        return "skipped (this Python or fastnn is not readable by other users here)"
    return None


@case
def cache_no_home_no_passwd_entry(tmp):
    """docker run --user 12345: HOME unset, a uid without a passwd entry."""
    if _no_stranger():
        return _no_stranger()
    os.chmod(tmp, 0o777)
    out = _py(KERNEL, _env(HOME=None), tmp, preexec=_stranger)
    if out.returncode or out.stderr.count("\n") != 1 or "no home folder" not in out.stderr:
        return f"rc {out.returncode}: {out.stderr[-300:]!r}"


def _small_files():
    """Writes beyond 4 KiB fail with EFBIG, as a full disk fails them (ENOSPC)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


@case
def cache_writes_fail(tmp):
    out = _py(KERNEL, _env(FASTNN_CACHE_DIR=tmp), tmp, preexec=_small_files)
    if out.returncode or out.stderr.count("\n") != 1 or "without the cache" not in out.stderr:
        return f"rc {out.returncode}: {out.stderr[-300:]!r}"


@case
def cache_off(tmp):
    out = _py(KERNEL, _env(FASTNN_CACHE_DIR=tmp, FASTNN_NUMBA_CACHE="0"), tmp)
    if out.returncode or out.stderr or list(Path(tmp).iterdir()):
        return f"rc {out.returncode}: {out.stderr[-300:]!r}, {list(Path(tmp).iterdir())}"


@case
def cache_never_inside_the_package(tmp):
    import fastnn

    package = Path(fastnn.__file__).parent
    before = sorted(str(p) for p in package.rglob("*.nb[ic]"))
    out = _py(KERNEL, _env(HOME=tmp), tmp)
    after = sorted(str(p) for p in package.rglob("*.nb[ic]"))
    if out.returncode or after != before or not _cache_files(Path(tmp) / ".cache", ".nbi"):
        return f"rc {out.returncode}: package cache files {len(before)} -> {len(after)}"


# --- kind 2 and 3: the model and the files beside it ------------------------------------------

TRAIN = ["train", "--epochs", "3", "--quiet"]


@case
def save_on_a_disk_that_refuses_writes(tmp):
    target = Path(tmp) / "m.npz"
    target.write_bytes(b"previous model")
    out = _fastnn([*TRAIN, "--save", str(target)], _env(FASTNN_DATA=tmp), tmp,
                  preexec=_small_files)
    problems = []
    if out.returncode != 1 or not out.stdout.startswith("train acc"):
        problems.append(f"rc {out.returncode}, stdout {out.stdout[:80]!r}")
    if f"{target}: not saved" not in out.stderr or "previous file is unchanged" not in out.stderr:
        problems.append(f"stderr {out.stderr[-200:]!r}")
    if target.read_bytes() != b"previous model":
        problems.append("the previous model was lost")
    if [p for p in Path(tmp).iterdir() if p.name.startswith(".m.npz")]:
        problems.append("a temporary was left")
    return "; ".join(problems) or None


for _entry in (0.0, None, "fast", -1, True, [], {"seconds_per_iter": 0.0},
               {"seconds_per_iter": None}, {"seconds_per_iter": "x"}):
    def _make(entry=_entry):
        def speed_record(tmp):
            env = _env(FASTNN_DATA=tmp)
            first = _fastnn(TRAIN, env, tmp)
            if first.returncode:
                return f"first run: {first.stderr[-200:]}"
            speeds = Path(tmp) / "speeds.json"
            (key,) = json.loads(speeds.read_text())
            speeds.write_text(json.dumps({key: entry}))
            out = _fastnn([*TRAIN, "--save", "m.npz"], env, tmp)
            if out.returncode or not (Path(tmp) / "m.npz").is_file():
                return f"rc {out.returncode}: {out.stderr[-300:]!r}"
        return speed_record

    CASES[f"speed_record_{json.dumps(_entry)}"] = _make()


@case
def save_with_no_home_and_no_passwd_entry(tmp):
    if _no_stranger():
        return _no_stranger()
    os.chmod(tmp, 0o777)
    out = _fastnn([*TRAIN, "--save", "m.npz"], _env(HOME=None, FASTNN_DATA=None), tmp,
                  preexec=_stranger)
    if out.returncode or not (Path(tmp) / "m.npz").is_file():
        return f"rc {out.returncode}: {out.stderr[-300:]!r}"


@case
def temporaries_of_another_namespace_are_kept(tmp):
    from fastnn import serialize

    others = [Path(tmp) / f".m.npz.0123456789ab-{os.getpid()}.x.tmp",
              Path(tmp) / ".m.npz.ba9876543210-4194305.y.tmp",
              Path(tmp) / ".m.npz.4194305.z.tmp"]
    for p in others:
        p.write_text("another host's save in progress")
    serialize.atomic_write(Path(tmp) / "m.npz", lambda f: f.write(b"mine"))
    gone = [p.name for p in others if not p.exists()]
    return f"deleted {gone}" if gone else None


SLOW_SAVE = ("import sys, time\nfrom fastnn import serialize\n"
             "def write(f):\n"
             "    f.write(b'x' * 1000000)\n    print('writing', flush=True)\n"
             "    time.sleep(30)\n"
             "serialize.atomic_write(sys.argv[1], write)\n")


@case
def sigterm_during_a_save(tmp):
    target = Path(tmp) / "m.npz"
    target.write_bytes(b"previous")
    proc = subprocess.Popen([sys.executable, "-c", SLOW_SAVE, str(target)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env())
    proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    left = [p.name for p in Path(tmp).iterdir() if p.name != "m.npz"]
    if left or target.read_bytes() != b"previous":
        return f"left {left}, target {target.read_bytes()[:20]!r}"


def _until(proc, marker: bytes, seconds=300):
    os.set_blocking(proc.stderr.fileno(), False)
    seen, deadline = b"", time.time() + seconds
    while marker not in seen and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
        seen += proc.stderr.read() or b""
    return seen


@case
def sigterm_during_training(tmp):
    proc = subprocess.Popen([sys.executable, "-m", "fastnn.cli", "train", "--epochs", "100000",
                             "--save", "m.npz"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_env(FASTNN_DATA=tmp), cwd=tmp)
    seen = _until(proc, b"it/s")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    err = (seen + err).decode(errors="replace")
    if proc.returncode != 143 or "stopped by SIGTERM" not in err.splitlines()[-1] or \
            "Traceback" in err:
        return f"rc {proc.returncode}: {err[-300:]!r}"


# --- kinds 4, 5, 6, 7, 11: sweeps -------------------------------------------------------------

SWEEP = ["sweep", "--trials", "3", "--epochs", "1", "--hidden", "8", "--workers", "1",
         "--seed", "3"]
_good_log = []


def _a_good_log(tmp):
    if not _good_log:
        out = _fastnn([*SWEEP, "--log", "s.jsonl"], _env(), tmp)
        if out.returncode:
            raise RuntimeError(out.stderr)
        _good_log.extend((Path(tmp) / "s.jsonl").read_text().splitlines())
    return list(_good_log)


def _edited(line, edit):
    record = json.loads(line)
    edit(record)
    return json.dumps(record)


LOG_EDITS = {
    "nan": lambda line: line.replace('"val_acc": 0', '"val_acc": NaN', 1),
    "infinity": lambda line: line.replace('"val_acc": 0', '"val_acc": Infinity', 1),
    "huge": lambda line: _edited(line, lambda r: r.update(val_acc=1e308)),
    "trial_minus_1": lambda line: _edited(line, lambda r: r.update(trial=-1)),
    "trial_true": lambda line: _edited(line, lambda r: r.update(trial=True)),
    "wide_network": lambda line: _edited(line, lambda r: r["params"].update(
        hidden=[3000, 3000], epochs=2)),
    "lr_outside": lambda line: _edited(line, lambda r: r["params"].update(lr=10.0)),
    "val_acc_text": lambda line: _edited(line, lambda r: r.update(val_acc="0.97")),
    "seed_text": lambda line: _edited(line, lambda r: r.update(seed="7")),
    "status_other": lambda line: _edited(line, lambda r: r.update(status="best")),
}

for _name, _edit in LOG_EDITS.items():
    def _make(edit=_edit):
        def log_line(tmp):
            lines = _a_good_log(tmp)
            lines[1] = edit(lines[1])
            if lines[1] == _good_log[1]:
                return "the edit did not apply"
            log = Path(tmp) / "s.jsonl"
            log.write_text("\n".join(lines) + "\n")
            before = log.read_bytes()
            out = _fastnn([*SWEEP, "--log", "s.jsonl", "--resume"], _env(), tmp)
            if out.returncode != 2 or "line 2 of s.jsonl" not in out.stderr or \
                    out.stderr.count("\n") != 1 or log.read_bytes() != before:
                return f"rc {out.returncode}: {out.stderr[-300:]!r}"
        return log_line

    CASES[f"log_{_name}"] = _make()


@case
def log_duplicate_trial(tmp):
    lines = _a_good_log(tmp)
    (Path(tmp) / "s.jsonl").write_text("\n".join([lines[0], *lines]) + "\n")
    out = _fastnn([*SWEEP, "--log", "s.jsonl", "--resume"], _env(), tmp)
    if out.returncode != 2 or "trial 0 again" not in out.stderr:
        return f"rc {out.returncode}: {out.stderr[-300:]!r}"


@case
def log_resume_finished_with_default_trials(tmp):
    lines = _a_good_log(tmp)
    (Path(tmp) / "s.jsonl").write_text("\n".join(lines) + "\n")
    args = [a for i, a in enumerate(SWEEP) if i not in (1, 2)]  # (no --trials 3)
    out = _fastnn([*args, "--log", "s.jsonl", "--resume"], _env(), tmp)
    if out.returncode or "0 of 3 trials to run" not in out.stderr:
        return f"rc {out.returncode}: {out.stderr[-300:]!r}"


HOLD = ("import sys, time\nfrom fastnn.sweeps.log import SweepLog\n"
        "SweepLog(sys.argv[1]).lock()\nprint('locked', flush=True)\ntime.sleep(600)\n")


@case
def log_held_by_another_sweep_then_its_crash(tmp):
    log = Path(tmp) / "s.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(log)], stdout=subprocess.PIPE,
                            text=True, env=_env())
    try:
        proc.stdout.readline()
        out = _fastnn([*SWEEP, "--log", "s.jsonl"], _env(), tmp)
        if out.returncode != 2 or f"process {proc.pid}" not in out.stderr:
            return f"beside the holder: rc {out.returncode}: {out.stderr[-300:]!r}"
    finally:
        proc.kill()
        proc.wait()
    out = _fastnn([*SWEEP, "--log", "s.jsonl"], _env(), tmp)
    if out.returncode:
        return f"after the holder's crash: rc {out.returncode}: {out.stderr[-300:]!r}"


@case
def sweep_absurd_trials(tmp):
    t0 = time.time()
    out = _fastnn(["sweep", "--trials", "100000000000000000000"], _env(), tmp, timeout=120)
    if out.returncode != 2 or "--trials: at most" not in out.stderr or time.time() - t0 > 60:
        return f"rc {out.returncode}: {out.stderr[-300:]!r}"


@case
def train_absurd_iters(tmp):
    out = _fastnn(["train", "--iters", "100000000000000000000"], _env(), tmp)
    if out.returncode != 2 or "--iters: at most" not in out.stderr:
        return f"rc {out.returncode}: {out.stderr[-300:]!r}"


SWEEP_ARRAYS = ("import numpy as np, sys\nfrom fastnn import sweeps as S\n"
                "x, t = np.ones((40, 4)), np.arange(40) % 3\n"
                "case = sys.argv[1]\n"
                "kw = dict(trials=3, workers=1, hidden=[8], epochs=1, batch_size=8)\n"
                "if case == 'zero': S.sweep(x[:0], t[:0], **kw)\n"
                "if case == 'labels': S.sweep(x, t - 1, **kw)\n"
                "if case == 'test_labels':\n"
                "    S.sweep(x, t, x_test=x[:4], t_test=np.array([0, 1, 2, 7]), **kw)\n")


for _name in ("zero", "labels", "test_labels"):
    def _make(name=_name):
        def sweep_data(tmp):
            out = subprocess.run([sys.executable, "-c", SWEEP_ARRAYS, name], env=_env(),
                                 cwd=tmp, capture_output=True, text=True, timeout=600)
            last = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ""
            if out.returncode == 0 or not last.startswith(("fastnn.sweeps.log.SweepError",
                                                            "ValueError", "TypeError")):
                return f"rc {out.returncode}: {last!r}"
        return sweep_data

    CASES[f"sweep_bad_data_{_name}"] = _make()


@case
def scheduler_address_of_an_http_server(tmp):
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        t0 = time.time()
        address = f"tcp://127.0.0.1:{server.server_address[1]}"
        out = _fastnn([*SWEEP[:-4], "--seed", "3", "--scheduler", address, "--timeout", "2"],
                      _env(), tmp, timeout=120)
        took = time.time() - t0
    finally:
        server.shutdown()
    if out.returncode != 2 or "cannot reach" not in out.stderr or took > 60:
        return f"rc {out.returncode} after {took:.0f} s: {out.stderr[-300:]!r}"


@case
def ctrl_c_on_local_workers(tmp):
    proc = subprocess.Popen([sys.executable, "-m", "fastnn.cli", "sweep", "--trials", "40",
                             "--epochs", "30", "--hidden", "64", "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
                            cwd=tmp, start_new_session=True)
    seen = _until(proc, b"[1/40]")
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    err = (seen + err).decode(errors="replace")
    if proc.returncode != 130 or "Traceback" in err or len(err.splitlines()) > 5:
        return f"rc {proc.returncode}, {len(err.splitlines())} lines: {err[-300:]!r}"


# --- kind 10: install, run, editable reinstall, run -------------------------------------------

def install_then_editable(tmp):
    """pip install . ; a run (compiles, caches); pip install -e . ; import and --version.
    The dependencies come from this Python's environment (a .pth file); pip builds fastnn
    with its usual isolated build environment (setuptools from the package index)."""
    import site
    import sysconfig

    venv = Path(tmp) / "venv"
    # (without pip of its own: this environment's pip, and its dependencies, via a .pth)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], capture_output=True, text=True,
                             check=True).stdout.strip()
    deps = site.getsitepackages() + [sysconfig.get_paths()["purelib"]]
    Path(purelib, "fastnn_battery_deps.pth").write_text("\n".join(dict.fromkeys(deps)) + "\n")
    pip = [str(py), "-m", "pip", "install", "-q", "--no-deps"]
    env = _env(HOME=tmp)
    for step, argv in (("install", [*pip, str(HERE)]),
                       ("run", [str(py), "-m", "fastnn.cli", "train", "--dataset", "sine",
                                "--epochs", "2", "--quiet"]),
                       ("editable", [*pip, "-e", str(HERE)]),
                       ("version", [str(venv / "bin" / "fastnn"), "--version"]),
                       ("import", [str(py), "-c", "import fastnn, fastnn.kernels; "
                                   "print(fastnn.__file__)"])):
        out = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp,
                             timeout=900)
        if out.returncode:
            return f"{step}: rc {out.returncode}: {out.stderr[-300:]!r}"
        if step == "run":
            left = list(Path(purelib, "fastnn").rglob("*.nb[ic]"))
            if left:
                return f"the run wrote {len(left)} cache files into site-packages"
    if not out.stdout.strip().startswith(str(HERE)):
        return f"the editable install is not what imports: {out.stdout.strip()}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    parser.add_argument("--install", action="store_true",
                        help="also the install -> run -> editable reinstall sequence")
    args = parser.parse_args(argv)
    cases = {k: v for k, v in CASES.items() if args.only in k}
    if args.install:
        cases["install_then_editable"] = install_then_editable
    held = broken = skipped = 0
    for name, fn in cases.items():
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.time()
            try:
                problem = fn(tmp)
            except Exception as exc:  # (a case that crashes is a broken promise too)
                problem = f"{type(exc).__name__}: {exc}"
            if problem and problem.startswith("skipped"):
                skipped += 1
            elif problem:
                broken += 1
            else:
                held += 1
            print(f"{name:<48} {problem or 'held'}  ({time.time() - t0:.1f} s)", flush=True)
    print(f"\n{held + broken} cases tried, {held} held, {broken} broke"
          + (f", {skipped} skipped" if skipped else ""))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())

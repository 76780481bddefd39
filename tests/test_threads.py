"""The thread policy: automatic by size and free cores (the same bits), or forced; bad
counts refused; the process's numba and BLAS settings left as they were."""

import json
import os
import shutil
import subprocess
import sys

import numba
import numpy as np
import pytest
from _helpers import busy_process
from fastnn.kernels import _cores, _threads

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


def test_the_automatic_choice_follows_the_size_of_the_work_and_the_free_cores(monkeypatch):
    # the reference (BLAS's own threads, whose sums depend on their count): size alone
    assert _threads.threads_for(_threads.AUTO_WORK - 1, blocks=False) == 1
    assert _threads.threads_for(_threads.AUTO_WORK, blocks=False) == CORES
    # the kernels' blocks: one thread per block's worth of work, up to the free cores
    assert 1 <= _threads.free_cores() <= CORES
    monkeypatch.setattr(_threads, "free_cores", lambda: CORES)  # a quiet machine
    unit = _threads.THREAD_WORK
    assert _threads.threads_for(2 * unit - 1) == 1
    assert _threads.threads_for(2 * unit) == min(2, CORES)
    assert _threads.threads_for(unit * CORES) == CORES
    # a float32 multiply-add counts half (float32 products run about twice as fast)
    assert _threads.threads_for(4 * unit - 1, itemsize=4) == 1
    assert _threads.threads_for(4 * unit, itemsize=4) == min(2, CORES)
    net = fastnn.Sequential(64, [1024, 1024], 10, seed=0)  # 1,124,352 madds per row
    x = np.random.default_rng(0).random((600, 64))
    numba_before = numba.get_num_threads()
    net.train_step(x[:1], np.arange(1) % 10, fastnn.SGD(0.01))  # 1.1 M madds
    assert fastnn.get_num_threads() == 1
    net.train_step(x[:6], np.arange(6) % 10, fastnn.SGD(0.01))  # 6.7 M madds
    assert fastnn.get_num_threads() == min(2, CORES)
    net.predict(x)  # 512-row passes: 576 M madds
    assert fastnn.get_num_threads() == CORES
    assert numba.get_num_threads() == numba_before  # numba's own count is put back
    monkeypatch.setattr(_threads, "free_cores", lambda: 1)  # every other core busy
    net.predict(x)
    assert fastnn.get_num_threads() == 1
    monkeypatch.setattr(_threads, "free_cores", lambda: CORES)
    fastnn.set_num_threads(1)
    net.predict(x)
    assert fastnn.get_num_threads() == 1  # forced stays forced


def test_the_same_seed_gives_the_same_bits_whatever_the_load(digits):
    """The thread count follows the load, the blocks do not: a busy core beside the run
    changes its speed, not its numbers (tests/test_parallel_bits.py: 1, 2, 3 threads)."""
    (x, t), _ = digits

    def run():
        net = fastnn.Sequential(64, [128, 128], 10, "he", seed=0)
        fastnn.fit(net, x, t, batch_size=700, epochs=2, seed=0, progress=False)
        fastnn.fit(net, x, t, batch_size=16, epochs=1, seed=1, progress=False)
        return net.params.flat.copy()

    quiet = run()
    with busy_process():
        loaded = run()
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
    assert err.count("note: this run took") == 1 and "thread(s)" in err
    (tmp_path / "speeds.json").write_text("not json")  # a damaged record is replaced
    assert main(["train", "--epochs", "3", "--quiet"]) == 0
    assert isinstance(json.loads((tmp_path / "speeds.json").read_text()), dict)


def _blas_counts():
    """{library file: thread count} of every BLAS in the process (both OpenBLAS builds)."""
    from threadpoolctl import threadpool_info

    return {info["filepath"]: info["num_threads"] for info in threadpool_info()
            if info["user_api"] == "blas"}


@pytest.fixture
def user_blas_settings():
    """Distinct, user-chosen counts in every BLAS library; put back afterwards."""
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()
    original = _blas_counts()
    pools = [lib for lib in controller.lib_controllers if lib.user_api == "blas"]
    for i, lib in enumerate(pools):  # 1 in one library, all cores in the other
        lib.set_num_threads(1 if i % 2 == 0 else CORES)
    chosen = _blas_counts()
    yield chosen
    for lib in pools:
        lib.set_num_threads(original[lib.filepath])


@pytest.mark.parametrize("forced", [None, 1])
def test_fastnn_calls_leave_every_blas_setting_as_they_found_it(backend, forced,
                                                                user_blas_settings, digits):
    """No hidden global state: after each call (returning or raising) every BLAS library
    in the process runs on the count the user set, whatever fastnn chose for its call."""
    (x, t), (x_test, t_test) = digits
    fastnn.set_num_threads(forced)
    assert _blas_counts() == user_blas_settings  # the setter itself touches nothing
    small = fastnn.Sequential(64, [32], 10, seed=0, backend=backend)
    big = fastnn.Sequential(64, [1024, 1024], 10, seed=0, backend=backend)  # all cores
    calls = {
        "gradient": lambda: small.gradient(x[:64], t[:64]),
        "predict (large work)": lambda: big.predict(x[:600]),
        "accuracy": lambda: small.accuracy(x_test, t_test),
        "fit, compiled path": lambda: fastnn.fit(small, x, t, epochs=1, batch_size=100,
                                                 x_test=x_test, t_test=t_test, seed=0,
                                                 progress=False),
        "fit, step path": lambda: fastnn.fit(small, x, t, epochs=1, batch_size=100,
                                             optimizer=fastnn.Adam(), seed=0,
                                             progress=False, callbacks=[lambda *a: None]),
        "Trainer": lambda: fastnn.Trainer(small, x, t, x_test, t_test, epochs=1,
                                          mini_batch_size=200, verbose=False).train(),
    }
    for name, call in calls.items():
        call()
        assert _blas_counts() == user_blas_settings, name
    bad = x[:8].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        big.predict(bad)
    assert _blas_counts() == user_blas_settings, "a call that raised"

    def fails(*args):  # a kernel call that raises midway (fastnn's counts in force)
        raise RuntimeError("midway")

    big.engine.backend = type("Failing", (), {"forward": staticmethod(fails)})
    with pytest.raises(RuntimeError, match="midway"):
        big.predict(x[:600])
    assert _blas_counts() == user_blas_settings, "a kernel call that raised"


def test_the_command_line_run_from_python_leaves_the_thread_settings_as_they_were(
        user_blas_settings, tmp_path, capsys):
    """``fastnn.cli.main(["train", ...])`` in a Python process (a notebook, a test): the
    thread policy and every BLAS count the user set are as before, after a run with
    ``--threads auto`` (which starts BLAS on one thread), with a forced count, and after
    a run that failed once it had set them (a data folder without the data set)."""
    fastnn.set_num_threads(1)

    def as_set():
        counts = _blas_counts()  # (a library loaded since: not the user's setting)
        return {path: counts[path] for path in user_blas_settings}

    runs = [["--threads", "auto"], ["--threads", str(CORES)],
            ["--dataset", "mnist", "--data-dir", str(tmp_path)]]
    for extra in runs:
        rc = main(["train", "--epochs", "1", "--quiet", *extra])
        assert rc == (1 if "--data-dir" in extra else 0), capsys.readouterr().err
        assert fastnn.thread_policy() == 1, extra
        assert as_set() == user_blas_settings, extra


@pytest.mark.parametrize("forced", [None, 1, CORES])
def test_numba_and_blas_threads_of_a_call_never_exceed_the_usable_cores(backend, forced,
                                                                       digits):
    """Seen from inside a kernel call (a stand-in backend that records, then calls the
    real one): the kernels run their blocks on numba's threads with BLAS on one; the
    reference runs on BLAS's threads alone; together never more than the usable cores.
    (BLAS: the libraries fastnn's calls use, NumPy's OpenBLAS; SciPy's, which numba's
    own np.dot would call, only where the kernels fall back to it.)"""
    (x, _), _ = digits
    fastnn.set_num_threads(forced)
    net = fastnn.Sequential(64, [1024, 1024], 10, seed=0, backend=backend)  # large work
    real, seen = net.engine.backend, []

    def forward(*args):
        seen.append((_threads.block_threads(), numba.get_num_threads(),
                     {get() for get, _ in _threads.blas_libraries()}))
        return real.forward(*args)

    net.engine.backend = type("Watched", (), {"forward": staticmethod(forward)})
    net.predict(x[:600])  # (two passes: 512 rows, 88 rows)
    assert len(seen) == 2
    blocked = backend == "numba" and not numba.config.DISABLE_JIT  # (else: like NumPy's)
    for blocks, numba_threads, blas in seen:
        if blocked:
            assert blas == {1} and blocks <= CORES
            assert blocks == 1 or numba_threads == blocks
        else:
            assert blocks == 1 and max(blas) <= CORES
        if forced is not None:
            assert (blocks if blocked else max(blas)) == forced


# --- the usable cores: affinity, cgroup CPU quota, NUMBA_NUM_THREADS ---------------------

@pytest.mark.parametrize("text, cores", [("max 100000", None), ("max", None),
                                         ("200000 100000", 2.0), ("150000 100000\n", 1.5),
                                         ("50000", 0.5), ("0 100000", None), ("", None),
                                         ("banana 100000", None), ("100000 0", None)])
def test_cgroup_v2_cpu_max_is_parsed(text, cores):
    assert _cores.parse_cpu_max(text) == cores


@pytest.mark.parametrize("quota, period, cores", [("-1", "100000", None),
                                                  ("250000\n", "100000\n", 2.5),
                                                  ("x", "100000", None), ("100000", "", None)])
def test_cgroup_v1_cfs_quota_is_parsed(quota, period, cores):
    assert _cores.parse_cfs(quota, period) == cores


def fake_root(tmp_path, cgroup: str, mountinfo: str, files: dict):
    """A /proc/self and /sys/fs/cgroup under tmp_path with these contents."""
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text(cgroup)
    (tmp_path / "proc/self/mountinfo").write_text(mountinfo)
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return str(tmp_path)


V2_MOUNT = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
V1_MOUNTS = ("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
             "32 31 0:29 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup "
             "rw,cpu,cpuacct\n"
             "33 31 0:30 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n")

HYBRID_MOUNTS = ("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
                 "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
                 "33 31 0:30 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct\n"
                 "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n")


@pytest.mark.parametrize("case, cgroup, mountinfo, files, cores", [
    ("v2: 1.5 cores, rounded up", "0::/user.slice/job\n", V2_MOUNT,
     {"sys/fs/cgroup/user.slice/job/cpu.max": "150000 100000\n"}, 2),
    ("v2: a parent's quota binds", "0::/user.slice/job\n", V2_MOUNT,
     {"sys/fs/cgroup/user.slice/job/cpu.max": "300000 100000\n",
      "sys/fs/cgroup/user.slice/cpu.max": "100000 100000\n"}, 1),
    ("v2: max", "0::/user.slice/job\n", V2_MOUNT,
     {"sys/fs/cgroup/user.slice/job/cpu.max": "max 100000\n"}, None),
    ("v2, no mountinfo: the usual mount point", "0::/\n", "",
     {"sys/fs/cgroup/cpu.max": "400000 100000"}, 4),
    ("v1 in a container (the cgroup mounted at its root)",
     "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n", V1_MOUNTS,
     {"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "250000\n",
      "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 3),
    ("v1: no quota", "4:cpu,cpuacct:/docker/abc\n", V1_MOUNTS,
     {"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
      "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, None),
    ("v2 mounted at a path with a space (escaped in mountinfo)", "0::/a\n",
     "30 23 0:26 / /my\\040cgroups rw - cgroup2 cgroup2 rw\n",
     {"my cgroups/a/cpu.max": "100000 50000"}, 2),
    ("hybrid: v1's cpu alone beside v2 at unified/ (this machine's layout)",
     "2:cpuacct:/job\n1:cpu:/job\n0::/job\n", HYBRID_MOUNTS,
     {"sys/fs/cgroup/cpu/job/cpu.cfs_quota_us": "50000\n",
      "sys/fs/cgroup/cpu/job/cpu.cfs_period_us": "100000\n",
      "sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n",
      "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n"}, 1),
    ("a fifth of a core: at least one", "0::/a\n", V2_MOUNT,
     {"sys/fs/cgroup/a/cpu.max": "20000 100000"}, 1),
    ("garbage everywhere", "\x00garbage\n::\n7\n0::relative\n",
     "nonsense - \n - cgroup2\n1 2 3\n", {"sys/fs/cgroup/cpu.max": "banana"}, None),
    ("garbage quota", "0::/\n", V2_MOUNT, {"sys/fs/cgroup/cpu.max": "12 apples"}, None),
    ("no cgroup files at all", "0::/gone\n", V2_MOUNT, {}, None),
])
def test_the_cgroup_quota_is_found_from_the_process_own_cgroup(tmp_path, case, cgroup,
                                                                mountinfo, files, cores):
    root = fake_root(tmp_path, cgroup, mountinfo, files)
    assert _cores.cgroup_cpu_limit(root) == cores, case


def test_no_proc_files_means_no_quota(tmp_path):
    assert _cores.cgroup_cpu_limit(str(tmp_path)) is None


def test_a_quota_caps_the_usable_cores_and_the_thread_counts(monkeypatch):
    monkeypatch.setattr(_cores, "_quota", 1)
    assert _threads.usable_cores() == 1 and fastnn.threads.usable_cores() == 1
    assert _threads.threads_for(_threads.AUTO_WORK) == 1
    if CORES > 1:
        with pytest.raises(ValueError, match="n: at most 1 threads are usable here"):
            fastnn.set_num_threads(2)
    monkeypatch.setattr(_cores, "_quota", _cores._UNREAD)  # read again: this machine's
    assert _threads.usable_cores() == CORES


ONE_CORE_CHECK = """
import fastnn
from fastnn.cli import main
print(fastnn.threads.usable_cores())
try:
    fastnn.set_num_threads(2)
    print("accepted")
except ValueError as exc:
    print(exc)
print(main(["train", "--epochs", "1", "--threads", "2"]))
"""


def test_taskset_and_numba_num_threads_limit_the_usable_cores():
    """A process pinned to one core (``taskset -c 0``), and one with NUMBA_NUM_THREADS=1,
    see one usable core: two threads are refused, in Python and on the command line."""
    runs = {"NUMBA_NUM_THREADS=1": ([sys.executable, "-c", ONE_CORE_CHECK],
                                    dict(os.environ, NUMBA_NUM_THREADS="1"))}
    if shutil.which("taskset"):
        runs["taskset -c 0"] = (["taskset", "-c", "0", sys.executable, "-c", ONE_CORE_CHECK],
                                dict(os.environ))
    procs = {name: subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
             for name, (argv, env) in runs.items()}  # (both at once: half the wait)
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (name, err)
        why = ("at most 1 threads are usable here (the cores this process may use: its CPU "
               "affinity, its CPU quota and NUMBA_NUM_THREADS), got 2")
        assert out.splitlines() == ["1", f"n: {why}", "2"], (name, out)
        assert err.strip().splitlines() == [f"fastnn train: error: argument --threads: {why}"
                                            ], (name, err)

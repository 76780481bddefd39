"""Where the test suite's time goes: every numba compile and each test's CPU, logged.

    mkdir /tmp/prof && NUMBA_CACHE_DIR=$(mktemp -d) SUITE_PROFILE=/tmp/prof \\
        PYTHONPATH=benchmarks/suite_profile pytest -p suite_profile
    python benchmarks/suite_profile/suite_profile.py /tmp/prof

``sitecustomize.py`` beside this file loads it into every Python process started with that
PYTHONPATH (the xdist workers and the tests' subprocesses), and it appends a line to
``compiles.jsonl`` for each true numba compile (numba's ``numba:compile`` event, a cache
miss: thread CPU time, wall time, the function, its closure's constants, a digest of its
argument types, the test running, the process and thread). ``-p suite_profile`` adds
``tests.jsonl``: each test's wall time and CPU (its process's and reaped children's).
CPU is the figure to compare on a loaded machine; wall times follow the load. Run as a
script, it prints the compiles by kernel (and those compiled more than once), and the
files' CPU and their order on the workers. (A folder without ``__init__.py``: asv does
not import it. pytest warns that it cannot rewrite this module's asserts: it has none.)
"""

import hashlib
import json
import os
import sys
import threading
import time
from collections import Counter, defaultdict

FOLDER = os.environ.get("SUITE_PROFILE")
_depth = threading.local()


def _write(name, record):
    with open(os.path.join(FOLDER, name), "a") as f:
        f.write(json.dumps(record) + "\n")


def install():
    """Log numba's compiles in this process (from sitecustomize)."""
    from numba.core import event

    class Listener(event.Listener):
        def on_start(self, ev):
            ev.data["_start"] = (time.perf_counter(), time.thread_time())
            ev.data["_depth"] = getattr(_depth, "d", 0)
            _depth.d = ev.data["_depth"] + 1

        def on_end(self, ev):
            _depth.d -= 1
            wall, cpu = ev.data["_start"]
            py = ev.data["dispatcher"].py_func
            cells = [c.cell_contents for c in (py.__closure__ or ())
                     if isinstance(c.cell_contents, (bool, int, str))]
            _write("compiles.jsonl", dict(
                test=os.environ.get("PYTEST_CURRENT_TEST", "(none)").split(" (")[0],
                worker=os.environ.get("PYTEST_XDIST_WORKER", "main"), pid=os.getpid(),
                thread=threading.current_thread().name, depth=ev.data["_depth"],
                fn=f"{py.__module__}.{py.__qualname__}", cells=repr(cells)[:40],
                sig=hashlib.md5(str(ev.data["args"]).encode()).hexdigest()[:8],
                wall=time.perf_counter() - wall, cpu=time.thread_time() - cpu))

    event.register("numba:compile", Listener())


def _cpu():
    import resource

    own, children = (resource.getrusage(who) for who in
                     (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


try:
    import pytest
except ImportError:  # (a subprocess without pytest: the compile log alone)
    pytest = None

if pytest is not None:
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item, nextitem):
        start, cpu = time.perf_counter(), _cpu()
        yield
        if FOLDER:
            _write("tests.jsonl", dict(test=item.nodeid, start=start,
                                       worker=os.environ.get("PYTEST_XDIST_WORKER", "main"),
                                       wall=time.perf_counter() - start, cpu=_cpu() - cpu))


def report(folder):
    def read(name):
        path = os.path.join(folder, name)
        return [json.loads(line) for line in open(path)] if os.path.exists(path) else []

    compiles = [r for r in read("compiles.jsonl") if r["depth"] == 0]  # (nested: inside)
    kernels = defaultdict(list)
    for r in compiles:
        kernels[r["fn"], r["cells"], r["sig"]].append(r)
    twice = sum(sum(r["cpu"] for r in rs) * (len(rs) - 1) / len(rs) for rs in kernels.values())
    print(f"{len(compiles)} compiles, {sum(r['cpu'] for r in compiles):.1f} CPU-s; "
          f"compiled more than once: {twice:.1f} CPU-s")
    by_cpu = sorted(kernels.items(), key=lambda kv: -sum(r["cpu"] for r in kv[1]))
    for (fn, cells, _), rs in by_cpu[:25]:
        files = sorted({r["test"].split("::")[0].replace("tests/", "") for r in rs})
        print(f"{sum(r['cpu'] for r in rs):7.1f} x{len(rs)} {fn.split('.', 2)[-1][:44]:44} "
              f"{cells[:24]:24} {' '.join(files)}")
    tests = read("tests.jsonl")
    if tests:
        t0 = min(r["start"] for r in tests)
        files = defaultdict(lambda: dict(wall=0.0, cpu=0.0, n=0, start=1e300))
        for r in tests:
            f = files[r["test"].split("::")[0]]
            f.update(wall=f["wall"] + r["wall"], cpu=f["cpu"] + r["cpu"], n=f["n"] + 1,
                     start=min(f["start"], r["start"] - t0), worker=r["worker"])
        ends = Counter()
        for r in tests:
            ends[r["worker"]] = max(ends[r["worker"]], r["start"] - t0 + r["wall"])
        print(f"tests: {sum(r['cpu'] for r in tests):.1f} CPU-s; workers' last test ended at "
              + ", ".join(f"{w} {s:.1f} s" for w, s in sorted(ends.items())))
        for name, f in sorted(files.items(), key=lambda kv: kv[1]["start"]):
            print(f"{f['worker']:>5} from {f['start']:6.1f} s  wall {f['wall']:6.1f}  "
                  f"CPU {f['cpu']:6.1f}  {f['n']:4} tests  {name}")


if __name__ == "__main__":
    report(sys.argv[1])

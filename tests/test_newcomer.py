"""What a newcomer meets on the command line: one line naming the option, exit code 2 for
usage errors, nothing written after a long training that could not be saved, defaults
in --help, a model that remembers its data set, warnings that say what went wrong."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fastnn import train as train_module
from fastnn.cli import main
from fastnn.plot import _accuracy_limits


def run(argv, capsys):
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("argv, message", [
    (["--batch-size", "5000"], "--batch-size: expected at most the number of training samples"),
    (["--seed", "-1"], "argument --seed: expected a non-negative integer, got -1"),
    (["--hidden", ""], "--hidden: expected comma-separated positive integers"),
    (["--hidden", "12,,3"], "--hidden: expected comma-separated positive integers"),
    (["--init", "-2"], "--init: expected a positive finite number"),
    (["--eval-every", "0"], "argument --eval-every: expected a positive int"),
])
def test_usage_errors_name_the_option_and_exit_2(argv, message, capsys):
    rc, out, err = run(["train", "--epochs", "1", "--quiet", *argv], capsys)
    assert rc == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_save_and_plot_paths_are_checked_before_training(tmp_path, capsys):
    folder = tmp_path / "models"
    folder.mkdir()
    for argv, message in [
        (["--save", f"{folder}/"], "is a folder; give a file name such as"),
        (["--save", str(tmp_path / "missing" / "m.npz")], "--save: the folder"),
        (["--plot", str(tmp_path / "missing" / "c.png")], "--plot: the folder"),
        (["--plot", str(tmp_path / "c.bmpx")], "--plot: unknown picture format '.bmpx'"),
    ]:
        rc, out, err = run(["train", "--epochs", "200", *argv], capsys)
        assert rc == 2 and message in err, err
        assert "iter" not in out  # refused before any training
    assert list(folder.iterdir()) == [] and list(tmp_path.glob("*.tmp")) == []


def test_plot_format_follows_the_extension(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    jpg, svg = tmp_path / "c.jpg", tmp_path / "c.svg"
    assert run(["train", "--epochs", "2", "--quiet", "--plot", str(jpg)], capsys)[0] == 0
    assert jpg.read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, not PNG bytes
    assert run(["train", "--dataset", "sine", "--epochs", "20", "--eval-every", "63",
                "--quiet", "--plot", str(svg)], capsys)[0] == 0
    assert b"<svg" in svg.read_bytes()[:400]


def test_accuracy_axis_zooms_to_the_data():
    low, high = _accuracy_limits([0.84, 0.9, 0.97, 1.0])
    assert 0.7 < low < 0.84 and high == 1.0
    assert _accuracy_limits([]) == (0.0, 1.0)


def test_a_growing_loss_is_reported(capsys):
    rc, out, err = run(["train", "--lr", "1000", "--epochs", "3", "--quiet"], capsys)
    assert rc == 0
    assert "warning: the training loss grew from" in err and "--lr" in err
    rc, out, err = run(["train", "--epochs", "3", "--quiet", "--json"], capsys)
    assert "warning" not in err and "warning" not in json.loads(out)


def test_small_losses_keep_significant_digits(capsys):
    rc, out, _ = run(["train", "--dataset", "sine", "--epochs", "300", "--eval-every", "630",
                      "--quiet"], capsys)
    value = out.split("train loss ")[1].split()[0]
    assert float(value) > 0 and len(value.strip("0.")) >= 4, out


def test_evaluate_uses_the_data_set_the_model_was_trained_on(tmp_path, capsys):
    model = tmp_path / "sine.npz"
    assert run(["train", "--dataset", "sine", "--epochs", "5", "--eval-every", "63",
                "--quiet", "--save", str(model)], capsys)[0] == 0
    rc, out, err = run(["evaluate", str(model), "--json"], capsys)
    assert rc == 0 and json.loads(out)["dataset"] == "sine"
    rc, out, err = run(["evaluate", str(model), "--dataset", "digits"], capsys)
    assert rc == 2 and "it was trained on sine" in err
    import fastnn

    assert fastnn.load(model).metadata["dataset"] == "sine"


def test_help_shows_the_defaults_and_the_per_data_set_table(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "(default: 0)" in out
    assert "default sgd, adam for the convnets" in " ".join(out.split())  # (wrapped)
    assert "per-data-set defaults" in out and "sine" in out and "2001" in out
    assert "--model simple-convnet / deep-convnet" in out


def test_bench_help_is_plain_text():
    """The checkout's own fastnn (run from its root, as a developer without an editable
    install would), whose benchmarks/ is beside it."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"}  # (the conftest's)
    out = subprocess.run([sys.executable, "-m", "fastnn.cli", "bench", "--help"], cwd=root,
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "``" not in out.stdout and "fastnn bench" in out.stdout


def test_bench_of_an_installed_package_says_where_the_benchmarks_are(tmp_path):
    """The installed fastnn: where it is a checkout (an editable install) `bench` runs
    its benchmarks; where it is not (a wheel), one clear error saying what to run."""
    import fastnn

    here = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
    in_checkout = os.path.isfile(os.path.join(here, "benchmarks", "compare.py"))
    out = subprocess.run([sys.executable, "-m", "fastnn.cli", "bench", "--help"], cwd=tmp_path,
                         capture_output=True, text=True)
    if in_checkout:
        assert out.returncode == 0 and "fastnn bench" in out.stdout, out.stderr
    else:
        assert out.returncode == 2 and out.stdout == ""
        assert "source checkout" in out.stderr and "pip install -e ." in out.stderr


def test_training_says_when_it_compiles(monkeypatch, capsys):
    import fastnn

    monkeypatch.setattr(train_module, "COMPILE_NOTICE_SECONDS", 0.0)
    from fastnn.datasets import load_digits

    x, t = load_digits()[0]
    net = fastnn.Sequential(64, [8], 10, seed=0)
    history = fastnn.fit(net, x, t, epochs=1, progress=True)
    err = capsys.readouterr().err
    assert "compiling kernels (first run only" in err
    assert "it]" in err or "it/s" in err  # the bar ...
    assert err.index("compiling kernels") < err.index("%|")  # ... started after the notice
    assert history.compile_seconds > 0 and history.initial_loss > 0


def test_the_python_api_says_once_when_a_first_call_compiles(monkeypatch, capsys):
    """A first call that takes longer than a second (compiling) is announced on stderr,
    once per process; fit() announces its own warm-up instead."""
    import fastnn
    from fastnn import engine

    monkeypatch.setattr(engine, "FIRST_USE_NOTICE_SECONDS", 0.0)
    monkeypatch.setattr(engine, "_noticed", False)
    x, t = np.random.default_rng(0).random((8, 5)), np.arange(8) % 3

    def slow(*args, **kwargs):  # a first call that takes a while, as a compile does
        import time

        time.sleep(0.2)
        return real(*args, **kwargs)

    net = fastnn.Sequential(5, [4], 3, seed=0)
    real = net.engine.backend.gradient
    monkeypatch.setattr(net.engine, "backend", type("Slow", (), {"gradient": staticmethod(slow)}))
    net.gradient(x, t)
    assert capsys.readouterr().err.count("compiling kernels") == 1
    monkeypatch.setattr(net.engine, "backend", fastnn.kernels)
    other = fastnn.Sequential(5, [4], 3, seed=1)
    other.gradient(x, t)
    other.predict(x)
    assert "compiling" not in capsys.readouterr().err  # once per process
    monkeypatch.setattr(engine, "_noticed", False)
    fastnn.fit(fastnn.Sequential(5, [4], 3, seed=2), x, t, batch_size=4, epochs=1,
               progress=False)
    assert "compiling" not in capsys.readouterr().err  # fit's warm-up: its own rule


class _ImmediateTimer:
    """A threading.Timer that fires at start(): a compile notice's delay made
    deterministic (the block it guards is shorter than any thread's start-up here)."""

    def __init__(self, seconds, function):
        self.function = function

    def start(self):
        self.function()

    def cancel(self):
        pass


def test_readmes_first_example_announces_its_compile_once(monkeypatch, capsys):
    """README's first example, as written there (fewer iterations): its first call is
    announced once, whatever calls follow; the first call took more than a second there
    (compiling: about 7 s quiet, 27 s busy), here the delay is made zero."""
    import re
    import types
    from pathlib import Path

    from fastnn import engine

    readme = Path(__file__).resolve().parents[1] / "README.md"
    code = re.search(r"```python\n(.*?)```", readme.read_text(), re.S).group(1)
    assert "network.gradient(" in code and "range(3000)" in code
    monkeypatch.setattr(engine, "_noticed", False)
    monkeypatch.setattr(engine, "threading", types.SimpleNamespace(
        **{**vars(engine.threading), "Timer": _ImmediateTimer}))
    exec(compile(code.replace("range(3000)", "range(20)"), str(readme), "exec"), {})
    out, err = capsys.readouterr()
    assert err == engine.COMPILE_MESSAGE + "\n" and out.startswith("test acc")


def test_each_kind_of_network_announces_its_first_compile_once(monkeypatch, capsys):
    """The plain network, the book's extended one and a convnet: the first call of each
    (in a process that has said nothing yet) is announced once, the calls after it are
    not (the notice's delay made zero: every first call counts as slow)."""
    import types

    import fastnn
    from fastnn import engine

    monkeypatch.setattr(engine, "threading", types.SimpleNamespace(
        **{**vars(engine.threading), "Timer": _ImmediateTimer}))
    rng = np.random.default_rng(0)
    x, t = rng.random((4, 64)), np.arange(4) % 3
    images = rng.random((4, 1, 8, 8))
    nets = [(fastnn.Sequential(64, [5], 3, seed=0), x),
            (fastnn.MultiLayerNetExtend(64, [5], 3, use_batchnorm=True, seed=0), x),
            (fastnn.SimpleConvNet((1, 8, 8), {"filter_num": 2, "filter_size": 3, "pad": 0,
                                              "stride": 1}, 4, 3, seed=0), images)]
    for net, inputs in nets:
        monkeypatch.setattr(engine, "_noticed", False)  # (as in a fresh process)
        net.predict(inputs)
        net.gradient(inputs, t)
        net.accuracy(inputs, t)
        assert capsys.readouterr().err == engine.COMPILE_MESSAGE + "\n", type(net).__name__


def _probe(module: str):
    """A new compiled function that says it is from ``module`` (its first call compiles)."""
    import numba

    def probe(a):
        return a + 1

    probe.__module__ = module
    return numba.njit(probe)


def test_compiles_outside_an_engine_are_announced_once(monkeypatch, capsys):
    """The layer objects and the per-op functions reach the kernels without an engine:
    numba's compile events announce a long compile of fastnn's kernels there, once
    (the delay made zero); not inside a block with its own notice, not in the background
    compile thread, never another library's compiles."""
    import threading
    import types

    from fastnn import engine

    monkeypatch.setattr(engine, "threading", types.SimpleNamespace(
        **{**vars(engine.threading), "Timer": _ImmediateTimer}))
    monkeypatch.setattr(engine, "_noticed", False)  # (as in a fresh process)
    with engine.compile_notice(0.0, show=False):  # fit's warm-up, the command line
        _probe("fastnn.kernels.probe")(1)
    background = threading.Thread(target=_probe("fastnn.kernels.probe"), args=(1,),
                                  name="fastnn-compile")
    background.start()
    background.join()
    _probe("someone_elses.module")(1)
    assert capsys.readouterr().err == ""
    _probe("fastnn.kernels.probe")(1)
    _probe("fastnn.kernels.probe")(2.0)
    assert capsys.readouterr().err == engine.COMPILE_MESSAGE + "\n"


def test_a_layer_objects_first_compile_is_announced_once():
    """A layer object's first calls in a fresh process without a kernel cache (their
    kernels compile: numba sends its compile events; a load from the cache sends none,
    and is fast), the delay made zero: one notice on stderr for all of them."""
    code = "\n".join([
        "import types, numpy as np, fastnn",
        "from fastnn import engine",
        "class Now:",
        "    def __init__(self, seconds, function): self.function = function",
        "    def start(self): self.function()",
        "    def cancel(self): pass",
        "engine.threading = types.SimpleNamespace(**{**vars(engine.threading), 'Timer': Now})",
        "layer, x = fastnn.Relu('numba'), np.linspace(-1, 1, 6).reshape(2, 3)",
        "layer.forward(x); layer.backward(x); layer.forward(x.astype(np.float32))"])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, FASTNN_NUMBA_CACHE="0"))
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("compiling kernels") == 1, done.stderr


def test_warmup_shows_a_progress_line_for_each_variant(monkeypatch, capsys):
    """`fastnn warmup` says as each variant is ready, then that it is done (the compiling
    processes replaced by stand-ins that take no time)."""
    import types

    from fastnn.kernels import _cache

    from fastnn import warmup_kernels as W

    if not _cache.ENABLED or _cache.usable_folder() is None:
        pytest.skip("no kernel cache here: warmup has nothing to do")
    ran = []
    monkeypatch.setattr(W, "_run_process", lambda variant, dtype: ran.append(variant) or 0.25)
    monkeypatch.setattr(W, "subprocess", types.SimpleNamespace(run=lambda *a, **k: None))
    assert main(["warmup", "--dtype", "float32", "--processes", "1"]) == 0
    lines = capsys.readouterr().err.splitlines()
    k = len(W.VARIANTS)
    assert lines[:k] == [f"warmup: {n}/{k} {v} kernels (float32) ready in 0.2 s"
                         for n, v in enumerate(W.VARIANTS, 1)] and ran == list(W.VARIANTS)
    assert lines[k].startswith("warmup: done in ") and len(lines) == k + 1


def test_warmup_runs_every_variant_and_refuses_bad_arguments(monkeypatch, capsys):
    """Each variant's workload runs: every one in numba's pure-Python mode (a subprocess:
    each line of each workload, with no compiling), and the network's compiled here (the
    variant every command needs; the kernels of the others are compiled by their own
    tests: test_chapter6, test_kernels, test_parallel_bits, test_convnet). ``fastnn
    warmup`` runs them in parallel processes. Bad arguments are one clear error; without
    a cache it says so."""
    from fastnn.kernels import _cache

    import fastnn
    from fastnn import warmup_kernels as W

    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    code = ("from fastnn.warmup_kernels import run_variant, VARIANTS\n"
            "from fastnn.kernels import optim\n"
            "blocks = []  # (the optimizers' update in blocks: its runner's calls, recorded)\n"
            "optim._run_update = lambda nb, threads, args: blocks.append(nb)\n"
            "for v in VARIANTS:\n"
            "    run_variant(v, 'float32')\n"
            "    print(v, max(blocks, default=1))\n"
            "    blocks.clear()\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    ran = dict(line.split() for line in out.stdout.splitlines())
    assert list(ran) == list(W.VARIANTS)
    assert ran["extended"] == "2"  # a large network's update, in blocks
    if fastnn.threads.usable_cores() > 1:
        assert ran["parallel"] == "2"  # (and on threads: the parallel variant)
    W.run_variant("network", "float32")
    with pytest.raises(ValueError, match="variant: expected one of"):
        W.run_variant("lenet", "float64")
    with pytest.raises(ValueError, match="dtypes"):
        fastnn.warmup("float16")
    with pytest.raises(ValueError, match="processes: expected a positive integer"):
        fastnn.warmup(processes=0)
    monkeypatch.setattr(_cache, "ENABLED", False)
    assert fastnn.warmup() == {}
    assert "the kernel cache is off here" in capsys.readouterr().err
    assert main(["warmup", "--dtype", "float32", "--quiet"]) == 0  # (nothing to do)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(dtypes="float16"), ValueError, "dtypes: expected np.float32 or np.float64"),
    (dict(dtypes=["float32", "x"]), ValueError, "dtypes: expected np.float32 or np.float64"),
    (dict(dtypes=[]), ValueError, "dtypes: expected at least one"),
    (dict(dtypes=None), TypeError, "dtypes: expected 'float32', 'float64' or a sequence"),
    (dict(dtypes=5), TypeError, "dtypes: expected 'float32', 'float64' or a sequence"),
    (dict(processes=0), ValueError, "processes: expected a positive integer, got 0"),
    (dict(processes=1.5), TypeError, "processes: expected a positive integer"),
    (dict(processes="2"), TypeError, "processes: expected a positive integer"),
    (dict(progress="no"), TypeError, "progress: expected True or False, got 'no'"),
])
def test_warmup_refuses_bad_arguments_before_it_compiles(kwargs, exc, match, monkeypatch):
    import fastnn
    from fastnn import warmup_kernels as W

    monkeypatch.setattr(W, "_run_process", lambda *job: pytest.fail(f"{job} ran"))
    with pytest.raises(exc, match=match):
        fastnn.warmup(**kwargs)


@pytest.mark.parametrize("argv, why", [
    (["--processes", "0"], "argument --processes: expected a positive integer, got 0"),
    (["--processes", "two"], "argument --processes: expected a positive integer"),
    (["--processes", "1.5"], "argument --processes: expected a positive integer"),
    (["--dtype", "float16"], "argument --dtype: invalid choice: 'float16'"),
])
def test_warmup_command_refuses_bad_options_in_one_line(argv, why, monkeypatch, capsys):
    from fastnn import warmup_kernels as W

    monkeypatch.setattr(W, "_run_process", lambda *job: pytest.fail(f"{job} ran"))
    assert main(["warmup", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"fastnn warmup: error: {why}")


def test_warmup_takes_dtypes_as_numpy_does_each_once(monkeypatch, capsys):
    """``fastnn.warmup(np.float32)``, a dtype object, or a name given twice: each dtype's
    variants compile once (the compiling processes replaced by stand-ins)."""
    import types

    from fastnn.kernels import _cache

    import fastnn
    from fastnn import warmup_kernels as W

    if not _cache.ENABLED or _cache.usable_folder() is None:
        pytest.skip("no kernel cache here: warmup has nothing to do")
    monkeypatch.setattr(W, "_run_process", lambda variant, dtype: 0.0)
    monkeypatch.setattr(W, "subprocess", types.SimpleNamespace(run=lambda *a, **k: None))
    for dtypes in (np.float32, np.dtype("float32"), ["float32", np.float32]):
        assert set(fastnn.warmup(dtypes, progress=False)) == {(v, "float32")
                                                             for v in W.VARIANTS}
    assert capsys.readouterr().err == ""  # (progress=False: quiet)


def test_every_subpackage_is_installed():
    """pyproject's package list names every folder of fastnn/ with an __init__.py (a
    `pip install .` leaves out the rest, which an editable install would hide)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    text = (root / "pyproject.toml").read_text()
    listed = set(re.findall(r'"(fastnn[\w.]*)"', re.search(r"packages = \[(.*?)\]", text).group(1)))
    found = {"fastnn." + p.parent.name for p in (root / "fastnn").glob("*/__init__.py")}
    assert found | {"fastnn", "fastnn.kernels"} <= listed

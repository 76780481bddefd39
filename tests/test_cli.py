"""The fastnn command, run as a subprocess the way a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# the installed console script, as a user runs it (next to this Python's executable)
_SCRIPT = Path(sys.executable).with_name("fastnn")
FASTNN = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "fastnn.cli"]


def run(*args, cwd=None):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([*FASTNN, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)


def test_module_entry_point_works_from_the_repository_root():
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-m", "fastnn.cli", "train", "--dataset", "sine",
                          "--epochs", "2", "--quiet"], capture_output=True, text=True, cwd=root,
                         timeout=600)
    assert out.returncode == 0, out.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    result = run("train", "--save", "model.npz", "--plot", "curves.png", cwd=folder)
    return folder, result


def test_train_defaults_reach_97_percent_on_digits(trained):
    folder, result = trained
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("train acc ") and ", test acc " in last and "s/iter" in last
    assert "compiling" in last
    test_acc = float(last.split("test acc ")[1].split()[0].rstrip(","))
    assert test_acc >= 0.97
    assert "iter " in result.stdout  # a line per evaluation
    png = (folder / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_same_numbers_and_json(trained):
    _, first = trained
    again = run("train", "--json")
    summary = json.loads(again.stdout)
    numbers = first.stdout.strip().splitlines()[-1].split(" |")[0]
    assert numbers == f"train acc {summary['train_acc']:.4f}, test acc {summary['test_acc']:.4f}"
    assert summary["dataset"] == "digits" and summary["iterations"] > 0


def test_evaluate_a_saved_model(trained):
    folder, result = trained
    out = run("evaluate", str(folder / "model.npz"))
    assert out.returncode == 0, out.stderr
    test_acc = result.stdout.strip().splitlines()[-1].split("test acc ")[1].split()[0].rstrip(",")
    assert out.stdout.startswith("test loss ") and out.stdout.strip().endswith(f"test acc {test_acc}")


def test_sine_workload_runs():
    out = run("train", "--dataset", "sine", "--epochs", "30", "--quiet")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("train loss ")


@pytest.mark.parametrize("args, message", [
    (["train", "--lr", "-1"], "--lr: expected a positive finite number, got -1.0"),
    (["train", "--hidden", "12,x"], "--hidden: expected comma-separated positive integers"),
    (["train", "--dataset", "cifar"], "invalid choice: 'cifar'"),
    (["train", "--epochs", "2", "--iters", "3"], "not allowed with argument"),
    (["train", "--dataset", "mnist", "--data-dir", "."], "mnist: train-images-idx3-ubyte.gz"),
    (["evaluate", "nothing.npz"], "nothing.npz: no such model file"),
    (["train", "--save", "no/such/folder/m.npz", "--epochs", "1"], "--save: the folder no/such/folder does not exist"),
    ([], "the following arguments are required: command"),
])
def test_errors_are_one_clear_line(args, message, tmp_path, monkeypatch, capsys):
    # in this process (a subprocess per case cost 2 s each); the one below runs the command
    from fastnn import cli

    monkeypatch.chdir(tmp_path)
    try:
        code = cli.main(args)
    except SystemExit as stop:  # argparse's own errors
        code = stop.code
    assert code not in (0, None)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err


def test_an_error_is_one_clear_line_from_the_command_itself(tmp_path):
    out = run("train", "--lr", "-1", cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "--lr: expected a positive finite number, got -1.0" in lines[0]
    assert "Traceback" not in out.stderr


def test_bench_launches_the_checkouts_script_or_says_why_not(tmp_path, monkeypatch, capsys):
    from fastnn import cli

    monkeypatch.setattr(cli, "__file__", str(tmp_path / "fastnn" / "cli.py"))
    assert cli.main(["bench", "--quick"]) == 2
    assert "benchmarks are part of a source checkout" in capsys.readouterr().err
    script = tmp_path / "benchmarks" / "compare.py"
    script.parent.mkdir()
    script.write_text("import sys\nsys.exit(7 if sys.argv[1:] == ['--quick'] else 1)\n")
    assert cli.main(["bench", "--quick"]) == 7


def test_version_and_bare_command(capsys):
    from fastnn import __version__
    from fastnn.cli import main

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"fastnn {__version__}"
    assert main([]) == 2
    out = capsys.readouterr().out
    assert out.startswith("usage: fastnn") and "train" in out and "evaluate" in out


def test_option_errors_come_from_the_library_checkers_without_parsing():
    """The option types are the library's checkers through one adapter, and a library
    error names its argument as an attribute, which the command maps to the option."""
    from fastnn import _validation as V
    from fastnn.cli_options import as_option_error, option

    with pytest.raises(Exception, match="expected a positive integer, got 0"):
        option(V.check_positive_int, int)("0")
    error = as_option_error(V.BadValue("weight_decay_lambda", "expected a non-negative "
                                       "finite number, got -1"))
    assert str(error) == "--weight-decay: expected a non-negative finite number, got -1"
    assert str(as_option_error(V.BadType("batch_size", "x"))) == "--batch-size: x"
    assert as_option_error(V.BadValue("x_train", "y")) is None  # not an option

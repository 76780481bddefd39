"""The command line's data sets: what a saved model remembers, what a wrong folder gets."""

import warnings

from test_datasets import fake_set, small_real_set

from fastnn import datasets
from fastnn.cli import main


def test_evaluate_finds_the_folder_the_model_was_trained_from(tmp_path, monkeypatch, capsys):
    fake_set(tmp_path / "idx")
    model = tmp_path / "model.npz"
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--dataset", "mnist", "--data-dir", "idx", "--iters", "2",
                 "--batch-size", "4", "--hidden", "8", "--quiet", "--save", str(model)]) == 0
    monkeypatch.chdir(tmp_path / "idx")  # a relative --data-dir was recorded as absolute
    monkeypatch.setitem(datasets.MIRRORS, "mnist", [])  # offline
    capsys.readouterr()
    assert main(["evaluate", str(model), "--json"]) == 0
    assert '"dataset": "mnist"' in capsys.readouterr().out
    # the folder gone: the usual lookup, whose advice names no `fastnn train`
    (tmp_path / "idx").rename(tmp_path / "moved")
    assert main(["evaluate", str(model)]) == 1
    err = capsys.readouterr().err
    assert "fastnn train" not in err and "--data-dir" in err and "\n" == err[-1]


def test_fashion_files_are_refused_as_mnist(tmp_path, monkeypatch, capsys):
    small_real_set(monkeypatch, tmp_path)
    assert main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--iters", "1",
                 "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fastnn: error: ") and err.count("\n") == 1
    assert "Fashion-MNIST's train images file, not MNIST's" in err
    assert "--dataset fashion-mnist" in err


def test_a_skipped_data_file_is_one_warning_line(monkeypatch):
    from fastnn import cli

    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)
    cli._one_line_dataset_warnings()
    line = warnings.formatwarning(datasets.DatasetWarning("skipping /x: corrupt"),
                                  datasets.DatasetWarning, "datasets.py", 1)
    assert line == "fastnn: warning: skipping /x: corrupt\n"
    assert "UserWarning" in warnings.formatwarning(UserWarning("other"), UserWarning, "f.py", 1)


def test_the_summary_says_where_the_rest_of_the_time_went(capsys):
    import json
    import re

    assert main(["train", "--epochs", "1", "--hidden", "8", "--quiet"]) == 0
    line = capsys.readouterr().out.strip()
    assert re.search(r"\| [\d.]+ s in all after start-up: loading the data [\d.]+ s, "
                     r"evaluations, saving and plotting [\d.]+ s$", line), line
    assert main(["train", "--epochs", "1", "--hidden", "8", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["wall_seconds"] >= summary["load_seconds"] + summary["train_seconds"]

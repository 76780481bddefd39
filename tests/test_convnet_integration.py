"""The convnets in everything that trains and evaluates: fit, Trainer, the book's
train_convnet.py with its imports swapped, and the command line (train, evaluate, sweep).

Small on purpose: the digits (1x8x8, or padded to 12x12) and a few iterations.
"""

import json

import book_conv
import numpy as np
import pytest
import train_convnet_job as job
from test_datasets import fake_set

import fastnn
from fastnn.cli import main

SMALL = {"filter_num": 4, "filter_size": 3, "pad": 0, "stride": 1}
DEEP_NARROW = [(4, 1), (4, 1), (6, 1), (6, 2), (8, 1), (8, 1)]  # the book's pads


@pytest.fixture(scope="module")
def images():
    """The digits as 1x8x8 images: 300 training and 100 test images."""
    (x, t), (x_test, t_test) = fastnn.datasets.load_digits(flatten=False)
    return x[:300], t[:300], x_test[:100], t_test[:100]


def simple(backend, dtype=np.float64, seed=0):
    return fastnn.SimpleConvNet((1, 8, 8), SMALL, hidden_size=16, output_size=10,
                                weight_init_std="he", backend=backend, dtype=dtype, seed=seed)


def relative_difference(a: dict, b: dict) -> float:
    return max(float(np.max(np.abs(a[k] - b[k])) / np.max(np.abs(a[k]))) for k in a)


# --- fit, evaluate -----------------------------------------------------------------------


def test_fit_trains_a_convnet_and_evaluates_it(images, backend):
    x, t, x_test, t_test = images
    net = simple(backend)
    history = fastnn.fit(net, x, t, x_test=x_test, t_test=t_test, optimizer=fastnn.Adam(0.02),
                         batch_size=50, epochs=4, seed=0, progress=False)
    assert history.path == "step" and history.iterations == 24
    assert history.test_acc[-1] > 0.4 and history.loss[-1] < 0.75 * history.initial_loss
    loss, acc = fastnn.evaluate(net, x_test, t_test)
    assert acc == history.test_acc[-1] and loss == pytest.approx(history.test_loss[-1])
    assert acc == net.accuracy(x_test, t_test)
    again = simple(backend)  # the same seeds: the same bits
    fastnn.fit(again, x, t, x_test=x_test, t_test=t_test, optimizer=fastnn.Adam(0.02),
               batch_size=50, epochs=4, seed=0, progress=False)
    np.testing.assert_array_equal(again.params.flat, net.params.flat)


def test_fit_numba_and_numpy_backends_agree(images):
    x, t, _, _ = images
    nets = {b: simple(b) for b in ("numpy", "numba")}
    for net in nets.values():
        fastnn.fit(net, x, t, optimizer="adam", batch_size=30, iters=5, seed=1, progress=False)
    np.testing.assert_allclose(nets["numba"].params.flat, nets["numpy"].params.flat,
                               rtol=1e-9, atol=1e-12)


def test_fit_refuses_what_a_convnet_cannot_do(images):
    x, t, _, _ = images
    net = simple("numba")
    with pytest.raises(ValueError, match="compiled: the compiled path cannot be used here: a "
                                         "convnet"):
        fastnn.fit(net, x, t, compiled=True, progress=False)
    with pytest.raises(ValueError, match="x_train"):
        fastnn.fit(net, x.reshape(300, 64), t, progress=False)  # rows, not images
    with pytest.raises(TypeError, match="net: expected a fastnn.Sequential, SimpleConvNet or "
                                        "DeepConvNet"):
        fastnn.fit(book_conv.SimpleConvNet(), x, t, progress=False)


def test_fit_stops_a_diverging_convnet_with_finite_parameters(images):
    x, t, _, _ = images
    net = simple("numpy", np.float32)
    with pytest.raises(fastnn.TrainingDiverged, match="loss became nan at iteration 2 ") as \
            caught:
        fastnn.fit(net, x, t, optimizer=fastnn.SGD(1e30), batch_size=50, iters=20, seed=0,
                   progress=False)
    assert np.all(np.isfinite(net.params.flat)) and caught.value.history is not None


# --- Trainer and the book's scripts ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["deep"])  # (SimpleConvNet's: tests/test_convnet.py)
def test_trainer_gives_the_books_numbers(kind, backend):
    """The book's Trainer on the book's DeepConvNet (book_conv) and fastnn.Trainer on
    fastnn's, from one np.random.seed: the same parameters and accuracy lists. The
    Dropout masks of each gradient and of each batch loss afterwards (the book's loss
    runs Dropout as in training) come in the book's order, between the batch draws."""
    rng = np.random.default_rng(3)
    shape = (1, 8, 8) if kind == "simple" else (1, 12, 12)
    x, t = rng.random((100, *shape)), rng.integers(0, 10, 100)
    x_test, t_test = rng.random((100, *shape)), rng.integers(0, 10, 100)
    nets = {}
    for who in ("book", "fastnn"):
        np.random.seed(0)
        if kind == "simple":
            args = dict(input_dim=shape, conv_param=SMALL, hidden_size=16, output_size=10,
                        weight_init_std=0.1)
        else:  # (narrow: the book's 16-64 filters cost seconds here)
            args = dict(input_dim=shape, hidden_size=8, output_size=10,
                        **{f"conv_param_{i}": dict(SMALL, filter_num=n, pad=pad)
                           for i, (n, pad) in enumerate(DEEP_NARROW, start=1)})
        cls = {"simple": "SimpleConvNet", "deep": "DeepConvNet"}[kind]
        if who == "book":
            if kind == "deep":  # (book_conv takes the six conv_params as one list)
                args["conv_params"] = [args.pop(f"conv_param_{i}") for i in range(1, 7)]
            net = getattr(book_conv, cls)(**args)
            trainer = book_conv.Trainer(net, x, t, x_test, t_test, epochs=2,
                                        mini_batch_size=20, optimizer="Adam",
                                        optimizer_param={"lr": 0.01},
                                        evaluate_sample_num_per_epoch=100)
        else:
            net = getattr(fastnn, cls)(**args, backend=backend)
            trainer = fastnn.Trainer(net, x, t, x_test, t_test, epochs=2, mini_batch_size=20,
                                     optimizer="Adam", optimizer_param={"lr": 0.01},
                                     evaluate_sample_num_per_epoch=100, verbose=False)
        trainer.train()
        nets[who] = (net, trainer)
    (book, bt), (fast, ft) = nets["book"], nets["fastnn"]
    assert relative_difference(book.params, fast.params) < 1e-9
    assert ft.train_acc_list == bt.train_acc_list and ft.test_acc_list == bt.test_acc_list
    assert ft.test_acc == bt.test_acc
    # (the losses agree but where the book's log(p + 1e-7) is not the exact log: a
    # probability below ~1e-5 in the batch, as in DeepConvNet's first, untrained one)
    exact = np.array(bt.train_loss_list) < 3
    assert exact.sum() >= len(exact) - 2
    np.testing.assert_allclose(np.array(ft.train_loss_list)[exact],
                               np.array(bt.train_loss_list)[exact], rtol=1e-6)


def small_train_convnet(epochs: int) -> str:
    """The book's train_convnet.py (``job.TRAIN_CONVNET``) on 12x12 images: a smaller
    network and batch, ``epochs`` epochs; nothing else changed."""
    script = job.TRAIN_CONVNET
    for old, new in (("max_epochs = 20", f"max_epochs = {epochs}"),
                     ("input_dim=(1,28,28)", "input_dim=(1,12,12)"),
                     ("'filter_num': 30", "'filter_num': 8"),
                     ("hidden_size=100", "hidden_size=20"),
                     ("mini_batch_size=100", "mini_batch_size=20")):
        assert old in script
        script = script.replace(old, new)
    return script


def test_train_convnet_script_with_imports_swapped(images, backend, tmp_path):
    """ch07/train_convnet.py, 50 iterations on the digits padded to 12x12, float64,
    np.random.seed(0): with its imports swapped to fastnn.common it gives the book's
    parameters (relative difference < 1e-9) and the same accuracy lists, and its
    params.pkl is the book's file."""
    x, t, x_test, t_test = (a[:200] if i % 2 == 0 else a for i, a in enumerate(images))
    pad = [(0, 0), (0, 0), (2, 2), (2, 2)]
    data = (np.pad(x, pad), t[:200]), (np.pad(x_test, pad), t_test)

    def load_mnist(normalize=True, flatten=True, one_hot_label=False):
        assert not flatten
        return data

    script = small_train_convnet(epochs=5)  # 200 / 20 = 10 iterations an epoch
    book = job.run_script(script, load_mnist, 0, tmp_path)
    book_file = (tmp_path / "params.pkl").read_bytes()
    swapped = job.swap(script)
    assert swapped.count("fastnn.common.") == 2 and "from dataset.mnist" in swapped
    fast = job.run_script(swapped.replace("SimpleConvNet(", f"SimpleConvNet(backend={backend!r}, "
                                          ) if backend == "numpy" else swapped,
                          load_mnist, 0, tmp_path)
    bt, ft = book["trainer"], fast["trainer"]
    assert len(ft.train_loss_list) == 50 and len(ft.test_acc_list) == 5
    assert relative_difference(book["network"].params, fast["network"].params) < 1e-9
    assert ft.train_acc_list == bt.train_acc_list and ft.test_acc_list == bt.test_acc_list
    assert len(set(ft.test_acc_list)) > 1  # (it learned something: the lists say something)
    (tmp_path / "book.pkl").write_bytes(book_file)  # the book's file, read by fastnn
    again = fastnn.SimpleConvNet(input_dim=(1, 12, 12), conv_param={
        "filter_num": 8, "filter_size": 5, "pad": 0, "stride": 1}, hidden_size=20, seed=1)
    again.load_params(tmp_path / "book.pkl")
    assert relative_difference(book["network"].params, again.params) == 0


# --- the command line --------------------------------------------------------------------


def cli(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("model", ["simple-convnet", "deep-convnet"])
def test_train_and_evaluate_a_convnet_on_digits(model, tmp_path, capsys):
    path = tmp_path / "model.npz"
    code, out, err = cli(capsys, "train", "--model", model, "--iters", "2", "--save", str(path),
                         "--json", "--quiet")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["model"] == model and summary["iterations"] == 2
    assert summary["optimizer"].startswith("Adam(") and summary["path"] == "step"
    net = fastnn.load(path)
    assert type(net).__name__ == {"simple-convnet": "SimpleConvNet",
                                  "deep-convnet": "DeepConvNet"}[model]
    assert net.input_dim == (1, 8, 8)
    assert net.metadata["dataset_options"]["flatten"] is False
    code, out, err = cli(capsys, "evaluate", str(path), "--json")
    assert code == 0, err
    assert json.loads(out)["test_acc"] == pytest.approx(summary["test_acc"])
    code, out, err = cli(capsys, "evaluate", str(path), "--dataset", "sine")
    assert code == 2 and "--dataset: the model is a" in err


def test_simple_convnet_on_mnist_and_fashion_from_files(tmp_path, capsys, monkeypatch):
    from test_datasets import small_real_set

    mnist = tmp_path / "mnist"
    fake_set(mnist, n_train=30, n_test=10)
    code, out, err = cli(capsys, "train", "--model", "simple-convnet", "--dataset", "mnist",
                         "--data-dir", str(mnist), "--batch-size", "10", "--iters", "2",
                         "--json", "--quiet", "--save", str(tmp_path / "m.npz"))
    assert code == 0, err
    assert json.loads(out)["iterations"] == 2
    assert fastnn.load(tmp_path / "m.npz").params["W1"].shape == (30, 1, 5, 5)  # the book's
    code, out, err = cli(capsys, "evaluate", str(tmp_path / "m.npz"), "--json")
    assert code == 0, err  # (the folder it was trained from, remembered)
    code, out, err = cli(capsys, "evaluate", str(tmp_path / "m.npz"), "--dataset", "digits")
    assert code == 2 and "--dataset: digits has images of 1x8x8, the model takes 1x28x28" in err
    fashion = tmp_path / "fashion"
    small_real_set(monkeypatch, fashion)
    code, out, err = cli(capsys, "train", "--model", "simple-convnet", "--dataset",
                         "fashion-mnist", "--data-dir", str(fashion), "--batch-size", "6",
                         "--iters", "2", "--json", "--quiet")
    assert code == 0, err


@pytest.mark.parametrize("args, message", [
    (["--batchnorm"], "--batchnorm: not an option of simple-convnet"),
    (["--weight-decay", "0.1"], "--weight-decay: not an option of simple-convnet"),
    (["--dropout", "0.2"], "--dropout: not an option of simple-convnet"),
    (["--activation", "sigmoid"], "--activation: not an option of simple-convnet"),
    (["--no-bias"], "--no-bias: not an option of simple-convnet"),
    (["--hidden", "10,10"], "--hidden: simple-convnet has one hidden affine layer"),
    (["--dataset", "sine"], "--model: simple-convnet classifies images; sine has no images"),
    (["--model", "deep-convnet", "--init", "0.1"], "--init: not an option of deep-convnet"),
    (["--model", "lenet"], "argument --model: invalid choice: 'lenet'"),
])
def test_bad_convnet_options_name_the_option(args, message, capsys):
    model = [] if "--model" in args else ["--model", "simple-convnet"]
    code, _, err = cli(capsys, "train", *model, *args, "--iters", "1", "--quiet")
    assert code == 2 and message in err, err


def test_sweep_over_a_convnet(tmp_path, capsys):
    code, out, err = cli(capsys, "sweep", "--model", "simple-convnet", "--trials", "2",
                         "--iters", "2", "--workers", "1", "--json", "--quiet",
                         "--save", str(tmp_path / "best.npz"))
    assert code == 0, err
    result = json.loads(out)
    assert [r["status"] for r in result["trials"]] == ["ok", "ok"]
    assert [list(r["params"]) for r in result["trials"]] == [["lr"], ["lr"]]  # Adam's lr only
    assert isinstance(fastnn.load(tmp_path / "best.npz"), fastnn.SimpleConvNet)
    code, _, err = cli(capsys, "sweep", "--model", "simple-convnet", "--search",
                       "weight-decay=1e-6:1e-3:log", "--trials", "1", "--iters", "1",
                       "--workers", "1")
    assert code == 2 and "--search: weight-decay is not an option of simple-convnet" in err

"""The book's ``ch07/train_convnet.py`` job on the real Fashion-MNIST: the book's code, then
fastnn with only the imports swapped, then fastnn in float32.

The job (chapter 7's script): a ``SimpleConvNet`` (30 5x5 filters, hidden 100) trained
by the book's ``Trainer`` for 20 epochs of batch 100 (12,000 iterations) with Adam at lr
0.001, train and test accuracy on the first 1,000 rows of each set every epoch
(``evaluate_sample_num_per_epoch=1000``), the whole test set at the end, then
``network.save_params("params.pkl")``. ``TRAIN_CONVNET`` below is that script, written
for fastnn from the book; it runs here three ways, from the same ``np.random.seed``:

1. as the book has it: ``simple_convnet`` and ``common.trainer`` are the book-style
   baselines of ``book_conv.py``;
2. with its imports swapped to ``fastnn.common.simple_convnet`` and
   ``fastnn.common.trainer`` (nothing else changed): the same accuracy lists and
   parameters (float64) as 1;
3. fastnn's ``SimpleConvNet(..., dtype=np.float32)`` under the same Trainer.

``dataset.mnist.load_mnist`` is Fashion-MNIST's loader in all three (the job's data:
``fastnn.datasets.load_fashion_mnist``, ``--data-dir`` or the usual lookup; ``apt-get
install dataset-fashion-mnist`` installs it offline under /usr/share/datasets). It prints
each run's wall time, final test accuracy and the agreement of 1 and 2. The full job is
long (the book's code: 20-100 minutes here); ``--epochs 1 --train-rows 5000`` is a short
form::

    python benchmarks/train_convnet_job.py                   # all three, 20 epochs
    python benchmarks/train_convnet_job.py --skip-book       # fastnn's two runs only
    python benchmarks/train_convnet_job.py --epochs 1 --train-rows 5000 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import types

import numpy as np

if __package__:  # imported as benchmarks.train_convnet_job
    from . import book_conv
else:  # run as a script (or by the tests): benchmarks/ is on sys.path
    import book_conv

# The book's ch07/train_convnet.py (its plotting left out): the text that runs both ways.
TRAIN_CONVNET = """\
import numpy as np
from dataset.mnist import load_mnist
from simple_convnet import SimpleConvNet
from common.trainer import Trainer

(x_train, t_train), (x_test, t_test) = load_mnist(flatten=False)

max_epochs = 20

network = SimpleConvNet(input_dim=(1,28,28),
                        conv_param = {'filter_num': 30, 'filter_size': 5, 'pad': 0, 'stride': 1},
                        hidden_size=100, output_size=10, weight_init_std=0.01)

trainer = Trainer(network, x_train, t_train, x_test, t_test,
                  epochs=max_epochs, mini_batch_size=100,
                  optimizer='Adam', optimizer_param={'lr': 0.001},
                  evaluate_sample_num_per_epoch=1000)
trainer.train()

network.save_params("params.pkl")
print("Saved Network Parameters!")
"""


def swap(script: str) -> str:
    """The swap a learner makes: the network and the Trainer from fastnn's copy of the
    book's modules (README, "The book's code on fastnn")."""
    return script.replace("from simple_convnet import",
                          "from fastnn.common.simple_convnet import").replace(
        "from common.", "from fastnn.common.")


def book_modules(load_mnist) -> dict:
    """The modules the book's script imports, made of the book-style baselines, and
    ``dataset.mnist`` giving ``load_mnist`` (the data of this run)."""
    names = {
        "dataset": {}, "dataset.mnist": {"load_mnist": load_mnist},
        "simple_convnet": {"np": np, "SimpleConvNet": book_conv.SimpleConvNet},
        "common": {}, "common.trainer": {"np": np, "Trainer": book_conv.Trainer},
    }
    modules = {}
    for name, contents in names.items():
        module = types.ModuleType(name)
        module.__dict__.update(contents)
        modules[name] = module
    return modules


@contextlib.contextmanager
def importable(modules: dict):
    """``modules`` importable by name for the duration (sys.modules restored after)."""
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def run_script(script: str, load_mnist, seed: int, folder) -> dict:
    """Seed NumPy, run ``script`` in ``folder`` (its params.pkl goes there) with
    ``load_mnist`` as its data; returns the script's globals and its wall time (the data
    loading included, as the book's script has it: here the data are already loaded)."""
    namespace = {"__name__": "__main__"}
    here = os.getcwd()
    np.random.seed(seed)
    start = time.perf_counter()
    try:
        os.chdir(folder)
        with importable(book_modules(load_mnist)), contextlib.redirect_stdout(sys.stderr):
            exec(compile(script, "train_convnet.py", "exec"), namespace)
    finally:
        os.chdir(here)
    namespace["seconds"] = time.perf_counter() - start
    return namespace


def run_float32(data, seed: int, epochs: int) -> dict:
    """The job with fastnn's SimpleConvNet in float32 under fastnn's Trainer."""
    import fastnn

    (x, t), (x_test, t_test) = data
    np.random.seed(seed)
    network = fastnn.SimpleConvNet(input_dim=(1, 28, 28), hidden_size=100, output_size=10,
                                   weight_init_std=0.01, dtype=np.float32)
    trainer = fastnn.Trainer(network, x, t, x_test, t_test, epochs=epochs,
                             mini_batch_size=100, optimizer="Adam",
                             optimizer_param={"lr": 0.001},
                             evaluate_sample_num_per_epoch=1000, verbose=False)
    start = time.perf_counter()
    trainer.train()
    return {"trainer": trainer, "network": network, "seconds": time.perf_counter() - start}


def warm_up() -> float:
    """Compile (or load from numba's cache) the kernels of the timed runs; seconds."""
    import fastnn

    start = time.perf_counter()
    x = np.random.default_rng(0).random((100, 1, 28, 28))
    t = np.arange(100) % 10
    for dtype in (np.float64, np.float32):
        net = fastnn.SimpleConvNet(dtype=dtype, seed=0)
        opt = fastnn.Adam(0.001)
        xd = x.astype(dtype)
        opt.update(net.params, net.gradient(xd, t))
        if hasattr(net, "train_step"):
            net.train_step(xd, t, opt)
        net.loss(xd, t)
        net.accuracy(xd, t)
    return time.perf_counter() - start


def relative_difference(a: dict, b: dict) -> float:
    """The largest over the parameters of max |a - b| / max |a|."""
    return max(float(np.max(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)))
                     / max(float(np.max(np.abs(a[k]))), 1e-300)) for k in a)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20, help="max_epochs (the book's: 20)")
    parser.add_argument("--train-rows", type=int, default=None,
                        help="train on the first N training images (the book's comment "
                             "suggests 5000 'if it takes too long'); default all 60,000")
    parser.add_argument("--seed", type=int, default=0, help="np.random.seed of every run")
    parser.add_argument("--data-dir", help="folder with Fashion-MNIST's four IDX files")
    parser.add_argument("--skip-book", action="store_true",
                        help="only fastnn's two runs (no agreement check)")
    parser.add_argument("--json", metavar="FILE", help="every number, as JSON")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs: expected a positive number, got {args.epochs}")
    if args.train_rows is not None and args.train_rows < 100:
        parser.error(f"--train-rows: expected at least 100 (one batch), got {args.train_rows}")

    from fastnn.datasets import load_fashion_mnist

    start = time.perf_counter()
    (x, t), (x_test, t_test) = load_fashion_mnist(flatten=False, data_dir=args.data_dir)
    if args.train_rows is not None:
        x, t = x[:args.train_rows], t[:args.train_rows]
    data = (x, t), (x_test, t_test)
    load_seconds = time.perf_counter() - start

    def load_mnist(normalize=True, flatten=True, one_hot_label=False):
        assert normalize and not flatten and not one_hot_label  # (the script's call)
        return data

    warm = warm_up()
    iters = int(args.epochs * max(x.shape[0] / 100, 1))
    print(f"Fashion-MNIST: {x.shape[0]:,} training + {x_test.shape[0]:,} test images, loaded "
          f"in {load_seconds:.1f} s; fastnn's kernels ready in {warm:.1f} s")
    print(f"the job: {args.epochs} epochs of batch 100 ({iters:,} iterations), Adam lr 0.001, "
          f"1,000 rows of each set evaluated per epoch (np.random.seed({args.seed}))\n")
    script = TRAIN_CONVNET.replace("max_epochs = 20", f"max_epochs = {args.epochs}")
    runs = {}
    with tempfile.TemporaryDirectory() as folder:
        if not args.skip_book:
            print("1. the book's code ...", flush=True)
            ns = run_script(script, load_mnist, args.seed, folder)
            runs["the book's code"] = ns
        print("2. the same script, imports swapped to fastnn ...", flush=True)
        runs["fastnn (imports swapped)"] = run_script(swap(script), load_mnist, args.seed,
                                                      folder)
    print("3. fastnn, float32 ...", flush=True)
    runs["fastnn float32"] = run_float32(data, args.seed, args.epochs)

    report = {"epochs": args.epochs, "iterations": iters, "train_rows": int(x.shape[0]),
              "seed": args.seed, "load_seconds": load_seconds, "warm_up_seconds": warm,
              "runs": {}}
    status = 0
    if "the book's code" in runs:
        a, f = runs["the book's code"]["trainer"], runs["fastnn (imports swapped)"]["trainer"]
        same = a.train_acc_list == f.train_acc_list and a.test_acc_list == f.test_acc_list
        diff = relative_difference(runs["the book's code"]["network"].params,
                                   runs["fastnn (imports swapped)"]["network"].params)
        print(f"\n1 and 2: accuracy lists {'equal' if same else 'DIFFERENT'} "
              f"({len(a.test_acc_list)} evaluations); parameters' largest relative "
              f"difference {diff:.1e}")
        report["equal_accuracy_lists"], report["max_relative_param_difference"] = same, diff
        status = 0 if same else 1
    base = runs.get("the book's code", {}).get("seconds")
    print("\n| run | final test acc (10,000) | last epoch's test acc (1,000) | wall time | "
          "speed-up |\n|---|---|---|---|---|")
    for name, run in runs.items():
        trainer = run["trainer"]
        speed = f"{base / run['seconds']:.2f}x" if base else "-"
        print(f"| {name} | {trainer.test_acc:.4f} | {trainer.test_acc_list[-1]:.4f} | "
              f"{run['seconds']:.1f} s | {speed} |")
        report["runs"][name] = {"seconds": run["seconds"], "test_acc": float(trainer.test_acc),
                                "train_acc_list": [float(v) for v in trainer.train_acc_list],
                                "test_acc_list": [float(v) for v in trainer.test_acc_list]}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return status


if __name__ == "__main__":
    sys.exit(main())

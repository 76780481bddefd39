"""The seed article's job on the real Fashion-MNIST: its own code, then fastnn.

"The article" is seed 000 of this project (``../shared/seeds/000_*.txt``): a Japanese blog
post that builds a deep ``Sequential`` network from scratch after *Deep Learning from
Scratch* (Affine, ReLU, softmax cross-entropy, ``weight_init_std=0.01``) and trains
784-128-128-10 on Fashion-MNIST with its own loop: batches of 1,000 drawn with
``np.random.choice``, plain SGD at lr 0.1, 10,000 iterations, the whole training and test
sets evaluated every 100 iterations. It reports 92 % train and 88 % test accuracy and
notes the overfitting.

This script runs that job three ways, from the same ``np.random.seed``:

1. the article's loop with the article's class (``book.BookSequential``, written from
   the article's description);
2. the same loop with only the import swapped: ``from fastnn import Sequential``;
3. ``fastnn.fit`` in float32 (its own batch sampling: the same job, other draws).

It prints the accuracies at each evaluation of 1 and 2 (they must be equal), the final
ones next to the article's, the wall times, and draws the article's two plots (accuracy
curves, loss). The full job takes minutes; ``--iters 300`` is a short form::

    python benchmarks/seed_article.py                       # the article's 10,000
    python benchmarks/seed_article.py --iters 300 --plot seed_article.png

The data come from ``fastnn.datasets.load_fashion_mnist`` (``--data-dir``, or the usual
lookup: ``apt-get install dataset-fashion-mnist`` installs them offline).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

if __package__:  # imported by asv's discovery as benchmarks.seed_article
    from .book import BookSequential
else:  # run as a script: benchmarks/ is on sys.path
    from book import BookSequential

ARTICLE = {"train_acc": 0.92, "test_acc": 0.88, "iters": 10_000}
SIZES = dict(input_size=784, hidden_size=[128, 128], output_size=10)


def article_loop(network, x_train, t_train, x_test, t_test, *, iters, batch_size=1000,
                 learning_rate=0.1, iter_per_epoch=100, log=None):
    """The article's training loop, as it is written there (its lists, its order)."""
    train_size = x_train.shape[0]
    loss_list, train_acc_list, test_acc_list = [], [], []
    for i in np.arange(iters):
        batch_mask = np.random.choice(train_size, batch_size)
        x_batch = x_train[batch_mask]
        t_batch = t_train[batch_mask]
        grad = network.gradient(x_batch, t_batch)
        for key in network.params.keys():
            network.params[key] -= learning_rate * grad[key]
        if i % iter_per_epoch == 0:
            loss_list.append(network.loss(x_batch, t_batch))
            train_acc_list.append(network.accuracy(x_train, t_train))
            test_acc_list.append(network.accuracy(x_test, t_test))
            if log:
                log(f"  {i:>6}  train acc, test acc | {train_acc_list[-1]}, "
                    f"{test_acc_list[-1]}")
    return {"iteration": list(range(0, iters, iter_per_epoch)),
            "loss": [float(v) for v in loss_list],
            "train_acc": [float(v) for v in train_acc_list],
            "test_acc": [float(v) for v in test_acc_list]}


def run_article_way(make_network, data, *, iters, seed, log=None, iter_per_epoch=100):
    """Seed, build the network (its weights drawn from NumPy's global state), run the
    loop (evaluating every ``iter_per_epoch`` iterations); the run's lists, its wall
    time and the final parameters."""
    (x, t), (x_test, t_test) = data
    np.random.seed(seed)
    network = make_network()
    start = time.perf_counter()
    result = article_loop(network, x, t, x_test, t_test, iters=iters, log=log,
                          iter_per_epoch=iter_per_epoch)
    result["seconds"] = time.perf_counter() - start
    result["params"] = {k: np.array(v) for k, v in network.params.items()}
    return result


def run_fit_float32(data, *, iters, seed):
    import fastnn

    (x, t), (x_test, t_test) = data
    np.random.seed(seed)
    net = fastnn.Sequential(**SIZES, dtype=np.float32)
    x32, x_test32 = x.astype(np.float32), x_test.astype(np.float32)
    labels, test_labels = t.argmax(axis=1), t_test.argmax(axis=1)
    start = time.perf_counter()
    history = fastnn.fit(net, x32, labels, x_test=x_test32, t_test=test_labels,
                         batch_size=1000, iters=iters, eval_every=100,
                         sampling="replacement", optimizer=fastnn.SGD(lr=0.1), seed=seed,
                         progress=False)
    seconds = time.perf_counter() - start
    return {"iteration": [i - 1 for i in history.iteration], "loss": history.loss,
            "train_acc": history.train_acc, "test_acc": history.test_acc,
            "seconds": seconds, "compile_seconds": history.compile_seconds}


def warm_up() -> float:
    """Compile (or load from numba's cache) the kernels the timed runs use, so that the
    wall times below are the job's own; returns how long that took."""
    import fastnn

    start = time.perf_counter()
    x = np.random.default_rng(0).random((1000, 784))
    t = np.eye(10)[np.arange(1000) % 10]
    for dtype in (np.float64, np.float32):
        net = fastnn.Sequential(**SIZES, dtype=dtype, seed=0)
        net.gradient(x.astype(dtype), t)
        net.accuracy(x.astype(dtype), t)
        fastnn.fit(net, x.astype(dtype), t, x_test=x[:10].astype(dtype), t_test=t[:10],
                   batch_size=100, iters=2, eval_every=1, sampling="replacement", seed=0,
                   progress=False)
    return time.perf_counter() - start


def plot(runs: dict, path: str) -> None:
    """The article's figure: accuracy curves (left), the loss (right), one style per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"article's class": ("tab:blue", "o"), "fastnn (import swapped)": ("tab:orange", ""),
              "fastnn.fit float32": ("tab:green", "")}
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 3.5))
    for name, run in runs.items():
        color, marker = styles[name]
        left.plot(run["iteration"], run["train_acc"], color=color, marker=marker,
                  markevery=10, markerfacecolor="none", label=f"{name}: train")
        left.plot(run["iteration"], run["test_acc"], color=color, linestyle="--",
                  label=f"{name}: test")
        right.plot(run["iteration"], run["loss"], color=color, marker=marker, markevery=10,
                   markerfacecolor="none", label=name)
    left.set(xlabel="iteration", ylabel="accuracy", ylim=(0, 1.0),
             title="Train Acc vs Test Acc (Fashion-MNIST, 784-128-128-10)")
    left.legend(loc="lower right", fontsize=7)
    right.set(xlabel="iteration", title="Value of the loss function (a training batch)")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=ARTICLE["iters"],
                        help="iterations (the article's: 10000; a multiple of 100)")
    parser.add_argument("--seed", type=int, default=0, help="np.random.seed of every run")
    parser.add_argument("--data-dir", help="folder with Fashion-MNIST's four IDX files")
    parser.add_argument("--plot", metavar="FILE", help="the article's figure (.png, .svg)")
    parser.add_argument("--json", metavar="FILE", help="every number, as JSON")
    parser.add_argument("--skip-article", action="store_true",
                        help="only fastnn's two runs (no equality check)")
    parser.add_argument("--quiet", action="store_true", help="no line per evaluation")
    args = parser.parse_args(argv)
    if args.iters < 1 or args.iters % 100:
        parser.error(f"--iters: expected a positive multiple of 100, got {args.iters}")

    import fastnn
    from fastnn.datasets import load_fashion_mnist

    start = time.perf_counter()
    (x, t), (x_test, t_test) = load_fashion_mnist(one_hot_label=True, data_dir=args.data_dir)
    # the article's data as it had them: float64 pixels in [0, 1], one-hot labels
    data = (x.astype(np.float64), t), (x_test.astype(np.float64), t_test)
    load_seconds = time.perf_counter() - start
    compile_seconds = warm_up()
    print(f"Fashion-MNIST: {x.shape[0]:,} + {x_test.shape[0]:,} images, loaded in "
          f"{load_seconds:.1f} s; fastnn's kernels ready in {compile_seconds:.1f} s "
          f"(compiled, or loaded from numba's cache)")
    print(f"the article's job: {args.iters:,} iterations of batch 1000, lr 0.1, both sets "
          f"evaluated every 100 (np.random.seed({args.seed}))")
    log = None if args.quiet else print

    runs = {}
    if not args.skip_article:
        print("1. the article's loop with the article's class")
        runs["article's class"] = run_article_way(lambda: BookSequential(**SIZES), data,
                                                  iters=args.iters, seed=args.seed, log=log)
    print("2. the same loop, `from fastnn import Sequential`")
    runs["fastnn (import swapped)"] = run_article_way(lambda: fastnn.Sequential(**SIZES), data,
                                                      iters=args.iters, seed=args.seed, log=log)
    print("3. fastnn.fit, float32")
    runs["fastnn.fit float32"] = run_fit_float32(data, iters=args.iters, seed=args.seed)

    report = {"iters": args.iters, "seed": args.seed, "load_seconds": load_seconds,
              "kernel_warm_up_seconds": compile_seconds, "article": ARTICLE, "runs": {}}
    equal = None
    if "article's class" in runs:
        a, f = runs["article's class"], runs["fastnn (import swapped)"]
        same = [p == q for p in ("train_acc", "test_acc") for p, q in zip(a[p], f[p])]
        differences = max(float(np.max(np.abs(a["params"][k] - f["params"][k])))
                          for k in a["params"])
        equal = all(same)
        print(f"accuracies of 1 and 2 equal at {sum(same)} of {len(same)} evaluations; "
              f"largest parameter difference {differences:.1e}")
        report["equal_accuracies"], report["max_param_difference"] = equal, differences
    base = runs.get("article's class", {}).get("seconds")
    print()
    print("| run | train acc | test acc | wall time | speed-up |")
    print("|---|---|---|---|---|")
    print(f"| the article (its run, {ARTICLE['iters']:,} iterations) | "
          f"{ARTICLE['train_acc']:.0%} | {ARTICLE['test_acc']:.0%} | - | - |")
    for name, run in runs.items():
        speed = f"{base / run['seconds']:.2f}x" if base else "-"
        print(f"| {name} | {run['train_acc'][-1]:.4f} | {run['test_acc'][-1]:.4f} | "
              f"{run['seconds']:.1f} s | {speed} |")
        report["runs"][name] = {k: v for k, v in run.items() if k != "params"}
    if args.plot:
        plot(runs, args.plot)
        print(f"\nthe figure: {args.plot}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 1 if equal is False else 0


if __name__ == "__main__":
    sys.exit(main())

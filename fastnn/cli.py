"""The ``fastnn`` command: train, evaluate, sweep (and ``bench``, a launcher for a checkout)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .layers import ACTIVATIONS
from .recipe import DATASET_OPTIONS, DATASETS, DEFAULTS, load_dataset  # noqa: F401


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one clear line instead of usage + message
        raise CLIError(f"{self.prog}: {message}")


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help shows every default (but not "None": the help says what then happens) and
    keeps the epilog's table as written."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _defaults_table() -> str:
    rows = ["per-data-set defaults (what an option left out means):",
            f"  {'dataset':<14}{'hidden':<9}{'activation':<12}{'loss':<9}{'batch':<7}"
            f"{'epochs':<8}{'lr':<6}init"]
    for name, d in DEFAULTS.items():
        rows.append(f"  {name:<14}{d['hidden']:<9}{d['activation']:<12}{d['loss']:<9}"
                    f"{d['batch_size']:<7}{d['epochs']:<8}{d['lr']:<6}{d['init']}")
    return "\n".join(rows)


# Library argument names -> the options a user typed (errors raised by Sequential/fit)
OPTION_OF = {"batch_size": "--batch-size", "epochs": "--epochs", "iters": "--iters",
             "eval_every": "--eval-every", "lr": "--lr", "seed": "--seed",
             "weight_init_std": "--init", "hidden_size": "--hidden",
             "momentum": "--momentum", "weight_decay_lambda": "--weight-decay",
             "dropout_ratio": "--dropout", "threads": "--threads", "n": "--threads",
             "search": "--search", "grid": "--grid", "search, grid": "--search, --grid",
             "trials": "--trials", "validation_fraction": "--validation-fraction",
             "log": "--log", "resume": "--resume", "workers": "--workers",
             "scheduler": "--scheduler", "timeout": "--timeout",
             "optimizer": "--optimizer", "dropout": "--dropout", "loss": "--loss",
             "bias": "--no-bias", "sampler": "--sampler", "prune": "--prune",
             "round_size": "--round-size"}


def _as_option_error(exc: Exception):
    """A CLIError naming the option when ``exc`` is about an argument a user typed."""
    name, sep, rest = str(exc).partition(": ")
    key = name.split("[")[0]
    if sep and key in OPTION_OF:
        return CLIError(f"{OPTION_OF[key]}: {rest}")
    return None


def _hidden(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")] if text.strip() else []
    except ValueError:
        raise CLIError(f"--hidden: expected comma-separated positive integers such as "
                       f"128,128, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise CLIError(f"--hidden: expected comma-separated positive integers such as "
                       f"128,128, got {text!r}")
    return sizes


def _threads(text):
    from .kernels._threads import check_threads

    if text.lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or a positive integer, got {text!r}") \
            from None
    try:
        return check_threads(value, "threads")
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc).partition(": ")[2]) from None


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") \
            from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text}")
    return value


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, "
                                             f"got {text!r}") from None
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text}")
        return value

    return parse


def _unit(text):
    """A number in [0, 1) (momentum, dropout ratio)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return value


def _non_negative(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}") \
            from None
    if not 0.0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text}")
    return value


SWEEP_EPILOG = """examples:
  fastnn sweep --trials 20 --epochs 10                 the book's random search, all cores
  fastnn sweep --search lr=1e-3:1:log --grid batch-size=32,128 --log sweep.jsonl
  fastnn sweep --log sweep.jsonl --resume              run what an interrupted sweep lacks
  fastnn sweep --sampler tpe --prune asha --epochs 10  learn from finished trials, stop bad ones
  fastnn sweep --scheduler tcp://HOST:8786             on a cluster (dask scheduler/worker)"""

OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


def _training_of(args) -> dict:
    """The training options ``args`` of train/sweep give (None: not given)."""
    from .recipe import check_loss

    try:
        check_loss(args.dataset, args.loss)
    except ValueError as exc:
        raise _as_option_error(exc) from None
    return dict(hidden=None if args.hidden is None else _hidden(args.hidden),
                activation=args.activation, init=args.init, loss=args.loss,
                bias=False if args.no_bias else None, batch_size=args.batch_size,
                epochs=args.epochs, iters=args.iters, eval_every=args.eval_every,
                optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
                weight_decay=args.weight_decay, dropout=args.dropout,
                batchnorm=args.batchnorm, backend=args.backend, dtype=args.dtype)


def resolve_args(args) -> dict:
    """The training description (``recipe.resolve``) that ``args`` of train give."""
    from . import recipe

    return recipe.resolve(args.dataset, seed=args.seed, **_training_of(args))


def _training_options(parser, threads_default="auto",
                      threads_help="BLAS threads: auto (one for small work, all cores for "
                                   "large) or a count") -> None:
    """The options that describe a training run (``fastnn train`` and ``fastnn sweep``)."""
    from .layers import LOSSES

    parser.add_argument("--dataset", choices=DATASETS, default="digits")
    parser.add_argument("--hidden", help="hidden layer widths, e.g. 128,128 (default: per "
                                         "data set, below)")
    parser.add_argument("--activation", choices=tuple(ACTIVATIONS),
                        help="hidden activation (default: per data set)")
    schemes = ", ".join(f"{a.init} for {name}" for name, a in ACTIVATIONS.items())
    parser.add_argument("--init", help=f"weight init: a number (std), he, xavier, or an "
                                       f"activation's name (default: per data set; {schemes})")
    parser.add_argument("--loss", choices=tuple(LOSSES),
                        help="output loss: softmax (cross-entropy; class labels), mse (the "
                             "book's 0.5 * mean squared error) or sse (the plain sum of "
                             "squared errors) (default: per data set)")
    parser.add_argument("--no-bias", action="store_true",
                        help="affine layers without biases (x @ W)")
    parser.add_argument("--batch-size", type=_positive(int), help="default: per data set")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=_positive(int), help="default: per data set")
    length.add_argument("--iters", type=_positive(int), help="iterations instead of epochs")
    parser.add_argument("--eval-every", type=_positive(int),
                        help="iterations between evaluations (default: once per epoch)")
    parser.add_argument("--lr", type=_positive(float),
                        help="learning rate (default: the data set's for sgd, else the "
                             "optimizer's own: 0.01, adam 0.001)")
    parser.add_argument("--optimizer", choices=OPTIMIZER_NAMES, default="sgd",
                        help="the update rule (the book's six)")
    parser.add_argument("--momentum", type=_unit,
                        help="momentum for --optimizer momentum/nesterov (default 0.9)")
    parser.add_argument("--weight-decay", type=_non_negative, default=0.0, metavar="LAMBDA",
                        help="L2 weight decay: the loss adds 0.5*LAMBDA*sum(W**2)")
    parser.add_argument("--dropout", type=_unit, metavar="RATIO",
                        help="Dropout after each hidden layer, dropping this fraction")
    parser.add_argument("--batchnorm", action="store_true",
                        help="BatchNorm between each hidden affine layer and its activation")
    parser.add_argument("--backend", choices=("numba", "numpy"), default="numba")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--seed", type=_non_negative_int, default=0,
                        help="seed of the weights and the batch order (of a sweep: of its "
                             "trials' draws)")
    parser.add_argument("--threads", type=_threads, default=threads_default, help=threads_help)
    parser.add_argument("--data-dir", help="folder with the four IDX files (MNIST-style sets; "
                        "default: $FASTNN_DATA, ~/.cache/fastnn, /usr/share/datasets, then "
                        "the mirrors)")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="fastnn", description="Train, evaluate and sweep fastnn networks.",
                     epilog="`fastnn COMMAND --help` lists a command's options and defaults.")
    parser.add_argument("--version", action="version", version=f"fastnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser("train", help="train a network on a data set",
                           formatter_class=_Help, epilog=_defaults_table())
    _training_options(train)
    train.add_argument("--save", metavar="PATH", help="write the trained model (.npz)")
    train.add_argument("--plot", metavar="FILE",
                       help="write learning curves; the format follows the extension (.png, "
                            ".svg, .pdf, .jpg ...; needs matplotlib)")
    train.add_argument("--quiet", action="store_true", help="only the summary line")
    train.add_argument("--json", action="store_true", help="print the summary as JSON")

    sweep = sub.add_parser(
        "sweep", help="hyperparameter search: many trainings, in parallel (Dask)",
        formatter_class=_Help, epilog=SWEEP_EPILOG + "\n\n" + _defaults_table())
    _training_options(sweep, threads_default=1,
                      threads_help="BLAS threads in each trial (1: the cores go to parallel "
                                   "trials)")
    sweep.add_argument("--trials", type=_positive(int),
                       help="how many trials (default: the grid's size with --grid alone, "
                            "else 100, the book's)")
    sweep.add_argument("--search", action="append", metavar="NAME=LOW:HIGH[:log]",
                       help="random search over NAME (lr, weight-decay, momentum, dropout, "
                            "batch-size, epochs), log-uniform with :log, else uniform; "
                            "repeatable (default: the book's lr=1e-6:1e-2:log and "
                            "weight-decay=1e-8:1e-4:log)")
    sweep.add_argument("--grid", action="append", metavar="NAME=a,b,c",
                       help="try each value of NAME in turn; repeatable")
    sweep.add_argument("--sampler", choices=("random", "grid", "tpe"),
                       help="how trials get their values: random search (the default), the "
                            "--grid points alone (the default for --grid without --search), "
                            "or Optuna's TPE over --search (needs optuna)")
    sweep.add_argument("--prune", choices=("none", "median", "asha"), default="none",
                       help="stop trials whose validation accuracy after an epoch is below "
                            "the median of earlier trials', or not in the best third of a "
                            "rung (asha: epochs 1, 3, 9 ...)")
    sweep.add_argument("--round-size", type=_positive(int), metavar="N",
                       help="with --sampler tpe or --prune: trials run in rounds of N, each "
                            "learning from the earlier rounds only (default 4; set it to the "
                            "number of workers)")
    sweep.add_argument("--validation-fraction", type=float, default=0.2, metavar="F",
                       help="training data held out to rank the trials")
    sweep.add_argument("--log", metavar="FILE.jsonl",
                       help="append each finished trial as a JSON line")
    sweep.add_argument("--resume", action="store_true",
                       help="continue --log: run only the trials it lacks")
    where = sweep.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_positive(int),
                       help="an embedded local cluster of N single-threaded worker processes "
                            "(default: one per core; 1 runs the trials in this process)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on an existing Dask cluster, e.g. tcp://10.0.0.5:8786")
    sweep.add_argument("--timeout", type=_positive(float), default=10.0, metavar="SECONDS",
                       help="how long to try reaching --scheduler")
    sweep.add_argument("--save", metavar="PATH",
                       help="write the best trial's model (.npz)")
    sweep.add_argument("--plot", metavar="FILE",
                       help="the best 20 learning curves and validation accuracy over the "
                            "searched values (needs matplotlib)")
    sweep.add_argument("--quiet", action="store_true", help="only the table")
    sweep.add_argument("--json", action="store_true", help="print the results as JSON")

    evaluate = sub.add_parser("evaluate", help="loss and accuracy of a saved model",
                              formatter_class=_Help)
    evaluate.add_argument("model", help="a .npz file written by `fastnn train --save`")
    evaluate.add_argument("--dataset", choices=DATASETS,
                          help="default: the data set the model was trained on (recorded in "
                               "the file; digits for files that do not say)")
    evaluate.add_argument("--data-dir", help="folder with the four IDX files (default: the "
                          "one the model was trained from, when it still exists, else the "
                          "usual lookup)")
    evaluate.add_argument("--backend", choices=("numba", "numpy"), default="numba")
    evaluate.add_argument("--json", action="store_true")

    warm = sub.add_parser("warmup", help="compile every kernel ahead of first use (container "
                                          "images, CI, cluster workers)",
                          description="Compile every kernel variant this install uses into "
                                      "numba's cache, in parallel processes; later runs "
                                      "load them in about 0.2 s.")
    warm.add_argument("--dtype", choices=("float32", "float64", "both"), default="both")
    warm.add_argument("--processes", type=_positive(int),
                      help="parallel compiling processes (default: the usable cores)")
    warm.add_argument("--quiet", action="store_true")
    sub.add_parser("bench", help="run benchmarks/compare.py of a source checkout",
                   add_help=False)
    return parser


def cmd_warmup(args) -> int:
    from .warmup_kernels import DTYPES, warmup

    warmup(DTYPES if args.dtype == "both" else (args.dtype,), processes=args.processes,
           progress=not args.quiet)
    return 0


def _format(summary: dict) -> str:
    parts = []
    if summary.get("train_acc") is not None:
        parts.append(f"train acc {summary['train_acc']:.4f}")
        if summary.get("test_acc") is not None:
            parts.append(f"test acc {summary['test_acc']:.4f}")
    else:
        parts.append(f"train loss {summary['train_loss']:.6g}")
        if summary.get("test_loss") is not None:
            parts.append(f"test loss {summary['test_loss']:.6g}")
    line = ", ".join(parts)
    if "train_seconds" in summary:
        per_iter = summary["seconds_per_iter"]
        per = f"{per_iter * 1e3:.3f} ms" if per_iter >= 1e-4 else f"{per_iter * 1e6:.3f} us"
        line += (f" | {summary['iterations']} iterations in {summary['train_seconds']:.2f} s "
                 f"({per}/iter; compiling {summary['compile_seconds']:.2f} s)")
    if "wall_seconds" in summary:  # what the rest of the command's time went to
        rest = (summary["wall_seconds"] - summary["load_seconds"]
                - summary["compile_seconds"] - summary["train_seconds"])
        line += (f" | {summary['wall_seconds']:.2f} s in all after start-up: loading the "
                 f"data {summary['load_seconds']:.2f} s, evaluations, saving and plotting "
                 f"{max(rest, 0.0):.2f} s")
    return line


def _check_output(option: str, path: str, suffixes=None) -> None:
    """Fail before training when ``path`` cannot be written (named by ``option``)."""
    from .serialize import check_writable

    try:
        check_writable(path, "model.npz" if option == "--save" else "curves.png")
    except OSError as exc:
        rest = str(exc)[len(path) + 2:] if str(exc).startswith(f"{path}: ") else str(exc)
        raise CLIError(f"{option}: {path} {rest}" if rest.startswith("is a folder")
                       else f"{option}: {rest}") from None
    if suffixes is not None:
        suffix = Path(path).suffix.lower().lstrip(".")
        if suffix not in suffixes:
            raise CLIError(f"{option}: unknown picture format {Path(path).suffix or '(none)'!r}; "
                           f"use one of {', '.join('.' + s for s in sorted(suffixes))}")


def _plot_formats() -> set:
    try:
        import matplotlib
    except ImportError:
        raise CLIError("--plot: needs matplotlib: pip install matplotlib (from a fastnn checkout: "
                       "pip install '.[plot]')") from None
    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    return set(FigureCanvasAgg(Figure()).get_supported_filetypes())


def _loss_grew(first: float, history) -> str | None:
    """A warning when the training loss ended far above the untrained network's."""
    losses = [v for v in history.loss if v == v]
    if losses and first > 0 and losses[-1] > 10 * first:
        return (f"the training loss grew from {first:.4g} (untrained) to {losses[-1]:.4g}: "
                "the learning rate is probably too large (try --lr with a tenth of it)")
    return None


SLOW_FACTOR = 2.5  # `fastnn train` notes a run this much slower than the machine's best


def _speed_note(summary: dict) -> str | None:
    """Compare this run's time per iteration with the best this machine recorded for the
    same training (``speeds.json`` in fastnn's cache folder); record a new best. A note
    when this run was much slower, saying what fastnn did about it."""
    import datetime

    from . import get_num_threads
    from . import thread_policy as policy
    from .datasets import cache_dir
    from .serialize import atomic_write

    per_iter = summary.get("seconds_per_iter") or 0.0
    if per_iter <= 0 or summary.get("iterations", 0) < 50:
        return None
    key = json.dumps({k: summary.get(k) for k in ("dataset", "hidden", "activation",
                                                  "backend", "dtype", "optimizer",
                                                  "batchnorm", "dropout", "batch_size")},
                     sort_keys=True)
    path = cache_dir() / "speeds.json"
    try:
        speeds = json.loads(path.read_text()) if path.is_file() else {}
        if not isinstance(speeds, dict):
            speeds = {}
    except (OSError, ValueError):
        speeds = {}
    best = speeds.get(key)
    recorded = best.get("seconds_per_iter") if isinstance(best, dict) else None
    if isinstance(recorded, bool) or not isinstance(recorded, (int, float)) or \
            not 0 < recorded < float("inf"):
        best = recorded = None  # (a malformed entry: replaced by this run's)
    note = None
    if best is not None:
        ratio = per_iter / recorded
        if ratio > SLOW_FACTOR:
            threads = get_num_threads()
            if policy() != "auto":
                how = "forced with --threads"
            elif threads > 1:
                how = ("chosen by the work's size alone, so results stay reproducible; "
                       "--threads 1 may help while the cores are busy")
            else:
                how = "the automatic policy's choice for this size"
            note = (f"this run took {per_iter * 1e6:.1f} us/iter, {ratio:.1f}x this machine's "
                    f"best for the same training ({recorded * 1e6:.1f} us/iter, "
                    f"{best.get('date', '?')}): other programs are probably using the cores. "
                    f"fastnn ran the matrix products on {threads} BLAS thread(s) ({how})")
    if best is None or per_iter < recorded:
        speeds[key] = {"seconds_per_iter": per_iter,
                       "date": datetime.date.today().isoformat()}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda f: f.write(json.dumps(speeds).encode()))
        except OSError:  # a read-only home: no record, no harm
            pass
    return note


def _optional(feature, *args):
    """``feature(*args)``, or None when it fails: an optional feature (the speed note)
    never fails a run (no home folder, a damaged record, a full disk)."""
    try:
        return feature(*args)
    except Exception:
        return None


def cmd_train(args) -> int:
    import fastnn

    started = time.perf_counter()
    if args.save:
        _check_output("--save", args.save)
    if args.plot:
        _check_output("--plot", args.plot, _plot_formats())
    config = resolve_args(args)
    fastnn.set_num_threads(None if args.threads == "auto" else args.threads)
    if args.threads == "auto":
        # this process's BLAS starts on one thread, before anything (loading the data)
        # calls it: OpenBLAS threads started at two and then left idle measurably slowed
        # the training steps beside busy processes (docs/performance.md); fastnn's calls
        # on large work still take all cores for their duration
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="blas")
    loading = time.perf_counter()
    (x, t), (x_test, t_test) = load_dataset(args.dataset, args.data_dir)
    load_seconds = time.perf_counter() - loading
    hidden, activation = config["hidden"], config["activation"]
    try:
        from . import recipe

        net, optimizer = recipe.build(config, int(np.prod(x.shape[1:])),
                                      recipe.n_outputs(config, t))
        history = fastnn.fit(net, x, t, x_test=x_test, t_test=t_test, optimizer=optimizer,
                             progress=not (args.quiet or args.json),
                             **recipe.fit_arguments(config))
    except (ValueError, TypeError) as exc:
        option_error = _as_option_error(exc)
        if option_error is None:
            raise
        raise option_error from None
    summary = history.summary()
    if config["loss"] != "softmax":  # regression: the final loss on the training set
        summary["train_loss"], _ = fastnn.evaluate(net, x, t)
    summary.update(dataset=args.dataset, hidden=hidden, activation=activation,
                   loss=config["loss"], bias=config["bias"], backend=args.backend,
                   dtype=args.dtype, seed=args.seed,
                   optimizer=repr(optimizer), weight_decay=args.weight_decay,
                   dropout=args.dropout, batchnorm=args.batchnorm)
    summary["batch_size"] = config["batch_size"]
    # the model first: nothing optional below may lose it
    save_error = None
    if args.save:
        net.metadata = _model_metadata(args)
        try:
            net.save(args.save)
        except OSError as exc:  # (named, previous file kept: serialize.atomic_write)
            save_error = exc
    note = _optional(_speed_note, summary)
    if note:
        summary["note"] = note
        print(f"fastnn: note: {note}", file=sys.stderr)
    warning = _loss_grew(history.initial_loss, history)
    if warning:
        summary["warning"] = warning
        print(f"fastnn: warning: {warning}", file=sys.stderr)
    if save_error is not None:  # the summary still printed, then the error (exit 1)
        print(json.dumps(summary) if args.json else _format(summary))
        raise save_error
    if args.plot:
        from .plot import plot_history

        fit_curve = None
        if config["loss"] != "softmax" and x.shape[1] == 1:
            fit_curve = (x, t, net.predict(x))
        plot_history(history, args.plot, title=f"fastnn on {args.dataset}", fit=fit_curve)
    summary["load_seconds"] = load_seconds
    summary["wall_seconds"] = time.perf_counter() - started
    print(json.dumps(summary) if args.json else _format(summary))
    return 0


def _sweep_line(record, done: int, total: int, regression: bool) -> str:
    params = "  ".join(f"{k.replace('_', '-')}={v:.4g}" for k, v in record["params"].items())
    if record["status"] == "ok":
        score = (f"val loss {record['val_loss']:.4g}" if regression
                 else f"val acc {record['val_acc']:.4f}")
    elif record["status"] == "pruned":
        last = record["val_loss"] if regression else record["val_acc"]
        score = f"pruned after epoch {record['pruned_at']} ({last:.4g})"
    else:
        score = record["status"]
    where = record.get("worker") or "?"
    return (f"[{done}/{total}] trial {record['trial']}: {score}  {params}  "
            f"({record['seconds']:.3g} s on {where})")


def _sweep_table(trials, shown: int = 20) -> str:
    ranked = trials.ranked()
    names = sorted({k for r in ranked for k in r["params"]})
    score = "val loss" if trials.regression else "val acc"
    head = f"{'rank':>4}  {'trial':>5}  {score:>8}  " + "".join(
        f"{n.replace('_', '-'):>13}" for n in names) + f"  {'status':<9}{'seconds':>8}"
    rows = [head]
    for rank, r in enumerate(ranked[:shown], 1):
        value = r.get("val_loss" if trials.regression else "val_acc")
        shown_value = f"{value:8.4f}" if value is not None else f"{'-':>8}"
        rows.append(f"{rank:>4}  {r['trial']:>5}  {shown_value}  " + "".join(
            f"{r['params'].get(n, float('nan')):>13.4g}" for n in names)
            + f"  {r['status']:<9}{r['seconds']:>8.3g}")
    if len(ranked) > shown:
        rows.append(f"({len(ranked) - shown} more trials: all are in --log and --json)")
    best = trials.best
    if best is not None:
        params = ", ".join(f"{k.replace('_', '-')}={v:.4g}" for k, v in best["params"].items())
        line = f"best: trial {best['trial']} ({params}): "
        if trials.regression:
            line += f"val loss {best['val_loss']:.4g}"
            if best.get("test_loss") is not None:
                line += f", test loss {best['test_loss']:.4g}"
        else:
            line += f"val acc {best['val_acc']:.4f}"
            if best.get("test_acc") is not None:
                line += f", test acc {best['test_acc']:.4f}"
        rows.append(line)
    else:
        rows.append("best: none (no trial finished)")
    from .sweeps.search import pruning_summary

    saved = pruning_summary(trials)
    if saved is not None:
        factor = saved["planned_epochs"] / max(saved["trained_epochs"], 1)
        rows.append(f"pruning: {saved['pruned']} of {saved['trials']} trials stopped early; "
                    f"{saved['trained_epochs']} of {saved['planned_epochs']} epochs trained, "
                    f"{saved['saved_epochs']} saved ({factor:.2f}x fewer)")
    return "\n".join(rows)


def cmd_sweep(args) -> int:
    from . import sweeps as S

    if args.save:
        _check_output("--save", args.save)
    if args.plot:
        _check_output("--plot", args.plot, _plot_formats())
    try:
        plan = S.prepare(dataset=args.dataset, data_dir=args.data_dir, trials=args.trials,
                         search=args.search, grid=args.grid, seed=args.seed,
                         validation_fraction=args.validation_fraction, workers=args.workers,
                         scheduler=args.scheduler, timeout=args.timeout, log=args.log,
                         resume=args.resume, threads=args.threads, sampler=args.sampler,
                         prune=args.prune, round_size=args.round_size,
                         training=_training_of(args))
    except (ValueError, TypeError) as exc:
        raise _as_option_error(exc) or exc from None
    if plan.log is not None and getattr(plan.log, "torn", False):
        print(f"fastnn: note: {args.log}: its last line was cut off (a crash while it was "
              f"written); that trial runs again", file=sys.stderr)
    quiet = args.quiet or args.json

    def started(client):
        if quiet:
            return
        where = (f"the cluster at {args.scheduler}" if args.scheduler else
                 "this process" if client is None else f"{plan.workers} local workers")
        todo = plan.pending()
        print(f"fastnn sweep: {todo} of {plan.trials} trials to run on {where}"
              + (f" ({plan.trials - todo} already in {args.log})" if plan.done else ""),
              file=sys.stderr, flush=True)

    def progress(record, done, total):
        if not quiet:
            print(_sweep_line(record, done, total, plan.regression), file=sys.stderr,
                  flush=True)

    try:
        trials = plan.run(progress, started)
    except KeyboardInterrupt as exc:
        from ._signals import Terminated

        logged = f"; {len(plan.done)} of {plan.trials} trials are in {args.log}, and the " \
                 f"same command with --resume runs the rest" if args.log else \
                 " (with --log FILE a sweep can be resumed)"
        how = "stopped by SIGTERM" if isinstance(exc, Terminated) else "interrupted"
        print(f"fastnn: sweep {how}{logged}", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except ValueError as exc:  # the scheduler could not be reached
        raise _as_option_error(exc) or exc from None
    best = trials.best
    save_error = None
    if best is not None and best.get("final_error"):
        save_error = (f"the best trial ({best['trial']}) failed when trained again for the "
                      f"test set and its model: {best['final_error']}")
    elif best is None:
        save_error = "no trial finished, so there is no model to save"
    if args.save:
        if save_error is not None:
            pass  # (said after the table, with exit status 1)
        else:
            net = best["net"]
            net.metadata = _model_metadata(args)
            net.save(args.save)
    if args.plot:
        from .plot import plot_sweep

        plot_sweep(trials, args.plot, title=f"fastnn sweep on {args.dataset}")
    if args.json:
        def plain(r):  # (JSON proper: never a bare NaN)
            return S.finite_json({k: v for k, v in r.items() if k not in ("net", "sweep")})

        print(json.dumps({"trials": [plain(r) for r in trials.ranked()],
                          "best": None if best is None else plain(best),
                          "log": args.log}))
    else:
        print(_sweep_table(trials))
    if save_error is not None and (args.save or best is not None):
        print(f"fastnn: error: {'--save: ' if args.save else ''}{save_error}", file=sys.stderr)
        return 1
    return 0


def _model_metadata(args) -> dict:
    """What a saved model remembers of its data: the set, its options, and the folder
    ``--data-dir`` named (absolute), so that ``fastnn evaluate`` finds the same files."""
    meta = {"dataset": args.dataset, "dataset_options": DATASET_OPTIONS[args.dataset]}
    if args.data_dir:
        meta["data_dir"] = str(Path(args.data_dir).resolve())
    return meta


def cmd_evaluate(args) -> int:
    import fastnn

    from .train import evaluate

    net = fastnn.load(args.model, backend=args.backend)
    recorded = getattr(net, "metadata", {}).get("dataset")
    dataset = args.dataset or (recorded if recorded in DATASETS else "digits")
    data_dir = args.data_dir
    remembered = getattr(net, "metadata", {}).get("data_dir")
    if data_dir is None and dataset == recorded and isinstance(remembered, str) \
            and Path(remembered).is_dir():  # else the usual lookup (cache, system, mirrors)
        data_dir = remembered
    (x, t), (x_test, t_test) = load_dataset(dataset, data_dir)
    if x_test is None:  # sine: the training points are the whole data set
        x_test, t_test = x, t
    features = int(np.prod(x_test.shape[1:]))
    if features != net.input_size:
        raise CLIError(f"--dataset: {dataset} has {features} features per sample, the model "
                       f"takes {net.input_size}" + (f" (it was trained on {recorded})"
                                                    if recorded else ""))
    loss, acc = evaluate(net, x_test, t_test)
    summary = {"dataset": dataset, "test_loss": loss, "test_acc": acc}
    if args.json:
        print(json.dumps(summary))
    elif acc is None:
        print(f"test loss {loss:.6g}")
    else:
        print(f"test loss {loss:.4g}, test acc {acc:.4f}")
    return 0


def run_bench(argv) -> int:
    """``fastnn bench ARGS``: ``python benchmarks/compare.py ARGS`` of the checkout this
    fastnn was installed from (editable installs); the benchmarks are not installed."""
    import subprocess

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "compare.py"
    if not script.is_file():
        print("fastnn: error: bench: the benchmarks are part of a source checkout, not of the "
              "installed package; run `python benchmarks/compare.py` in a fastnn checkout "
              "(or install one with `pip install -e .`)", file=sys.stderr)
        return 2
    import os

    env = dict(os.environ, FASTNN_BENCH_PROG="1")  # its --help then says `fastnn bench`
    return subprocess.call([sys.executable, str(script), *argv], env=env)


def _one_line_dataset_warnings() -> None:
    """A skipped damaged data file is one line on stderr, like the command's other notes."""
    import warnings

    from .datasets import DatasetWarning

    plain = warnings.formatwarning
    if getattr(plain, "fastnn_one_line", False):  # (main() run again in one process)
        return

    def formatwarning(message, category, *args, **kwargs):
        if issubclass(category, DatasetWarning):
            return f"fastnn: warning: {message}\n"
        return plain(message, category, *args, **kwargs)

    formatwarning.fastnn_one_line = True
    warnings.formatwarning = formatwarning


def main(argv=None) -> int:
    from .datasets import DatasetError
    from .train import TrainingDiverged

    _one_line_dataset_warnings()

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        return run_bench(argv[1:])
    if not argv:  # a newcomer's first try: say what there is, then the one-line error
        build_parser().print_help()
        print("fastnn: error: the following arguments are required: command (train, evaluate, "
              "sweep, warmup or bench; see above)", file=sys.stderr)
        return 2
    from ._signals import Terminated, sigterm_raises

    try:
        with sigterm_raises():  # (docker stop, systemd, batch schedulers: like Ctrl-C)
            args = build_parser().parse_args(argv)
            if args.command == "train":
                return cmd_train(args)
            if args.command == "sweep":
                return cmd_sweep(args)
            if args.command == "warmup":
                return cmd_warmup(args)
            return cmd_evaluate(args)
    except Terminated:
        print("fastnn: stopped by SIGTERM (files written so far are complete; a save in "
              "progress was not made)", file=sys.stderr)
        return 143
    except CLIError as exc:
        message = str(exc)
        if message.startswith("fastnn"):  # "fastnn train: ..." from argparse
            prog, _, rest = message.partition(": ")
            print(f"{prog}: error: {rest}", file=sys.stderr)
        else:
            print(f"fastnn: error: {message}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, FileNotFoundError, DatasetError, TrainingDiverged,
            ImportError, OSError) as exc:
        print(f"fastnn: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fastnn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

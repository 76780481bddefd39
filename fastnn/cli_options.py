"""The ``fastnn`` command's parser: its options, their types (built from the library's
checkers by one adapter, ``option``) and the mapping of library errors to the options a
user typed."""

from __future__ import annotations

import argparse
import functools

from . import _validation as V
from .layers import ACTIVATIONS, LOSSES
from .recipe import CONVNET_DEFAULTS, CONVNET_DIGITS, DATASETS, DEFAULTS, MODELS


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
    rows += ["", "--model simple-convnet / deep-convnet (the book's convnets, on images: "
                 "digits as 1x8x8):",
             f"  {'model':<16}{'hidden':<8}{'optimizer':<11}{'lr':<7}{'batch':<7}"
             f"{'epochs':<18}init"]
    for model, d in CONVNET_DEFAULTS.items():
        digits = CONVNET_DIGITS[model]
        epochs = f"{d['epochs']} ({digits['epochs']} digits)"
        init = d["init"] if digits.get("init", d["init"]) == d["init"] else \
            f"{d['init']} ({digits['init']} digits)"
        rows.append(f"  {model:<16}{d['hidden']:<8}{d['optimizer']:<11}{'0.001':<7}"
                    f"{d['batch_size']:<7}{epochs:<18}{init}")
    rows.append("  simple-convnet: 30 filters of 5x5 (3x3 on images under 16 pixels a side)")
    return "\n".join(rows)


# Library argument names that are not an option's own name (its dest) -> the option
ALIASES = {"weight_init_std": "--init", "hidden_size": "--hidden",
           "weight_decay_lambda": "--weight-decay", "dropout_ratio": "--dropout",
           "n": "--threads", "bias": "--no-bias", "search, grid": "--search, --grid"}


@functools.cache
def _option_names() -> dict:
    """{dest: '--option'} of every option of every command (read off the parser)."""
    names = {}
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command in commands.choices.values():
        for action in command._actions:
            long = [o for o in action.option_strings if o.startswith("--")]
            if long and action.dest != "help":
                names.setdefault(action.dest, long[0])
    return {**names, **ALIASES}


def as_option_error(exc: Exception):
    """A CLIError naming the option when ``exc`` is about an argument a user typed: the
    argument a library checker names (``exc.argument``), or for errors raised elsewhere
    the name they start with (``"name: ..."``, the library's convention)."""
    name, detail = getattr(exc, "argument", None), getattr(exc, "detail", None)
    if name is None:
        name, sep, detail = str(exc).partition(": ")
        if not sep:
            return None
    option = _option_names().get(name.split("[")[0])
    return None if option is None else CLIError(f"{option}: {detail}")


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
    from .threads import check_threads

    if text.lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or a positive integer, got {text!r}") \
            from None
    try:
        return check_threads(value, "threads")
    except (V.BadValue, V.BadType) as exc:
        raise argparse.ArgumentTypeError(exc.detail) from None


def option(check, parse=float):
    """An argparse type from one of the library's checkers (``fastnn._validation``): the
    text parsed (``parse``), then checked; the checker's own words are argparse's one
    line ("argument --lr: expected a positive finite number, got -1.0")."""

    def convert(text):
        try:
            value = parse(text)
        except ValueError:
            value = text  # (the checker says what it expected instead)
        try:
            return check(value, "option")
        except (V.BadValue, V.BadType) as exc:
            raise argparse.ArgumentTypeError(exc.detail) from None

    return convert


POSITIVE_INT = option(V.check_positive_int, int)
POSITIVE = option(V.check_positive_float)
NON_NEGATIVE = option(V.check_non_negative_float)
NON_NEGATIVE_INT = option(V.check_non_negative_int, int)
UNIT = option(V.check_unit_interval)  # [0, 1): momentum, a dropout ratio


SWEEP_EPILOG = """examples:
  fastnn sweep --trials 20 --epochs 10                 the book's random search, all cores
  fastnn sweep --search lr=1e-3:1:log --grid batch-size=32,128 --log sweep.jsonl
  fastnn sweep --log sweep.jsonl --resume              run what an interrupted sweep lacks
  fastnn sweep --sampler tpe --prune asha --epochs 10  learn from finished trials, stop bad ones
  fastnn sweep --scheduler tcp://HOST:8786             on a cluster (dask scheduler/worker)"""

OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


def training_of(args) -> dict:
    """The training options ``args`` of train/sweep give (None: not given)."""
    from .recipe import check_loss

    try:
        check_loss(args.dataset, args.loss)
    except ValueError as exc:
        raise as_option_error(exc) from None
    return dict(model=args.model, hidden=None if args.hidden is None else _hidden(args.hidden),
                activation=args.activation, init=args.init, loss=args.loss,
                bias=False if args.no_bias else None, batch_size=args.batch_size,
                epochs=args.epochs, iters=args.iters, eval_every=args.eval_every,
                optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
                weight_decay=args.weight_decay, dropout=args.dropout,
                batchnorm=args.batchnorm, backend=args.backend, dtype=args.dtype)


def resolve_args(args) -> dict:
    """The training description (``recipe.resolve``) that ``args`` of train give."""
    from . import recipe

    try:
        return recipe.resolve(args.dataset, seed=args.seed, **training_of(args))
    except ValueError as exc:  # (an option that does not fit the model or the data set)
        raise as_option_error(exc) or exc from None


def _training_options(parser, threads_default="auto",
                      threads_help="threads: auto (by the work's size and the free "
                                   "cores; the same results either way) or a count") -> None:
    """The options that describe a training run (``fastnn train`` and ``fastnn sweep``)."""

    parser.add_argument("--dataset", choices=DATASETS, default="digits")
    parser.add_argument("--model", choices=MODELS, default="mlp",
                        help="the network: a multilayer perceptron (--hidden widths), or "
                             "the book's SimpleConvNet (chapter 7) or DeepConvNet (chapter "
                             "8) on the images (--hidden: the width of their hidden affine "
                             "layer)")
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
    parser.add_argument("--batch-size", type=POSITIVE_INT, help="default: per data set")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=POSITIVE_INT, help="default: per data set")
    length.add_argument("--iters", type=POSITIVE_INT, help="iterations instead of epochs")
    parser.add_argument("--eval-every", type=POSITIVE_INT,
                        help="iterations between evaluations (default: once per epoch)")
    parser.add_argument("--lr", type=POSITIVE,
                        help="learning rate (default: the data set's for sgd, else the "
                             "optimizer's own: 0.01, adam 0.001)")
    parser.add_argument("--optimizer", choices=OPTIMIZER_NAMES,
                        help="the update rule (the book's six; default sgd, adam for the "
                             "convnets as the book trains them)")
    parser.add_argument("--momentum", type=UNIT,
                        help="momentum for --optimizer momentum/nesterov (default 0.9)")
    parser.add_argument("--weight-decay", type=NON_NEGATIVE, default=0.0, metavar="LAMBDA",
                        help="L2 weight decay: the loss adds 0.5*LAMBDA*sum(W**2)")
    parser.add_argument("--dropout", type=UNIT, metavar="RATIO",
                        help="Dropout after each hidden layer, dropping this fraction")
    parser.add_argument("--batchnorm", action="store_true",
                        help="BatchNorm between each hidden affine layer and its activation")
    parser.add_argument("--backend", choices=("numba", "numpy"), default="numba")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--seed", type=NON_NEGATIVE_INT, default=0,
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
    sweep.add_argument("--trials", type=POSITIVE_INT,
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
    sweep.add_argument("--round-size", type=POSITIVE_INT, metavar="N",
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
    where.add_argument("--workers", type=POSITIVE_INT,
                       help="an embedded local cluster of N worker processes (default: one "
                            "per usable core, or per --threads cores; 1 runs the trials in "
                            "this process)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on an existing Dask cluster, e.g. tcp://10.0.0.5:8786")
    sweep.add_argument("--no-warmup", dest="warmup", action="store_false",
                       help="do not warm the Dask workers before their first trial (by "
                            "default each runs one short trial of each kind first, which "
                            "compiles the kernels the trials use into numba's cache)")
    sweep.add_argument("--timeout", type=POSITIVE, default=10.0, metavar="SECONDS",
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
    warm.add_argument("--processes", type=POSITIVE_INT,
                      help="parallel compiling processes (default: the usable cores)")
    warm.add_argument("--quiet", action="store_true")
    sub.add_parser("bench", help="run benchmarks/compare.py of a source checkout",
                   add_help=False)
    return parser

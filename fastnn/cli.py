"""The ``fastnn`` command: train, evaluate, sweep (and ``bench``, a launcher for a checkout)."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from .cli_options import CLIError, as_option_error, build_parser, resolve_args, training_of
from .cli_report import format_summary, loss_grew, sweep_line, sweep_table
from .recipe import DATASET_OPTIONS, DATASETS, load_dataset
from .speeds import speed_note


def cmd_warmup(args) -> int:
    from .warmup_kernels import DTYPES, warmup

    warmup(DTYPES if args.dtype == "both" else (args.dtype,), processes=args.processes,
           progress=not args.quiet)
    return 0


@contextlib.contextmanager
def _thread_settings_kept():
    """``fastnn train`` sets fastnn's thread policy and this process's BLAS threads for its
    run; both are put back when it returns or raises (``main()`` called from Python: a
    notebook, a test), as every fastnn call does (the process's BLAS as the user set it).
    A decorator of ``cmd_train``, the function that sets them."""
    from threadpoolctl import ThreadpoolController

    from .threads import set_num_threads, thread_policy

    policy = thread_policy()
    try:
        # (limits=None changes nothing; leaving the block puts back each BLAS's count)
        with ThreadpoolController().select(user_api="blas").limit(limits=None):
            yield
    finally:
        set_num_threads(None if policy == "auto" else policy)


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


def _optional(feature, *args):
    """``feature(*args)``, or None when it fails: an optional feature (the speed note)
    never fails a run (no home folder, a damaged record, a full disk)."""
    try:
        return feature(*args)
    except Exception:
        return None


@_thread_settings_kept()  # (the settings it makes below are put back when it returns)
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
    (x, t), (x_test, t_test) = load_dataset(args.dataset, args.data_dir,
                                            images=config["model"] != "mlp")
    load_seconds = time.perf_counter() - loading
    hidden, activation = config["hidden"], config["activation"]
    try:
        from . import recipe

        net, optimizer = recipe.build(config, x.shape[1:], recipe.n_outputs(config, t))
        history = fastnn.fit(net, x, t, x_test=x_test, t_test=t_test, optimizer=optimizer,
                             progress=not (args.quiet or args.json),
                             **recipe.fit_arguments(config))
    except (ValueError, TypeError) as exc:
        option_error = as_option_error(exc)
        if option_error is None:
            raise
        raise option_error from None
    summary = history.summary()
    if config["loss"] != "softmax":  # regression: the final loss on the training set
        summary["train_loss"], _ = fastnn.evaluate(net, x, t)
    summary.update(dataset=args.dataset, model=config["model"], hidden=hidden,
                   activation=activation,
                   loss_function=config["loss"], bias=config["bias"],
                   backend=args.backend,
                   dtype=args.dtype, seed=args.seed,
                   optimizer=repr(optimizer), weight_decay=args.weight_decay,
                   dropout=args.dropout, batchnorm=args.batchnorm)
    summary["batch_size"] = config["batch_size"]
    # the model first: nothing optional below may lose it
    save_error = None
    if args.save:
        net.metadata = _model_metadata(args, config["model"])
        try:
            net.save(args.save)
        except OSError as exc:  # (named, previous file kept: serialize.atomic_write)
            save_error = exc
    note = _optional(speed_note, summary)
    if note:
        summary["note"] = note
        print(f"fastnn: note: {note}", file=sys.stderr)
    warning = loss_grew(history.initial_loss, history)
    if warning:
        summary["warning"] = warning
        print(f"fastnn: warning: {warning}", file=sys.stderr)
    if save_error is not None:  # the summary still printed, then the error (exit 1)
        print(json.dumps(summary) if args.json else format_summary(summary))
        raise save_error
    if args.plot:
        from .plot import plot_history

        fit_curve = None
        if config["loss"] != "softmax" and x.shape[1] == 1:
            fit_curve = (x, t, net.predict(x))
        plot_history(history, args.plot, title=f"fastnn on {args.dataset}", fit=fit_curve)
    summary["load_seconds"] = load_seconds
    summary["wall_seconds"] = time.perf_counter() - started
    print(json.dumps(summary) if args.json else format_summary(summary))
    return 0


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
                         warmup=args.warmup, training=training_of(args))
    except (ValueError, TypeError) as exc:
        raise as_option_error(exc) or exc from None
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
            print(sweep_line(record, done, total, plan.regression), file=sys.stderr,
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
        raise as_option_error(exc) or exc from None
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
            net.metadata = _model_metadata(args, plan.base["model"])
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
        print(sweep_table(trials))
    if save_error is not None and (args.save or best is not None):
        print(f"fastnn: error: {'--save: ' if args.save else ''}{save_error}", file=sys.stderr)
        return 1
    return 0


def _model_metadata(args, model: str = "mlp") -> dict:
    """What a saved model remembers of its data: the set, its options (a convnet's images:
    flatten False), and the folder ``--data-dir`` named (absolute), so that ``fastnn
    evaluate`` finds the same files."""
    options = dict(DATASET_OPTIONS[args.dataset])
    if model != "mlp":
        options["flatten"] = False
    meta = {"dataset": args.dataset, "dataset_options": options}
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
    images = getattr(net, "input_dim", None)  # a convnet's (channels, height, width)
    if images is not None and dataset == "sine":
        raise CLIError(f"--dataset: the model is a {type(net).__name__}, which takes images; "
                       f"sine has none")
    (x, t), (x_test, t_test) = load_dataset(dataset, data_dir, images=images is not None)
    if x_test is None:  # sine: the training points are the whole data set
        x_test, t_test = x, t
    trained = f" (it was trained on {recorded})" if recorded else ""
    if images is not None and tuple(x_test.shape[1:]) != tuple(images):
        shown = "x".join(map(str, x_test.shape[1:]))
        raise CLIError(f"--dataset: {dataset} has images of {shown}, the model takes "
                       f"{'x'.join(map(str, images))}{trained}")
    features = int(np.prod(x_test.shape[1:]))
    if features != net.input_size:
        raise CLIError(f"--dataset: {dataset} has {features} features per sample, the model "
                       f"takes {net.input_size}{trained}")
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
    env.pop("PYTHONSAFEPATH", None)  # (the script imports the modules beside it)
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

"""Side-by-side timings: ``python benchmarks/compare.py`` (``fastnn bench`` in a checkout).

Everything that is compared is timed in one process, interleaved round by round (so a
noisy neighbour slows all contenders alike), and reported as medians and ratios. Cases
on different thread pools (fastnn's step beside NumPy's products) take turns of their
own with a pause between (``timing.in_turns``: OpenBLAS's idle threads spin for a tenth
of a second after a call and would take a core from the next case):

* the training step (forward, backward, SGD update: ``net.train_step``, as fit() runs
  it) of 784-128-128-10 at batch 32, 100 and 1000, float32 and float64: numpy backend,
  numba backend, and the GEMM-only lower bound (the same step's eight matrix products
  into preallocated outputs);
* the seed article's loop (its ``gradient()`` + ``params[key] -= lr * grad[key]``) with
  the article's class against the same loop with ``fastnn.Sequential``;
* steady-state memory: the peak allocated inside one step (tracemalloc), per batch size;
* first use: the compile time of a training step, cold and from numba's cache;
* with ``--only chapter6``: the book's overfit_dropout shape through ``fastnn.Trainer``
  against a book-style baseline (``book.py``), each optimizer's step beside the
  GEMM-only bound and its update beside the memory-traffic bound, and the cold compile
  of an extended network;
* with ``--only load``: quiet and beside one and two busy processes, the training step at
  each batch size and dtype with the default thread policy against each forced count, and
  the book's chapter-6 scripts (imports swapped) against the book's code on one BLAS
  thread (issue 28's targets, with a verdict per cell);
* with ``--only sweep``: a sweep's trials in this process against a local Dask cluster of
  one and two single-threaded workers, quiet and beside busy processes, and the
  cluster's cost per trial; a fresh cluster with an empty kernel cache with and without
  the worker warm-up (not with --quick); then the samplers and pruners (random, tpe, median and
  asha pruning: best validation accuracy, trials to the best, epochs trained) on the
  book's search (``sweep_search.py`` runs the full targets);
* with ``--only convnet``: the book's SimpleConvNet and DeepConvNet (chapters 7 and 8): a
  training iteration (batch 100, Adam) in both dtypes, the evaluation of 10,000 and 1,000
  images, each conv and pooling op forward + backward: the book's code
  (``book_conv.py``), fastnn's numpy and numba backends, PyTorch eager when installed;
* with ``--peers``: PyTorch eager CPU and scikit-learn's MLPClassifier, each in its own
  block (their thread pools and OpenBLAS's slow each other when interleaved).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

if __package__:  # imported by asv's discovery as benchmarks.compare
    from .reports import chapter6, compiled, convnet, load, peers, steps, sweep
else:  # run as a script: benchmarks/ is on sys.path
    from reports import chapter6, compiled, convnet, load, peers, steps, sweep


def _everything(args, batches, dtypes) -> None:
    """The default report: steps, the article's loop, memory, the compiled path, compile
    times and (--peers) the peers."""
    table = steps.report_steps(batches, dtypes, args.rounds)
    if args.only != "steps":  # (--only steps: the step tables, and the peers if asked)
        steps.report_article(args.rounds)
        steps.report_memory(batches)
        compiled.report_compiled(args.quick)
        if not args.no_compile and not args.quick:
            steps.report_compile_times()
    if args.peers:
        peers.report_peers(batches, args.rounds, table)


# --only NAME: the report it runs (each in a module of benchmarks/reports/)
REPORTS = {
    "steps": _everything,
    "breakdown": lambda args, batches, dtypes: steps.report_breakdown(batches, dtypes,
                                                                      args.rounds),
    "compiled": lambda args, batches, dtypes: compiled.report_compiled(args.quick),
    "chapter6": lambda args, batches, dtypes: chapter6.report_chapter6(args.quick),
    "load": lambda args, batches, dtypes: load.report_load(batches, dtypes, args.rounds,
                                                           args.quick),
    "sweep": lambda args, batches, dtypes: sweep.report_sweep(args.quick),
    "convnet": lambda args, batches, dtypes: convnet.report_convnet(args.quick),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="fastnn bench" if os.environ.get("FASTNN_BENCH_PROG") else "compare.py",
        description="Side-by-side timings, interleaved in one process and reported as "
                    "medians and ratios: the training step (numpy backend, numba backend, "
                    "GEMM-only bound), the seed article's loop, memory, the compiled path for "
                    "small networks, compile times; with --peers PyTorch and scikit-learn.",
        epilog="Measurements and how to read them: docs/performance.md.")
    parser.add_argument("--batches", default="32,100,1000",
                        help="comma-separated batch sizes (default 32,100,1000)")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per table")
    parser.add_argument("--quick", action="store_true", help="one batch, few rounds: a smoke run")
    parser.add_argument("--peers", action="store_true",
                        help="also time PyTorch and scikit-learn when installed")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile-time run")
    parser.add_argument("--only", choices=tuple(REPORTS),
                        help="only the training-step tables, the per-kernel breakdown, the "
                             "compiled-path tables, the chapter-6 tables, the thread "
                             "settings under load, the sweep tables or the convnet tables")
    args = parser.parse_args(argv)
    try:
        batches = [int(b) for b in args.batches.split(",")]
        dtypes = [np.dtype(d) for d in args.dtypes.split(",")]
    except (ValueError, TypeError) as exc:
        parser.error(f"--batches/--dtypes: {exc}")
    if args.quick:
        batches, dtypes, args.rounds = batches[:1], dtypes[:1], 2

    import numba

    print(f"# fastnn bench: numba {numba.__version__}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs, numba threads {numba.get_num_threads()}\n")
    REPORTS.get(args.only, _everything)(args, batches, dtypes)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Seeds 002 and 004: each article's own code against fastnn, whole runs, same numbers.

    python benchmarks/seeds.py [--repeat 5] [--only 002|004] [--busy N]

The articles' code is ``tests/_articles.py`` (plain NumPy, as each article runs it; the
tests check fastnn against the same functions). For each seed it first checks that
fastnn gives the article's numbers (002: the errors printed every 200 epochs, relative
1e-9; 004: every step's loss, 1e-9, and the final weights, 1e-12) and stops with an
error if not; then it times the whole runs, the article's and fastnn's taking turns,
and prints the median of ``--repeat`` runs of each:

* 002, the sine article: its loop (2,001 epochs of 63 one-sample steps) against
  ``fastnn.recipe.sine_article`` (its documented recipe: ``fit`` with the article's
  bias initialisation and per-epoch global shuffle). Target: 50x.
* 004, PyTorch's NumPy warm-up: its loop (500 full-batch steps of 1000-100-10) against
  the same loop with fastnn's network, the user's own update (``loss_and_gradient``,
  then ``params[key] -= lr * grads[key]``), and with ``train_step(x, y, SGD(lr))``.
  Target: 2x.

fastnn's first run in a process compiles its kernels (or loads them from numba's
cache); it is a warm-up here, printed apart. ``--busy N`` starts N busy-loop processes
for the duration (a loaded machine; they are stopped at the end). Measure on a quiet
machine for the figures in docs/performance.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _articles import sine_002, warmup_004, warmup_004_fastnn  # noqa: E402

import fastnn  # noqa: E402
from fastnn import recipe  # noqa: E402


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def check_002() -> None:
    """fastnn's recipe gives the article's errors (relative 1e-9), or SystemExit."""
    ref, _ = sine_002(seed=0)
    _, got = recipe.sine_article(seed=0)
    worst = max(abs(got[e] / ref[e] - 1) for e in ref)
    print(f"002: the errors at epochs {', '.join(map(str, ref))}: largest relative "
          f"difference {worst:.1e} (first {ref[0]:.6g}, last {ref[max(ref)]:.6g})")
    if not worst < 1e-9:
        raise SystemExit("002: fastnn does not give the article's numbers; not timed")


def check_004() -> None:
    """fastnn gives the warm-up's losses (1e-9) and weights (1e-12), or SystemExit."""
    _, _, ref, w1, w2 = warmup_004(seed=0)
    for fused in (False, True):
        _, _, losses, net = warmup_004_fastnn(seed=0, fused=fused)
        worst = float(np.max(np.abs(losses / ref - 1)))
        weights = max(float(np.max(np.abs(net.params["W1"] - w1))),
                      float(np.max(np.abs(net.params["W2"] - w2))))
        print(f"004 ({'train_step' if fused else 'own update'}): the 500 losses' largest "
              f"relative difference {worst:.1e}, the weights' {weights:.1e} (loss "
              f"{ref[0]:.4g} -> {ref[-1]:.4g})")
        if not (worst < 1e-9 and weights < 1e-12):
            raise SystemExit("004: fastnn does not give the article's numbers; not timed")


def timed(cases: dict, repeat: int) -> dict:
    """Median seconds of each case's whole run, the cases taking turns."""
    times = {name: [] for name in cases}
    for _ in range(repeat):
        for name, fn in cases.items():
            times[name].append(_seconds(fn))
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="whole runs of each (median)")
    parser.add_argument("--only", choices=("002", "004"))
    parser.add_argument("--busy", type=int, default=0, metavar="N",
                        help="busy-loop processes beside the benchmark")
    args = parser.parse_args(argv)
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(args.busy)]
    try:
        rows = []
        if args.only in (None, "002"):
            warm = _seconds(lambda: recipe.sine_article(seed=0, epochs=1))
            check_002()
            t = timed({"article": lambda: sine_002(seed=0),
                       "fastnn": lambda: recipe.sine_article(seed=0)}, args.repeat)
            rows.append(("002 sine, 2,001 epochs x 63 steps", "recipe.sine_article",
                         t["article"], t["fastnn"], warm, 50))
        if args.only in (None, "004"):
            warm = _seconds(lambda: warmup_004_fastnn(seed=0, steps=1))
            check_004()
            t = timed({"article": lambda: warmup_004(seed=0),
                       "own": lambda: warmup_004_fastnn(seed=0),
                       "fused": lambda: warmup_004_fastnn(seed=0, fused=True)}, args.repeat)
            rows.append(("004 warm-up, 500 steps", "own update", t["article"], t["own"],
                         warm, 2))
            rows.append(("004 warm-up, 500 steps", "train_step(SGD)", t["article"],
                         t["fused"], warm, 2))
    finally:
        for p in busy:
            p.kill()
            p.wait()
    print(f"\nmedian of {args.repeat} whole runs each; fastnn {fastnn.__version__}, "
          f"numpy {np.__version__}; {args.busy} busy processes beside\n")
    print("| seed | fastnn as | article's code | fastnn | faster | target | fastnn's first "
          "use in the process |\n|---|---|---|---|---|---|---|")
    for name, how, article, ours, warm, target in rows:
        print(f"| {name} | {how} | {article:.3f} s | {ours * 1e3:.1f} ms | "
              f"{article / ours:.1f}x | {target}x | {warm:.2f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

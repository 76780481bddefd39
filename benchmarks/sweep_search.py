"""Samplers and pruners on the book's search: does TPE find a better network with fewer
trials than random search, and does pruning reach the same best trial with fewer epochs?

    python benchmarks/sweep_search.py                       # the targets (long: see below)
    python benchmarks/sweep_search.py --datasets digits --trials 12 --epochs 4 --seeds 2

For each data set and seed, five sweeps over the book's space (lr 10^U(-6,-2), weight
decay 10^U(-8,-4)), each trial trained with the data set's defaults for ``--epochs``:

* ``random`` and ``tpe``: the best validation accuracy after all trials, and the trial
  count at which each sweep first reached its own best (trials-to-best); for tpe also
  when it first reached random's final best;
* ``random+median``, ``random+asha``: the random search's own trials (the random sampler
  asks the same values with or without a pruner) with pruning: whether the best trial is
  the unpruned search's best trial, and the epochs trained against the epochs planned;
* ``tpe+asha``: both together (TPE learns from the pruned curves, so its trials differ).

Medians over the seeds go in the summary table. Trials run in this process by default
(``--workers N``: a local Dask cluster; the results are the same, by construction).
``compare.py --only sweep`` prints a small version of the table (``search_rows``).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time

SETUPS = {  # name -> (sampler, prune)
    "random": ("random", "none"),
    "tpe": ("tpe", "none"),
    "random+median": ("random", "median"),
    "random+asha": ("random", "asha"),
    "tpe+asha": ("tpe", "asha"),
}


def trials_to(records, value) -> int | None:
    """1 + the first trial number whose finished validation accuracy reaches ``value``."""
    for r in sorted(records, key=lambda r: r["trial"]):
        if r["status"] == "ok" and r["val_acc"] is not None and r["val_acc"] >= value:
            return r["trial"] + 1
    return None


def run_setups(dataset: str, seed: int, trials: int, epochs: int, *, data_dir=None,
               workers: int = 1, round_size: int = 4, setups=tuple(SETUPS)) -> dict:
    """One seed's sweeps: setup name -> its numbers."""
    from fastnn import sweeps as S
    from fastnn.sweeps import search as L

    out, results = {}, {}
    for name in setups:
        sampler, prune = SETUPS[name]
        rounds = sampler == "tpe" or prune != "none"
        t0 = time.perf_counter()
        result = S.sweep(dataset=dataset, data_dir=data_dir, trials=trials, seed=seed,
                         epochs=epochs, workers=workers, sampler=sampler, prune=prune,
                         round_size=round_size if rounds else None)
        seconds = time.perf_counter() - t0
        best = result.best
        summary = L.pruning_summary(result)
        planned = trials * epochs
        results[name] = result
        out[name] = {"best_val_acc": None if best is None else best["val_acc"],
                     "best_trial": None if best is None else best["trial"],
                     "trials_to_best": None if best is None else
                     trials_to(result, best["val_acc"]),
                     "epochs_trained": sum(len((r.get("history") or {}).get("epoch") or [])
                                           for r in result),
                     "epochs_planned": planned,
                     "pruned": 0 if summary is None else summary["pruned"],
                     "seconds": seconds}
    target = out["random"]["best_val_acc"]
    for name, row in out.items():
        row["same_best_as_random"] = row["best_trial"] == out["random"]["best_trial"]
        row["trials_to_random_best"] = None if target is None else \
            trials_to(results[name], target)
    return out


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summary_rows(per_seed: list) -> list:
    """Per setup: medians over the seeds (and counts of seeds meeting the targets)."""
    rows = []
    for name in per_seed[0]:
        cells = [seed_rows[name] for seed_rows in per_seed]
        random_best = [seed_rows["random"]["best_val_acc"] for seed_rows in per_seed]
        rows.append({
            "setup": name,
            "best_val_acc": _median([c["best_val_acc"] for c in cells]),
            "at_least_random": sum(c["best_val_acc"] is not None and r is not None
                                   and c["best_val_acc"] >= r
                                   for c, r in zip(cells, random_best)),
            "trials_to_best": _median([c["trials_to_best"] for c in cells]),
            # a seed that never reached random's best counts as never (infinite)
            "trials_to_random_best": _median([math.inf if c["trials_to_random_best"] is None
                                              else c["trials_to_random_best"] for c in cells]),
            # (tpe asks other values: the same trial number is not the same trial)
            "same_best_trial": None if name.startswith("tpe") else
            sum(bool(c["same_best_as_random"]) for c in cells),
            "epochs_trained": _median([c["epochs_trained"] for c in cells]),
            "epochs_planned": cells[0]["epochs_planned"],
            "fewer_epochs": _median([c["epochs_planned"] / max(c["epochs_trained"], 1)
                                     for c in cells]),
            "seconds": _median([c["seconds"] for c in cells]),
            "seeds": len(cells),
        })
    return rows


def markdown(rows: list) -> str:
    lines = ["| setup | best val acc (median) | >= random's best (seeds) | trials to best "
             "(median) | trials to random's best (median) | best trial = random's (seeds) | "
             "epochs trained / planned (median) | fewer epochs | seconds (median) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        acc = "-" if r["best_val_acc"] is None else f"{r['best_val_acc']:.4f}"
        ttb = "-" if r["trials_to_best"] is None else f"{r['trials_to_best']:g}"
        ttr = "never" if r["trials_to_random_best"] == math.inf else \
            f"{r['trials_to_random_best']:g}"
        lines.append(f"| {r['setup']} | {acc} | {r['at_least_random']}/{r['seeds']} | {ttb} | "
                     f"{ttr} | "
                     f"{'-' if r['same_best_trial'] is None else r['same_best_trial']}"
                     f"{'' if r['same_best_trial'] is None else '/' + str(r['seeds'])} | "
                     f"{r['epochs_trained']:g} / "
                     f"{r['epochs_planned']} | {r['fewer_epochs']:.2f}x | "
                     f"{r['seconds']:.1f} |")
    return "\n".join(lines)


def search_rows(dataset: str, trials: int, epochs: int, seeds, **kw) -> tuple[list, list]:
    """(summary rows, per-seed results) for ``compare.py`` and this script."""
    per_seed = [run_setups(dataset, seed, trials, epochs, **kw) for seed in seeds]
    return summary_rows(per_seed), per_seed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="sweep_search.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--datasets", default="digits,fashion-mnist",
                        help="comma-separated: digits, fashion-mnist, mnist")
    parser.add_argument("--data-dir", help="the four IDX files of fashion-mnist/mnist "
                                           "(default: fastnn's own lookup)")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1")
    parser.add_argument("--workers", type=int, default=1,
                        help="1: trials in this process; more: a local Dask cluster")
    parser.add_argument("--round-size", type=int, default=4)
    parser.add_argument("--setups", default=",".join(SETUPS),
                        help=f"comma-separated, of {', '.join(SETUPS)}")
    parser.add_argument("--json", metavar="FILE", help="also write every number here")
    args = parser.parse_args(argv)
    setups = tuple(s.strip() for s in args.setups.split(",") if s.strip())
    unknown = [s for s in setups if s not in SETUPS]
    if unknown:
        parser.error(f"--setups: unknown {unknown[0]!r}; expected some of {', '.join(SETUPS)}")
    if "random" not in setups:
        parser.error("--setups: random is the baseline the others are compared with")
    import fastnn

    fastnn.set_num_threads(1)
    everything = {}
    for dataset in (d.strip() for d in args.datasets.split(",") if d.strip()):
        t0 = time.perf_counter()
        rows, per_seed = search_rows(dataset, args.trials, args.epochs, range(args.seeds),
                                     data_dir=args.data_dir, workers=args.workers,
                                     round_size=args.round_size, setups=setups)
        print(f"## {dataset}: the book's search, {args.trials} trials of {args.epochs} "
              f"epochs, seeds 0-{args.seeds - 1}, rounds of {args.round_size} "
              f"({time.perf_counter() - t0:.0f} s)\n")
        print(markdown(rows) + "\n", flush=True)
        everything[dataset] = {"summary": rows, "per_seed": per_seed}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"argv": sys.argv[1:], "results": everything}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

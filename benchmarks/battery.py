"""A hostile battery for fit()'s guard: random networks, data and learning rates.

    python benchmarks/battery.py --cases 5000

Each case trains a small random network with a random (often absurd) learning rate on
random data of a random scale, on a random path (step or compiled) and dtype. The
promise under test: fit() either returns with every parameter finite, or raises
TrainingDiverged with every parameter finite. Anything else is counted and printed.
Not an asv benchmark (asv imports this module and finds none in it).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def run_case(rng) -> str:
    import fastnn

    D, H, C = (int(v) for v in rng.integers(1, 8, 3))
    loss = "mse" if rng.random() < 0.4 else "softmax"
    dtype = np.float32 if rng.random() < 0.5 else np.float64
    activation = "sigmoid" if rng.random() < 0.5 else "relu"
    net = fastnn.Sequential(D, [H], C, "he", activation=activation, loss=loss, dtype=dtype,
                            seed=int(rng.integers(0, 2**31)))
    n = int(rng.integers(1, 12))
    x = rng.standard_normal((n, D)) * 10.0 ** rng.uniform(-2, 3)
    t = (rng.standard_normal((n, C)) * 10.0 ** rng.uniform(0, 3) if loss == "mse"
         else rng.integers(0, C, n))
    top = 45 if dtype == np.float32 else 300  # beyond float32: refused up front
    lr = 10.0 ** rng.uniform(-2, top)
    try:
        fastnn.fit(net, x, t, optimizer=fastnn.SGD(lr), batch_size=int(rng.integers(1, n + 1)),
                   iters=int(rng.integers(1, 40)), eval_every=int(rng.integers(1, 10)),
                   progress=False, compiled=bool(rng.random() < 0.5))
        outcome = "returned"
    except fastnn.TrainingDiverged:
        outcome = "diverged"
    except ValueError as exc:  # refused up front (e.g. lr beyond float32)
        return "refused" if str(exc).startswith("lr:") else f"error: {exc}"
    if not np.all(np.isfinite(net.params.flat)):
        return f"{outcome} with non-finite parameters"
    return outcome


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    counts: dict[str, int] = {}
    for _ in range(args.cases):
        outcome = run_case(rng)
        counts[outcome] = counts.get(outcome, 0) + 1
    bad = sum(v for k, v in counts.items() if k not in ("returned", "diverged", "refused"))
    for outcome, count in sorted(counts.items()):
        print(f"{count:7d}  {outcome}")
    print(f"{args.cases} cases, {args.cases - bad} held, {bad} broke the promise")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

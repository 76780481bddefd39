"""Peer rows: PyTorch eager CPU and scikit-learn's MLPClassifier, when installed."""

from __future__ import annotations

import numpy as np

try:  # imported by asv's discovery as benchmarks.reports.*
    from ..timing import interleaved
except ImportError:  # run from compare.py as a script: benchmarks/ is on sys.path
    from timing import interleaved

from .cases import SIZES, ms, problem


def torch_step_times(batches, rounds: int) -> dict[int, float] | None:
    """Median seconds of the same float32 step in PyTorch eager mode, if installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    cases = {}
    for N in batches:
        x, t = problem(N, np.float32)
        xt, tt = torch.from_numpy(x), torch.from_numpy(t)

        def step(xt=xt, tt=tt):
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xt), tt).backward()
            opt.step()

        cases[N] = step
    return interleaved(cases, rounds)


def sklearn_step_times(batches, rounds: int) -> dict[int, float] | None:
    """Median seconds of one MLPClassifier SGD step (partial_fit on one batch), float64."""
    try:
        import warnings

        from sklearn.neural_network import MLPClassifier
    except ImportError:
        return None
    cases = {}
    for N in batches:
        x, t = problem(N, np.float64)
        clf = MLPClassifier(hidden_layer_sizes=SIZES[1:-1], solver="sgd", batch_size=N,
                            learning_rate_init=0.01, momentum=0.0, alpha=0.0, shuffle=False,
                            random_state=0)
        classes = np.arange(SIZES[-1])

        def step(clf=clf, x=x, t=t, classes=classes):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clf.partial_fit(x, t, classes=classes)

        cases[N] = step
    return interleaved(cases, rounds)


def _peer_table(name, label, dtype, times, steps, batches) -> None:
    """One peer's step times beside fastnn's numba step of the same dtype."""
    if times is None:
        print(f"{name}: not installed, skipped.\n")
        return
    print(f"| batch | {label} {dtype} | fastnn numba {dtype} | {name} / fastnn |")
    print("|---|---|---|---|")
    for N in batches:
        ours = steps.get((dtype, N), {}).get("numba")
        ratio = f"{times[N] / ours:.2f}" if ours else "n/a"
        print(f"| {N} | {ms(times[N])} | {ms(ours) if ours else 'n/a'} | {ratio} |")
    print()


def report_peers(batches, rounds: int, steps: dict) -> None:
    print("## Peers, each timed in its own block, median ms\n")
    _peer_table("PyTorch", "PyTorch eager", "float32", torch_step_times(batches, rounds),
                steps, batches)
    _peer_table("scikit-learn", "MLPClassifier", "float64", sklearn_step_times(batches, rounds),
                steps, batches)

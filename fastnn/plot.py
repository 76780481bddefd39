"""Learning-curve pictures (matplotlib from the ``plot`` extra, Agg backend)."""

from __future__ import annotations

import numpy as np

from .serialize import atomic_write


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install matplotlib (from a fastnn "
                          "checkout: pip install '.[plot]')") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _accuracy_limits(values) -> tuple[float, float]:
    """The accuracy axis zoomed to the data (with a margin), never beyond [0, 1]."""
    data = [v for v in values if v == v]
    if not data:
        return 0.0, 1.0
    low, high = min(data), max(data)
    margin = max(0.02, 0.1 * (high - low))
    return max(0.0, low - margin), min(1.0, high + margin)


def plot_history(history, path, *, title: str = "", fit=None) -> None:
    """Write a picture with two panels, like the seed article's figure; the format is
    the file's extension (.png, .svg, .pdf, .jpg ...).

    Left: train vs test accuracy per evaluation (classification; the axis zoomed to the
    data), or, when ``fit`` is given as ``(x, t, y)`` for 1-D regression, the data and
    the fitted curve. Right: the training loss (on a log axis for regression, whose loss
    falls by orders of magnitude). The x-axis is the iteration for classification and
    the epoch for regression, as in the articles. The file is written atomically.
    """
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    regression = all(a is None for a in history.train_acc)
    iters = np.asarray(history.epoch if regression else history.iteration)
    x_label = "epoch" if regression else "iteration"
    if fit is not None:
        x, t, y = (np.asarray(a).reshape(-1) for a in fit)
        order = np.argsort(x)
        left.scatter(x, t, s=12, color="tab:gray", label="data")
        left.plot(x[order], y[order], color="tab:red", label="network")
        left.set_xlabel("input x")
        left.set_ylabel("output")
        left.set_title("Fitted curve")
        left.legend(loc="upper right")
    else:
        train = [np.nan if a is None else a for a in history.train_acc]
        left.plot(iters, train, label="train acc")
        if any(a is not None for a in history.test_acc):
            test = [np.nan if a is None else a for a in history.test_acc]
            left.plot(iters, test, label="test acc", linestyle="--")
        left.set_xlabel(x_label)
        left.set_ylabel("accuracy")
        left.set_ylim(*_accuracy_limits(train + ([np.nan if a is None else a
                                                  for a in history.test_acc])))
        left.set_title("Train acc vs test acc")
        left.legend(loc="lower right")
    right.plot(iters, history.loss, label="train loss (batch mean)")
    if any(v is not None for v in history.test_loss):
        right.plot(iters, [np.nan if v is None else v for v in history.test_loss],
                   label="test loss", linestyle="--")
    right.set_xlabel(x_label)
    right.set_ylabel("loss")
    if regression and all(v > 0 for v in history.loss if v == v):
        right.set_yscale("log")
    right.set_title("Loss")
    right.legend(loc="upper right")
    if title:
        fig.suptitle(title)
    _save(plt, fig, path)


def _save(plt, fig, path) -> None:
    """Write ``fig`` atomically in the format of ``path``'s extension."""
    fig.tight_layout()
    fmt = str(path).rsplit(".", 1)[-1].lower() if "." in str(path) else "png"
    if fmt not in fig.canvas.get_supported_filetypes():
        plt.close(fig)
        raise ValueError(f"path: unknown picture format {fmt!r}; use one of "
                         f"{', '.join(sorted(fig.canvas.get_supported_filetypes()))}")
    atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=100))
    plt.close(fig)


def plot_sweep(trials, path, *, title: str = "", best: int = 20) -> None:
    """The book's picture of a random search: the ``best`` trials' validation (solid) and
    training (dashed) accuracy per epoch in a grid, ranked, and below them each finished
    trial's final validation accuracy over the first two searched hyperparameters (lr and
    weight decay for the book's search), on log axes where they span decades; trials
    stopped by a pruner are marked there with a red x."""
    plt = _pyplot()
    ranked = [r for r in trials.ranked() if r.get("status") == "ok"][:best]
    cols = 5
    rows = max(1, -(-len(ranked) // cols))
    fig = plt.figure(figsize=(3 * cols, 2.2 * rows + 4))
    grid = fig.add_gridspec(rows + 2, cols)
    key = "val_loss" if trials.regression else "val_acc"
    train_key = "loss" if trials.regression else "train_acc"
    for k, r in enumerate(ranked):
        ax = fig.add_subplot(grid[k // cols, k % cols])
        h = r.get("history") or {}
        epochs = h.get("epoch") or []
        ax.plot(epochs, [np.nan if v is None else v for v in h.get(key) or []])
        ax.plot(epochs, [np.nan if v is None else v for v in h.get(train_key) or []],
                linestyle="--")
        ax.set_title(f"best-{k + 1} (trial {r['trial']}, {key.replace('_', ' ')} "
                     f"{r[key]:.3g})", fontsize=8)
        if not trials.regression:
            ax.set_ylim(0.0, 1.0)
        if k == 0:
            ax.legend(["validation", "training"], fontsize=7, loc="best")
        ax.tick_params(labelsize=7)
    if not ranked:
        fig.add_subplot(grid[0, :]).set_title("no trial finished")
    names = sorted({n for r in trials for n in r.get("params", {})},
                   key=lambda n: (n not in ("lr", "weight_decay"), n))
    done = [r for r in trials if r.get("status") == "ok" and r.get(key) is not None]
    pruned = [r for r in trials if r.get("status") == "pruned"]
    ax = fig.add_subplot(grid[rows:, :])
    if names and done:

        def coordinates(records):
            xs = np.array([r["params"].get(names[0], np.nan) for r in records], dtype=float)
            ys = np.array([r["params"].get(names[1], np.nan) if len(names) > 1 else
                           (np.nan if r.get(key) is None else r[key]) for r in records],
                          dtype=float)
            return xs, ys

        xs, ys = coordinates(done)
        colour = np.array([r[key] for r in done], dtype=float)
        points = ax.scatter(xs, ys, c=colour, cmap="viridis", s=30, label="finished")
        fig.colorbar(points, ax=ax, label=key.replace("_", " "))
        if pruned:  # stopped early: where they were, not how well they ended
            px, py = coordinates(pruned)
            ax.scatter(px, py, marker="x", color="tab:red", s=30,
                       label=f"pruned ({len(pruned)})")
            ax.legend(fontsize=7, loc="best")
            xs, ys = np.concatenate([xs, px]), np.concatenate([ys, py])
        for values, setter in ((xs, ax.set_xscale), (ys, ax.set_yscale)):
            finite = values[np.isfinite(values)]
            if finite.size and finite.min() > 0 and finite.max() / finite.min() >= 100:
                setter("log")
        ax.set_xlabel(names[0].replace("_", " "))
        ax.set_ylabel(names[1].replace("_", " ") if len(names) > 1 else key.replace("_", " "))
        ax.set_title(f"{key.replace('_', ' ')} of each trial")
    else:
        ax.set_title("nothing to show: no finished trial")
    if title:
        fig.suptitle(title)
    _save(plt, fig, path)

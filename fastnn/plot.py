"""Learning-curve pictures (matplotlib from the ``plot`` extra, Agg backend)."""

from __future__ import annotations

import numpy as np

from .serialize import atomic_write


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'fastnn[plot]'") from None
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
    fig.tight_layout()
    fmt = str(path).rsplit(".", 1)[-1].lower() if "." in str(path) else "png"
    if fmt not in fig.canvas.get_supported_filetypes():
        plt.close(fig)
        raise ValueError(f"path: unknown picture format {fmt!r}; use one of "
                         f"{', '.join(sorted(fig.canvas.get_supported_filetypes()))}")
    atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=100))
    plt.close(fig)

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


def plot_history(history, path, *, title: str = "", fit=None) -> None:
    """Write a PNG with two panels, like the seed article's figure.

    Left: train vs test accuracy per evaluation (classification), or, when ``fit`` is
    given as ``(x, t, y)`` for 1-D regression, the data and the fitted curve. Right: the
    training loss curve. The file is written atomically.
    """
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    iters = np.asarray(history.iteration)
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
        left.set_xlabel("iteration")
        left.set_ylabel("accuracy")
        left.set_ylim(0, 1.0)
        left.set_title("Train acc vs test acc")
        left.legend(loc="lower right")
    right.plot(iters, history.loss, label="train loss (batch mean)")
    if any(v is not None for v in history.test_loss):
        right.plot(iters, [np.nan if v is None else v for v in history.test_loss],
                   label="test loss", linestyle="--")
    right.set_xlabel("iteration")
    right.set_ylabel("loss")
    right.set_title("Loss")
    right.legend(loc="upper right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)

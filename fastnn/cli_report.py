"""What the ``fastnn`` command prints: a training run's summary line, a warning for a loss
that grew, a sweep's per-trial lines and its ranked table."""

from __future__ import annotations

from .recipe import DATASET_OPTIONS, DATASETS, DEFAULTS, load_dataset  # noqa: F401


def format_summary(summary: dict) -> str:
    parts = []
    if summary.get("train_acc") is not None:
        parts.append(f"train acc {summary['train_acc']:.4f}")
        if summary.get("test_acc") is not None:
            parts.append(f"test acc {summary['test_acc']:.4f}")
    else:
        parts.append(f"train loss {summary['train_loss']:.6g}")
        if summary.get("test_loss") is not None:
            parts.append(f"test loss {summary['test_loss']:.6g}")
    line = ", ".join(parts)
    if "train_seconds" in summary:
        per_iter = summary["seconds_per_iter"]
        per = f"{per_iter * 1e3:.3f} ms" if per_iter >= 1e-4 else f"{per_iter * 1e6:.3f} us"
        line += (f" | {summary['iterations']} iterations in {summary['train_seconds']:.2f} s "
                 f"({per}/iter; compiling {summary['compile_seconds']:.2f} s)")
    if "wall_seconds" in summary:  # what the rest of the command's time went to
        rest = (summary["wall_seconds"] - summary["load_seconds"]
                - summary["compile_seconds"] - summary["train_seconds"])
        line += (f" | {summary['wall_seconds']:.2f} s in all after start-up: loading the "
                 f"data {summary['load_seconds']:.2f} s, evaluations, saving and plotting "
                 f"{max(rest, 0.0):.2f} s")
    return line


def loss_grew(first: float, history) -> str | None:
    """A warning when the training loss ended far above the untrained network's."""
    losses = [v for v in history.loss if v == v]
    if losses and first > 0 and losses[-1] > 10 * first:
        return (f"the training loss grew from {first:.4g} (untrained) to {losses[-1]:.4g}: "
                "the learning rate is probably too large (try --lr with a tenth of it)")
    return None


def sweep_line(record, done: int, total: int, regression: bool) -> str:
    params = "  ".join(f"{k.replace('_', '-')}={v:.4g}" for k, v in record["params"].items())
    if record["status"] == "ok":
        score = (f"val loss {record['val_loss']:.4g}" if regression
                 else f"val acc {record['val_acc']:.4f}")
    elif record["status"] == "pruned":
        last = record["val_loss"] if regression else record["val_acc"]
        score = f"pruned after epoch {record['pruned_at']} ({last:.4g})"
    else:
        score = record["status"]
    where = record.get("worker") or "?"
    return (f"[{done}/{total}] trial {record['trial']}: {score}  {params}  "
            f"({record['seconds']:.3g} s on {where})")


def sweep_table(trials, shown: int = 20) -> str:
    ranked = trials.ranked()
    names = sorted({k for r in ranked for k in r["params"]})
    score = "val loss" if trials.regression else "val acc"
    head = f"{'rank':>4}  {'trial':>5}  {score:>8}  " + "".join(
        f"{n.replace('_', '-'):>13}" for n in names) + f"  {'status':<9}{'seconds':>8}"
    rows = [head]
    for rank, r in enumerate(ranked[:shown], 1):
        value = r.get("val_loss" if trials.regression else "val_acc")
        shown_value = f"{value:8.4f}" if value is not None else f"{'-':>8}"
        rows.append(f"{rank:>4}  {r['trial']:>5}  {shown_value}  " + "".join(
            f"{r['params'].get(n, float('nan')):>13.4g}" for n in names)
            + f"  {r['status']:<9}{r['seconds']:>8.3g}")
    if len(ranked) > shown:
        rows.append(f"({len(ranked) - shown} more trials: all are in --log and --json)")
    best = trials.best
    if best is not None:
        params = ", ".join(f"{k.replace('_', '-')}={v:.4g}" for k, v in best["params"].items())
        line = f"best: trial {best['trial']} ({params}): "
        if trials.regression:
            line += f"val loss {best['val_loss']:.4g}"
            if best.get("test_loss") is not None:
                line += f", test loss {best['test_loss']:.4g}"
        else:
            line += f"val acc {best['val_acc']:.4f}"
            if best.get("test_acc") is not None:
                line += f", test acc {best['test_acc']:.4f}"
        rows.append(line)
    else:
        rows.append("best: none (no trial finished)")
    from .sweeps.search import pruning_summary

    saved = pruning_summary(trials)
    if saved is not None:
        factor = saved["planned_epochs"] / max(saved["trained_epochs"], 1)
        rows.append(f"pruning: {saved['pruned']} of {saved['trials']} trials stopped early; "
                    f"{saved['trained_epochs']} of {saved['planned_epochs']} epochs trained, "
                    f"{saved['saved_epochs']} saved ({factor:.2f}x fewer)")
    return "\n".join(rows)

"""The speed record of ``fastnn train``: the best time per iteration this machine has run
each training at (``speeds.json`` in fastnn's cache folder), and a note when a run is
much slower than that. Optional: nothing here may fail a run."""

from __future__ import annotations

import json

from .recipe import DATASET_OPTIONS, DATASETS, DEFAULTS, load_dataset  # noqa: F401

SLOW_FACTOR = 2.5  # `fastnn train` notes a run this much slower than the machine's best


def speed_note(summary: dict) -> str | None:
    """Compare this run's time per iteration with the best this machine recorded for the
    same training (``speeds.json`` in fastnn's cache folder); record a new best. A note
    when this run was much slower, saying what fastnn did about it."""
    import datetime

    from . import get_num_threads
    from . import thread_policy as policy
    from .datasets import cache_dir
    from .serialize import atomic_write

    per_iter = summary.get("seconds_per_iter") or 0.0
    if per_iter <= 0 or summary.get("iterations", 0) < 50:
        return None
    fields = {k: summary.get(k) for k in ("dataset", "hidden", "activation", "loss", "bias",
                                          "backend", "dtype", "optimizer", "batchnorm",
                                          "dropout", "batch_size")}
    if summary.get("model", "mlp") != "mlp":  # (the plain networks' records keep their keys)
        fields["model"] = summary["model"]
    key = json.dumps(fields, sort_keys=True)
    path = cache_dir() / "speeds.json"
    try:
        speeds = json.loads(path.read_text()) if path.is_file() else {}
        if not isinstance(speeds, dict):
            speeds = {}
    except (OSError, ValueError):
        speeds = {}
    best = speeds.get(key)
    recorded = best.get("seconds_per_iter") if isinstance(best, dict) else None
    if isinstance(recorded, bool) or not isinstance(recorded, (int, float)) or \
            not 0 < recorded < float("inf"):
        best = recorded = None  # (a malformed entry: replaced by this run's)
    note = None
    if best is not None:
        ratio = per_iter / recorded
        if ratio > SLOW_FACTOR:
            threads = get_num_threads()
            if policy() != "auto":
                how = "forced with --threads"
            elif threads > 1:
                how = ("the automatic policy's choice for this size and the cores free "
                       "at the time; --threads 1 may help while the cores are busy")
            else:
                how = "the automatic policy's choice for this size and load"
            note = (f"this run took {per_iter * 1e6:.1f} us/iter, {ratio:.1f}x this machine's "
                    f"best for the same training ({recorded * 1e6:.1f} us/iter, "
                    f"{best.get('date', '?')}): other programs are probably using the cores. "
                    f"fastnn ran on {threads} thread(s) ({how})")
    if best is None or per_iter < recorded:
        speeds[key] = {"seconds_per_iter": per_iter,
                       "date": datetime.date.today().isoformat()}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda f: f.write(json.dumps(speeds).encode()))
        except OSError:  # a read-only home: no record, no harm
            pass
    return note

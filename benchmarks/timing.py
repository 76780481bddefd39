"""Timing helpers shared by the asv suite and ``compare.py``: interleaved medians.

Not an asv benchmark (asv imports this module and finds none in it).
"""

from __future__ import annotations

import statistics
import time


def interleaved(cases: dict, rounds: int = 7, budget: float = 0.04,
                slices: int = 8) -> dict[str, float]:
    """Median seconds per call of each case, timed in alternating rounds.

    Each round gives every case about ``budget`` seconds, in ``slices`` short blocks
    that take turns with the other cases' blocks. Short turns matter on a shared
    machine: a burst of stolen CPU time lasting a tenth of a second would otherwise
    land in one case's block and move its median alone.
    """
    for fn in cases.values():  # warm up: compile, allocate work buffers
        fn()
        fn()
    reps = {}
    for name, fn in cases.items():
        t0 = time.perf_counter()
        fn()
        reps[name] = max(2, int(budget / slices / max(time.perf_counter() - t0, 1e-7)))
    samples = {name: [] for name in cases}
    names = list(cases)
    for r in range(rounds * slices):
        for name in names[r % len(names):] + names[:r % len(names)]:
            fn, out = cases[name], samples[name]
            for _ in range(reps[name]):
                t0 = time.perf_counter()
                fn()
                out.append(time.perf_counter() - t0)
    return {name: statistics.median(s) for name, s in samples.items()}

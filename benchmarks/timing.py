"""Timing helpers shared by the asv suite and ``compare.py``: interleaved medians, turns
for cases on different thread pools, and the fastest block.

Not an asv benchmark (asv imports this module and finds none in it).
"""

from __future__ import annotations

import statistics
import time


def calls_per(cases: dict, seconds: float, least: int) -> dict[str, int]:
    """Warm each case up (two calls: numba compiles, work buffers are allocated), then
    how many calls of it last about ``seconds`` (at least ``least``), from a third call."""
    for fn in cases.values():
        fn()
        fn()
    reps = {}
    for name, fn in cases.items():
        t0 = time.perf_counter()
        fn()
        reps[name] = max(least, int(seconds / max(time.perf_counter() - t0, 1e-7)))
    return reps


def interleaved(cases: dict, rounds: int = 7, budget: float = 0.04,
                slices: int = 8) -> dict[str, float]:
    """Median seconds per call of each case, timed in alternating rounds.

    Each round gives every case about ``budget`` seconds, in ``slices`` short blocks
    that take turns with the other cases' blocks. Short turns matter on a shared
    machine: a burst of stolen CPU time lasting a tenth of a second would otherwise
    land in one case's block and move its median alone.
    """
    reps = calls_per(cases, budget / slices, least=2)
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


def in_turns(cases: dict, rounds: int = 5, turn: float = 0.15, settle: float = 0.12,
             statistic=statistics.median) -> dict[str, float]:
    """Median (or ``statistic``) seconds per call of each case, timed in turns of its own.

    For cases that run on different thread pools (NumPy's OpenBLAS, numba's OpenMP
    threads, another library's). A pool's idle threads keep spinning after its last call:
    OpenBLAS's for about 2**28 clock cycles (a tenth of a second), so on two cores a case
    timed right after a NumPy product loses a core to the spinning workers; interleaved
    call by call, fastnn's batch-1000 step measured 6.5 ms against 2.6 ms run alone.
    Here every round gives each case one turn of back-to-back calls lasting about
    ``turn`` seconds, after a pause of ``settle`` seconds in which the previous case's
    threads go idle, as they are when a program calls one of them in a loop; the
    rounds rotate the order, so a slow spell of the machine is shared out. The median is
    over every call of every turn.
    """
    reps = calls_per(cases, turn, least=1)
    samples = {name: [] for name in cases}
    names = list(cases)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            fn, out = cases[name], samples[name]
            time.sleep(settle)
            for _ in range(reps[name]):
                t0 = time.perf_counter()
                fn()
                out.append(time.perf_counter() - t0)
    return {name: float(statistic(s)) for name, s in samples.items()}


def best_blocks(cases: dict, rounds: int = 25, block: float = 0.002,
                clock=time.perf_counter) -> dict[str, float]:
    """Seconds per call of each case: the fastest of ``rounds`` timed blocks.

    A block is a run of back-to-back calls lasting about ``block`` seconds (at least one
    call); cases take turns block by block, starting each round at the next case. Load
    from other processes only ever adds time, so the fastest block is the statistic
    that holds still on a shared machine where a median drifts with the load; blocks
    shorter than a scheduler time slice give each round a fair chance of running
    undisturbed. The asv suite records this (``common.Measured``).
    """
    reps = calls_per(cases, block, least=1)
    best = dict.fromkeys(cases, float("inf"))
    names = list(cases)
    for r in range(-1, rounds):  # round -1 settles caches and allocator; not recorded
        for name in names[r % len(names):] + names[:r % len(names)]:
            fn, n = cases[name], reps[name]
            t0 = clock()
            for _ in range(n):
                fn()
            if r >= 0:
                best[name] = min(best[name], (clock() - t0) / n)
    return best

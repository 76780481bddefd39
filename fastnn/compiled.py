"""Which path fit() takes: one training step per call, or whole stretches compiled.

Both run the same step body (``fastnn.kernels.network.step_``) and give the same bits on
the same batches. The "compiled" path runs every batch between two evaluations inside
one kernel call (``Engine.train_batches``), which saves the per-step call overhead that
dominates small networks; the "step" path makes one compiled call per batch from Python
(``Engine.sgd_step``), which lets callbacks with ``on_step`` run after every step.
"""

from __future__ import annotations

# Up to this many multiply-adds per step (batch * sum(fan_in * fan_out)) fit() takes the
# compiled path; above it the two paths cost the same (the per-call overhead is lost in
# the GEMMs), and the step path keeps the parallel variants of the fused passes. Set from
# `python benchmarks/compare.py --only compiled` (see docs/performance.md).
COMPILED_MAX_WORK = 500_000


def step_work(net, batch_size: int) -> int:
    return batch_size * sum(i * o for i, o in zip(net.sizes[:-1], net.sizes[1:]))


def choose_path(net, batch_size, callbacks, compiled) -> str:
    """"compiled" or "step" for a fit() call (``compiled``: True, False or None = auto)."""
    if compiled is False:
        return "step"
    needs_python = [cb for cb in callbacks if hasattr(cb, "on_step")]
    if net.backend != "numba" or needs_python:
        if compiled:
            why = ("it needs backend='numba'" if net.backend != "numba"
                   else "a callback has on_step(), which runs Python after every step")
            raise ValueError(f"compiled: the compiled path cannot be used here: {why}")
        return "step"
    if compiled:
        return "compiled"
    return "compiled" if step_work(net, batch_size) <= COMPILED_MAX_WORK else "step"

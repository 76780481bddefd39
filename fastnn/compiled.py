"""Which path fit() takes: one training step per call, or whole stretches compiled.

Both run the same step body (the loop of ``fastnn.kernels.network``) and give the same
bits on the same batches. The "compiled" path runs whole evaluation periods inside one
kernel call, the evaluations included (``Engine.train_periods``; about a tenth of a
second of training per call without callbacks, one period per call with them), which
saves the per-step and per-evaluation Python that dominates small networks; the "step"
path makes one compiled call per batch from Python (``Engine.sgd_step``), which lets
callbacks with ``on_step`` run after every step.
"""

from __future__ import annotations

# Up to this many multiply-adds per step (batch * sum(fan_in * fan_out)) fit() takes the
# compiled path. Both paths run the same step on NumPy's BLAS, so the compiled path only
# saves the per-step calls from Python: measured faster on every network and batch
# tried, up to 11.8 M multiply-adds (784-128-128-10 at batch 100: 718 against 811 us per
# iteration; `python benchmarks/compare.py --only compiled`, docs/performance.md).
# Beyond that the saving is under a few percent, while a kernel call that runs a whole
# evaluation period keeps Python (the progress bar, Ctrl-C) waiting for seconds.
COMPILED_MAX_WORK = 12_000_000


def step_work(net, batch_size: int) -> int:
    return batch_size * sum(i * o for i, o in zip(net.sizes[:-1], net.sizes[1:]))


def choose_path(net, batch_size, callbacks, compiled, optimizer=None) -> str:
    """"compiled" or "step" for a fit() call (``compiled``: True, False or None = auto).

    The compiled path runs SGD's fused step: other optimizers, and Dropout (whose masks
    come from NumPy's random generators, in Python), take the step path.
    """
    if compiled is False:
        return "step"
    needs_python = [cb for cb in callbacks if hasattr(cb, "on_step")]
    why = None
    if net.backend != "numba":
        why = "it needs backend='numba'"
    elif needs_python:
        why = "a callback has on_step(), which runs Python after every step"
    elif optimizer is not None and not optimizer.fused_sgd:
        why = f"it runs SGD only (the optimizer is {type(optimizer).__name__})"
    elif getattr(net, "use_dropout", False):
        why = "the network has Dropout (its masks are drawn in Python)"
    if why is not None:
        if compiled:
            raise ValueError(f"compiled: the compiled path cannot be used here: {why}")
        return "step"
    if compiled:
        return "compiled"
    return "compiled" if step_work(net, batch_size) <= COMPILED_MAX_WORK else "step"

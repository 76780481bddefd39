"""Every numba option fastnn uses, in one place.

* fastmath: ``contract`` (FMA), ``arcp`` (x/y as x*(1/y)) and ``nsz`` only. ``nnan`` and
  ``ninf`` stay off so NaN/Inf checks and NaN propagation remain correct; ``reassoc``
  stays off so sums keep their order.
* cache: on by default (``FASTNN_NUMBA_CACHE=0`` turns it off), in fastnn's own folder,
  checked and never fatal: see ``_cache``.
* ``inline``: the decorator of the math bodies (a layer's forward and backward, a loss,
  an update, the network loop). numba inlines them at its IR level into each compiled
  function that calls them, so one source serves the per-op API, the whole-network
  kernels and the compiled training loop, with no call overhead between them. (Called
  as separate compiled functions instead, a small network's step took over twice as
  long and compiled no faster: every call passes each array argument, and numba links
  and re-optimises each callee into every caller; docs/performance.md.)

  When: ``INLINE``, numba's cost-model form of the option, inlines a body into the
  function being compiled, never into another body while numba prepares that body for
  inlining. (numba prepares a body by running its front end on it, which inlines the
  body's own bodies first; the result is deep-copied into the caller block by block,
  each block copy re-copying the body's whole variable scope, so nesting made each level
  copy everything below it again. Declined there, the nested calls are inlined when the
  body's blocks land in the function being compiled: each body is copied once, as it is
  written: the inlining pass takes half as long.)
  ``gemm`` and its small-product loop (``_blas``) use it too.
* ``compiled``: the decorator of the entry points that Python calls (kernels).
* ``callee``: ``compiled`` for the functions that only compiled code calls (the block
  bodies, the network loop's compiled helpers): numba makes no CPython or C wrapper for
  them (about 0.1 s of the plain network's cold compile).
* ``parallel=True`` in one place only: ``_blocks.runner``, whose parallel loop hands
  fixed blocks of a pass to numba's threads (dynamic scheduling; the blocks' arithmetic
  does not depend on the thread that runs it, so neither do the results). The network
  loop itself is compiled serially, in two forms: the serial one runs the blocks in
  turn, the parallel one calls the runner; the parallel form is compiled only where a
  call runs on threads (``network.run``), since numba's parallel compilation is slow.
"""

from __future__ import annotations

import os
import sys

import numba

from . import _cache

FASTMATH = frozenset({"contract", "arcp", "nsz"})
CACHE = _cache.ENABLED
COMMON = {"nogil": True, "fastmath": set(FASTMATH), "error_model": "numpy"}

# Products of fewer multiply-adds than this run as a plain loop inside ``_blas.gemm``
# instead of a BLAS call, which costs more than the arithmetic of a tiny product (the
# crossover: docs/performance.md).
SMALL_GEMM = int(os.environ.get("FASTNN_SMALL_GEMM", 256))


def compiled(fn, **options):
    """Decorator: compile ``fn`` (lazily, per argument types), cached where possible."""
    from . import _blas  # (initialised before any kernel module decorates a function)

    options = dict(COMMON, **options)
    # Compiled code calls NumPy's BLAS by symbol name only where it is bound; a cache entry
    # made with the binding must never load without it (or vice versa), and numba's cache
    # key cannot tell: without the binding nothing is cached.
    dispatcher = numba.njit(**options)(fn)
    return _cache.attach(dispatcher) if _blas.available else dispatcher


def callee(fn):
    """Decorator: a compiled function that only compiled code calls (a block body, a
    helper of the network loop): no CPython or C wrapper is made for it (Python cannot
    call it; ``NUMBA_DISABLE_JIT=1`` leaves it a Python function, as ``compiled``)."""
    return compiled(fn, no_cpython_wrapper=True, no_cfunc_wrapper=True)


def _into_the_function_compiled(expr, caller_ir, callee_ir):
    """numba's inlining decision for the bodies: inline into the function being
    compiled, but not into another body while numba prepares that body for inlining
    (its ``InlineWorker.run_untyped_passes`` is then on the stack; should a numba
    version rename it, every body is inlined everywhere again: slower to compile, the
    same code)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "run_untyped_passes":
            return False
        frame = frame.f_back
    return True


INLINE = _into_the_function_compiled  # (numba's ``inline=`` option of every body)


def inline(fn):
    """Decorator: a body that numba inlines into each compiled function calling it.

    Called from Python it is a compiled function of its own (the per-op API does that).
    """
    return compiled(fn, inline=INLINE)


# (the BLAS thread policy, re-exported here for ``kernels/__init__``: see ``_threads``)
from ._threads import get_num_threads, set_num_threads  # noqa: E402,F401

"""Fixed blocks, run on numba's threads under dynamic scheduling: the one mechanism.

A pass over n items (rows of a batch or of an evaluated set, rows of dW by input
feature, images of a convolution batch, elements of a flat parameter buffer) is cut
into blocks, and the blocks run on numba's threads. Two rules make the results the same
bits whatever the thread count and whatever else runs on the machine:

1. **The cut depends on the shapes only.** ``grain(n, work_per_item, min_items)`` gives
   the items per block from the pass's size (never from the thread count); block ``blk``
   is items ``[blk * g, min(n, (blk + 1) * g))`` (``block_of``), ``n_blocks(n, g)`` of
   them. A block's arithmetic is a function of its items only: the same instructions in
   the same order whoever runs it.
2. **Reductions across blocks are summed in block order.** A body writes its block's
   partial sums to row ``blk`` of a buffer (``(n_blocks, H)``, float64); after the run
   the caller adds the rows up in order (``sum_blocks_``). Nothing is ever accumulated
   across blocks inside a run.

Running: ``runner(body)`` returns a compiled function ``run(nb, args)`` that calls
``body(blk, *args)`` once for every ``blk`` in ``range(nb)`` (``args`` a tuple). With
more than one block and more than one numba thread (``numba.set_num_threads``, which
``kernels._threads.for_work`` sets per call) it runs them in parallel: one ``prange``
iteration per thread, and each thread takes the next block from a shared counter (an
atomic fetch-and-add) until none is left: **dynamic scheduling**. A thread whose core
is taken by another process simply takes fewer blocks instead of holding up a fixed
share of them. Thread t first claims block t, its own, and only then takes from the
counter (a block runs once: by whoever claims it first; the counter skips claimed
ones): on a quiet machine a row block's activations then stay in the core that made
them from one layer's pass to the next, while a late thread's own block is still
taken by another. (Not measured on its own: docs/performance.md, session 6.)
(numba's own ``parallel_chunksize`` was measured here with the ``omp`` and
``workqueue`` layers: its chunks are still dealt out statically, 4 + 4 blocks of 8 on
2 threads whatever their cost; hence the counter.) With one block, or one thread,
the blocks run in a plain loop in the calling thread: no parallel launch at all, the
same bodies, the same bits.

BLAS inside a block: a body calls ``_blas.gemm`` on its block (a row block of x, the
rows of dW, an image); it must run on one BLAS thread, which the caller arranges for
the duration of the kernel call (``kernels._threads.for_work`` sets NumPy's OpenBLAS to
one thread whenever fastnn's kernels run on blocks, and puts the user's count back).

How to use it (a kernel module):

    @compiled
    def scale_block_(blk, out, x, g, s):          # the body: one block's work
        start, stop = block_of(blk, x.shape[0], g)
        for i in range(start, stop):
            out[i] = s * x[i]

    run_scale_ = runner(scale_block_)             # compiled once, per argument types

    @compiled
    def scale_(out, x, s):
        g = grain(x.shape[0], 1, 4096)
        run_scale_(n_blocks(x.shape[0], g), (out, x, g, s))

A pass that Python calls (the convolution's and pooling's, ``kernels.conv``) takes its
runner from ``blocks(body)`` instead: ``run(nb, threads, args)`` runs the serial form
when ``threads`` (the thread policy's count for the call, ``_threads.block_threads``)
or ``nb`` is 1, else the parallel one, and the parallel form is compiled only when a
call first wants it (``when_compiled``, below), since numba's ``parallel=True``
compilation is slow and a one-thread process never needs it.

The body is a compiled function (``@compiled``, called, not inlined): the parallel
runner's own code is a few lines, so numba's slow ``parallel=True`` compilation has
little to chew on, and the caller (the network loop, compiled serially) calls the
runner. Bodies never raise (an error inside a parallel region may be lost): they return
status through their arguments, e.g. a count per block.

With ``NUMBA_DISABLE_JIT=1`` the runner is the plain loop over blocks, in order.
"""

from __future__ import annotations

import os
import threading
import types as pytypes

import numpy as np
from numba import prange, types
from numba.core import config as numba_config
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

from ._config import compiled, inline

# Multiply-adds a block should hold at least (a BLAS call and a block hand-out cost a
# few microseconds; a block of this much work runs for tens of them on one core).
BLOCK_WORK = 1 << 22
# Rows a row block of a product holds at least: each block's GEMM packs the whole of the
# other operand (W) again, which costs about 1 / rows of the product.
MIN_ROWS = 64


def grain(n, work_per_item, min_items, block_work=BLOCK_WORK):
    """Items per block for a pass over ``n`` items of ``work_per_item`` multiply-adds
    (or element operations) each: enough for ``block_work`` (``BLOCK_WORK``), at least
    ``min_items``,
    rounded up to a multiple of 8, at most n (one block). A function of the shapes only.
    """
    per = max(work_per_item, 1)
    if n <= min_items or n * per <= block_work:  # one block (what the rest would give,
        return max(n, 1)  # without its divisions: a small network's step has many)
    g = max((block_work + per - 1) // per, min_items)
    g = (g + 7) // 8 * 8
    return max(min(g, n), 1)


def n_blocks(n, g):
    """How many blocks of ``g`` items a pass over ``n`` items makes (at least 1)."""
    if g >= n:
        return 1
    return (n + g - 1) // g


def block_of(blk, n, g):
    """(start, stop) of block ``blk`` of a pass over ``n`` items in blocks of ``g``."""
    start = blk * g
    return start, min(n, start + g)


def sum_blocks_(out, partial, nb):
    """out[h] = sum over blocks b < nb of partial[b, h], added in block order (float64
    partials; out of any float dtype)."""
    for h in range(out.shape[0]):
        s = 0.0
        for b in range(nb):
            s += partial[b, h]
        out[h] = s


def fetch_add(counter, i, v):
    """counter[i] += v, returning the value before: atomic in compiled code (counter an
    int64 array; ``v`` 0 reads it), plain with NUMBA_DISABLE_JIT (one thread)."""
    old = counter[i]
    counter[i] = old + v
    return old


@intrinsic
def _atomic_fetch_add(typingctx, counter, i, v):
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        arr = make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.gep(arr.data, [args[1]])
        return builder.atomic_rmw("add", ptr, args[2], "seq_cst")

    return types.int64(counter, types.intp, types.int64), codegen


if not numba_config.DISABLE_JIT:
    fetch_add = _atomic_fetch_add

# numba's thread count of the calling thread, read by symbol (its public
# ``numba.get_num_threads`` calls through a ctypes pointer, which numba's cache refuses)
from numba.np.ufunc.parallel import _iget_num_threads as _threads_now  # noqa: E402

grain, n_blocks, block_of = inline(grain), inline(n_blocks), inline(block_of)
sum_blocks_ = inline(sum_blocks_)


def _functions(tag):
    """The runner's three functions, as code: ``runner`` gives each a namespace of its
    own in which ``_body``, ``_serial`` and ``_parallel`` are that runner's. (Not a
    closure over the body: numba keys its cache on a closure's cell contents, and a
    dispatcher's differ in every process; ``tag``, the body's name, is the key.)"""

    def serial(nb, args):
        if False:  # (in the closure, never in the compiled code: the cache key)
            tag  # noqa: B018
        for blk in range(nb):
            _body(blk, *args)  # noqa: F821

    def parallel(nb, threads, args):
        if False:
            tag  # noqa: B018
        # counter[0]: the next block to take; counter[8 + b]: block b is taken (each
        # block runs once, by whoever claims it first)
        counter = np.zeros(8 + nb, np.int64)
        for t in prange(threads):  # one iteration per thread (numba deals them statically)
            own = np.int64(t)  # (the prange index's type is not int64: one body type)
            if own < nb and fetch_add(counter, 8 + own, 1) == 0:
                _body(own, *args)  # noqa: F821  (its own block first: see the docstring)
            while True:
                blk = fetch_add(counter, 0, 1)
                if blk >= nb:
                    break
                if fetch_add(counter, 8 + blk, 1) == 0:
                    _body(blk, *args)  # noqa: F821

    def run(nb, args):
        if False:
            tag  # noqa: B018
        threads = min(_threads_now(), nb)
        if threads <= 1:
            _serial(nb, args)  # noqa: F821
        else:
            _parallel(nb, threads, args)  # noqa: F821

    return serial, parallel, run


def _forms(body, tag):
    """The serial, parallel and ``run`` functions of ``_functions`` for ``body``, each
    compiled in a namespace of their own (``_body``, ``_serial``, ``_parallel``)."""
    serial, parallel, run = _functions(tag)
    namespace = dict(globals(), _body=body)

    def own(f):  # f with the runner's namespace as its globals
        return pytypes.FunctionType(f.__code__, namespace, f.__name__, f.__defaults__,
                                    f.__closure__)

    namespace["_serial"] = compiled(own(serial))
    namespace["_parallel"] = compiled(own(parallel), parallel=True)
    return namespace["_serial"], namespace["_parallel"], own(run)


def runner(body):
    """``run(nb, args)``: ``body(blk, *args)`` for every blk < nb, on numba's threads
    under dynamic scheduling (see the module's docstring); compiled once per argument
    types. ``args`` is a tuple; the body writes its block's results through them."""
    if numba_config.DISABLE_JIT:
        def run(nb, args):
            for blk in range(nb):
                body(blk, *args)
        return run
    py = getattr(body, "py_func", body)
    return compiled(_forms(body, f"{py.__module__}.{py.__qualname__}")[2])


def blocks(body):
    """``run(nb, threads, args)`` for a pass that Python calls: ``body(blk, *args)`` for
    every blk < nb, in turn in the calling thread where ``threads`` or ``nb`` is 1, else
    on ``min(threads, nb)`` of numba's threads (the count ``_threads.for_work`` set)
    under dynamic scheduling, once that parallel form is compiled (``when_compiled``:
    until then, and in a process that never runs on threads, only the serial form is
    compiled)."""
    if numba_config.DISABLE_JIT:
        def run_in_turn(nb, threads, args):
            for blk in range(nb):
                body(blk, *args)
        return run_in_turn
    py = getattr(body, "py_func", body)
    # (a tag of their own: the cache must not confuse them with ``runner``'s forms)
    serial, parallel, _ = _forms(body, f"{py.__module__}.{py.__qualname__}/blocks")
    deferred(parallel)

    def run(nb, threads, args):
        threads = min(threads, nb)
        if threads <= 1:
            return serial(nb, args)
        return when_compiled(parallel, (nb, threads, args), lambda: serial(nb, args))

    run.serial, run.parallel = serial, parallel
    return run


# --- the parallel forms, compiled when a call first wants one ------------------------------
# numba's parallel compilation is slow (seconds more than a serial function's), and a
# call on one thread never needs it. So a kernel's parallel form is ``deferred``: numba
# never compiles it on a call's path; the first call that wants it for some argument
# types runs the serial form instead (the same blocks, the same bits) and starts the
# parallel form's compilation (or cache load) for those types in a background thread;
# later calls use it once it is ready. FASTNN_BACKGROUND_COMPILE=0: compile it in that
# first call instead (tests, warm-up). The network kernel (``network.run``) and the
# conv runners (``blocks``) both go through here.
BACKGROUND = os.environ.get("FASTNN_BACKGROUND_COMPILE", "1").lower() not in (
    "0", "false", "no", "off")
# The background compile starts at the START_AFTER-th call that wants the form, not the
# first: a process's first calls are where its other kernels compile (the step's, the
# optimizer's update), and numba compiles one function at a time (a lock), so a
# background compile started at the first call made them wait for it. Measured quiet
# (the plain network's cold-compile snippet, float64, batch 100: a train_step, then a
# gradient and an SGD update): first step 24.3 s with the build started at the first
# call, against 9.1 s on one thread (no build); by the third call the update has compiled.
START_AFTER = 3
_builds: dict = {}  # (dispatcher, argument types) -> the Thread building it (None: built)
_wants: dict = {}  # (dispatcher, argument types) -> calls that wanted it, before a build
_build_lock = threading.Lock()  # one build at a time
_book_lock = threading.Lock()  # _builds and _wants (kernels may be called from threads)


def deferred(dispatcher):
    """Mark a compiled function as compiled only by ``when_compiled`` (numba's switch
    behind ``disable_compile``, which refuses a dispatcher with no signature yet)."""
    dispatcher._can_compile = False
    return dispatcher


def _build(kernel, signature) -> None:
    with _build_lock:
        kernel._can_compile = True
        try:
            kernel.compile(signature)
        finally:
            kernel._can_compile = False


def when_compiled(kernel, args, fallback):
    """``kernel(*args)`` (a ``deferred`` function) where it is compiled for their types;
    else ``fallback()``, the same result by another form, and the kernel's compilation
    for these types started (in a background thread, at the ``START_AFTER``-th call
    that wants it, unless ``BACKGROUND`` is off: then in this call)."""
    with _book_lock:
        building = any(thread is not None and thread.is_alive()
                       for thread in _builds.values())
    if not building:
        try:
            return kernel(*args)
        except TypeError:  # not compiled for these types (numba: compilation disabled)
            pass
    result = fallback()
    signature = tuple(kernel.typeof_pyval(a) for a in args)
    key = (kernel, signature)
    with _book_lock:  # (two Python threads wanting one form start one build)
        if key in _builds:
            return result
        if BACKGROUND:
            _wants[key] = wanted = _wants.get(key, 0) + 1
            if wanted < START_AFTER:
                return result
            thread = threading.Thread(target=_build, args=(kernel, signature), daemon=True,
                                      name="fastnn-compile")
        else:
            thread = None
        _builds[key] = thread
    if thread is None:
        _build(kernel, signature)
    else:
        thread.start()
    return result

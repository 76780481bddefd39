"""``view2d``, ``view1d``: views of part of a flat buffer, free inside compiled code.

The network loop works on flat buffers (all parameters back to back; all layers'
outputs back to back) and needs each layer's (rows, cols) block as a 2-D array many
times per training step. ``flat[a:b].reshape(rows, cols)`` does that, but numba's
reshape calls a C helper to work out the strides: about 13 ns a view, several hundred
nanoseconds per step of a small network, more than its arithmetic. The block of a
C-contiguous buffer needs no working out (strides ``(cols, 1)`` items), so compiled code
builds the view directly here: a few instructions.

The views are borrowed: they carry no reference to the buffer's memory (a view from a
slice or reshape carries one, and every copy of it inside compiled code is an atomic
increment and decrement: about 50 of them per training step of a 1-3-1 network, a third
of the step's time). So a view must never outlive its buffer: compiled code makes them
from a kernel's arguments or locals and drops them before it returns (no kernel returns
one).

Outside compiled code (and with ``NUMBA_DISABLE_JIT=1``) ``view2d`` is the slice and
reshape it stands for. No bounds are checked: callers pass blocks inside the buffer.
"""

from __future__ import annotations

from numba import njit
from numba.core import cgutils, types
from numba.core import config as numba_config
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

from ._config import COMMON


def view2d(flat, offset, rows, cols):
    """flat[offset:offset + rows * cols] as a C-contiguous (rows, cols) view."""
    return flat[offset:offset + rows * cols].reshape(rows, cols)


def view1d(flat, offset, n):
    """flat[offset:offset + n]."""
    return flat[offset:offset + n]


def view_rows(a, start, n):
    """Rows start .. start + n - 1 of a C-contiguous 2-D array (of the same type)."""
    return a[start:start + n]


def _borrowed(context, builder, signature, source_arg, first, shape):
    """The codegen of a borrowed view: ``shape`` (LLVM values) of C-contiguous items
    from item ``first`` of the source array, with no meminfo (see the docstring)."""
    source = make_array(signature.args[0])(context, builder, source_arg)
    view = make_array(signature.return_type)(context, builder)
    itemsize = context.get_constant(types.intp, context.get_abi_sizeof(
        context.get_data_type(signature.return_type.dtype)))
    strides = [itemsize]
    for extent in reversed(shape[1:]):
        strides.insert(0, builder.mul(extent, strides[0]))
    populate_array(view, data=builder.gep(source.data, [first]),
                   shape=cgutils.pack_array(builder, shape),
                   strides=cgutils.pack_array(builder, strides), itemsize=itemsize,
                   meminfo=None)
    return view._getvalue()


def _c_array(a, ndim: int) -> bool:
    return isinstance(a, types.Array) and a.ndim == ndim and a.layout == "C"


@intrinsic
def _view2d(typingctx, flat, offset, rows, cols):
    if not _c_array(flat, 1):
        return None

    def codegen(context, builder, signature, args):
        return _borrowed(context, builder, signature, args[0], args[1], [args[2], args[3]])

    return flat.copy(ndim=2)(flat, types.intp, types.intp, types.intp), codegen


@intrinsic
def _view1d(typingctx, flat, offset, n):
    if not _c_array(flat, 1):
        return None

    def codegen(context, builder, signature, args):
        return _borrowed(context, builder, signature, args[0], args[1], [args[2]])

    return flat(flat, types.intp, types.intp), codegen


@intrinsic
def _view_rows(typingctx, a, start, n):
    if not _c_array(a, 2):
        return None

    def codegen(context, builder, signature, args):
        source = make_array(signature.args[0])(context, builder, args[0])
        cols = builder.extract_value(source.shape, 1)
        return _borrowed(context, builder, signature, args[0], builder.mul(args[1], cols),
                         [args[2], cols])

    return a(a, types.intp, types.intp), codegen


if not numba_config.DISABLE_JIT:  # compiled code gets the intrinsics, inlined
    @njit(inline="always", **COMMON)
    def view2d(flat, offset, rows, cols):  # noqa: F811
        return _view2d(flat, offset, rows, cols)

    @njit(inline="always", **COMMON)
    def view1d(flat, offset, n):  # noqa: F811
        return _view1d(flat, offset, n)

    @njit(inline="always", **COMMON)
    def view_rows(a, start, n):  # noqa: F811
        return _view_rows(a, start, n)

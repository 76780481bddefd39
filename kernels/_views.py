"""``view2d``, ``view1d``, ``borrow``: views of flat buffers, free inside compiled code.

The network loop works on flat buffers (all parameters back to back; all layers'
outputs back to back) and needs each layer's (rows, cols) block as a 2-D array many
times per training step. ``flat[a:b].reshape(rows, cols)`` does that, but numba's
reshape calls a C helper to work out the strides, which for a small network costs more
per step than its arithmetic (docs/performance.md). The block of a
C-contiguous buffer needs no working out (strides ``(cols, 1)`` items), so compiled code
builds the view directly here: a few instructions.

The views are borrowed: their numba type, ``Borrowed``, is an array whose data model
has no reference-counted member, so numba emits no reference counting for them at all.
(A view from a slice or reshape carries a reference to the buffer's memory, and numba
increments and decrements it wherever the view is copied, crosses a branch or a loop,
or is passed to an inlined body: about 50 calls per training step of a 1-3-1 network,
a third of the step's time. Views with a null reference still paid for the calls.) So
a view must never outlive its buffer: compiled code makes them from a kernel's
arguments or from buffers it keeps alive (``hold``) and drops them before it returns
(no kernel returns one). The network kernel ``borrow``s each of its arguments on entry,
so that nothing inside its loop is reference-counted.

Outside compiled code (and with ``NUMBA_DISABLE_JIT=1``) ``view2d`` is the slice and
reshape it stands for. No bounds are checked: callers pass blocks inside the buffer.
"""

from __future__ import annotations

from numba.core import cgutils, types
from numba.core import config as numba_config
from numba.core.datamodel.models import ArrayModel
from numba.extending import intrinsic, register_model
from numba.np.arrayobj import make_array, populate_array


class Borrowed(types.Array):
    """The numba type of a borrowed view: a C-contiguous array whose value carries no
    reference to its memory, so that numba emits no reference counting for it at all
    (its data model lists no reference-counted member). Indexing, ``shape`` and passing
    it to compiled functions work as for any array; a slice or reshape of one is an
    ordinary array (with the same null reference, so it must not outlive the buffer
    either)."""

    def __init__(self, dtype, ndim, layout="C"):
        super().__init__(dtype, ndim, layout, name=f"borrowed({dtype}, {ndim}d, {layout})")


@register_model(Borrowed)
class _BorrowedModel(ArrayModel):
    def traverse(self, builder):  # (numba reference-counts what traverse lists)
        return []


def borrow(a):
    """``a`` itself, as a borrowed view (compiled: of type ``Borrowed``)."""
    return a


def hold(owners):
    """Nothing; in compiled code a use of the tuple ``owners``, so that numba keeps them
    (arrays whose memory borrowed views use) alive up to this point."""


def address(a):
    """The address of a's first item."""
    return a.ctypes.data


def view2d(flat, offset, rows, cols):
    """flat[offset:offset + rows * cols] as a C-contiguous (rows, cols) view."""
    return flat[offset:offset + rows * cols].reshape(rows, cols)


def view1d(flat, offset, n):
    """flat[offset:offset + n]."""
    return flat[offset:offset + n]


def view_rows(a, start, n):
    """Rows start .. start + n - 1 of a C-contiguous 2-D array (of the same type)."""
    return a[start:start + n]


def view_row(a, i):
    """Row i of a C-contiguous 2-D array, 1-D."""
    return a[i]


def view_cols(a, start, n):
    """Columns start .. start + n - 1 of a C-contiguous 2-D array (rows strided: layout
    'A', each row contiguous)."""
    return a[:, start:start + n]


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

    return Borrowed(flat.dtype, 2)(flat, types.intp, types.intp, types.intp), codegen


@intrinsic
def _view1d(typingctx, flat, offset, n):
    if not _c_array(flat, 1):
        return None

    def codegen(context, builder, signature, args):
        return _borrowed(context, builder, signature, args[0], args[1], [args[2]])

    return Borrowed(flat.dtype, 1)(flat, types.intp, types.intp), codegen


def _rows_codegen(several):
    """The codegen of rows of a 2-D array from row args[1]: args[2] of them (2-D), or the
    one row (1-D)."""

    def codegen(context, builder, signature, args):
        source = make_array(signature.args[0])(context, builder, args[0])
        cols = builder.extract_value(source.shape, 1)
        shape = [args[2], cols] if several else [cols]
        return _borrowed(context, builder, signature, args[0], builder.mul(args[1], cols),
                         shape)

    return codegen


@intrinsic
def _view_rows(typingctx, a, start, n):
    if not _c_array(a, 2):
        return None
    return Borrowed(a.dtype, 2)(a, types.intp, types.intp), _rows_codegen(True)


@intrinsic
def _view_row(typingctx, a, i):
    if not _c_array(a, 2):
        return None
    return Borrowed(a.dtype, 1)(a, types.intp), _rows_codegen(False)


@intrinsic
def _view_cols(typingctx, a, start, n):
    if not _c_array(a, 2):
        return None

    def codegen(context, builder, signature, args):
        source = make_array(signature.args[0])(context, builder, args[0])
        view = make_array(signature.return_type)(context, builder)
        rows, cols = cgutils.unpack_tuple(builder, source.shape)
        strides = cgutils.unpack_tuple(builder, source.strides)
        populate_array(view, data=builder.gep(source.data, [args[1]]),
                       shape=cgutils.pack_array(builder, [rows, args[2]]),
                       strides=cgutils.pack_array(builder, [strides[0], strides[1]]),
                       itemsize=source.itemsize, meminfo=None)
        return view._getvalue()

    return Borrowed(a.dtype, 2, "A")(a, types.intp, types.intp), codegen


@intrinsic
def _borrow(typingctx, a):
    if not _c_array(a, getattr(a, "ndim", 0)) or a.ndim == 0:
        return None

    def codegen(context, builder, signature, args):
        source = make_array(signature.args[0])(context, builder, args[0])
        return _borrowed(context, builder, signature, args[0],
                         context.get_constant(types.intp, 0),
                         cgutils.unpack_tuple(builder, source.shape))

    return Borrowed(a.dtype, a.ndim)(a), codegen


@intrinsic
def _hold(typingctx, owners):
    def codegen(context, builder, signature, args):
        return context.get_dummy_value()

    return types.none(owners), codegen


@intrinsic
def _address(typingctx, a):
    if not isinstance(a, types.Array):
        return None

    def codegen(context, builder, signature, args):
        data = make_array(signature.args[0])(context, builder, args[0]).data
        return builder.ptrtoint(data, context.get_value_type(types.uintp))

    return types.uintp(a), codegen


if not numba_config.DISABLE_JIT:  # compiled code calls the intrinsics themselves
    view2d, view1d, view_rows = _view2d, _view1d, _view_rows
    view_row, view_cols = _view_row, _view_cols
    borrow, hold, address = _borrow, _hold, _address

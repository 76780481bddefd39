"""``view2d``: a 2-D view of part of a flat buffer, free inside compiled code.

The network loop works on flat buffers (all parameters back to back; all layers'
outputs back to back) and needs each layer's (rows, cols) block as a 2-D array many
times per training step. ``flat[a:b].reshape(rows, cols)`` does that, but numba's
reshape calls a C helper to work out the strides: about 13 ns a view, several hundred
nanoseconds per step of a small network, more than its arithmetic. The block of a
C-contiguous buffer needs no working out (strides ``(cols, 1)`` items), so compiled code
builds the view directly here: a few instructions, sharing (and keeping alive) the
buffer's memory, as a view from reshape does.

Outside compiled code (and with ``NUMBA_DISABLE_JIT=1``) ``view2d`` is the slice and
reshape it stands for. No bounds are checked: callers pass blocks inside the buffer.
"""

from __future__ import annotations

from numba.core import cgutils, types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic, overload
from numba.np.arrayobj import make_array, populate_array

from ._config import COMMON


def view2d(flat, offset, rows, cols):
    """flat[offset:offset + rows * cols] as a C-contiguous (rows, cols) view."""
    return flat[offset:offset + rows * cols].reshape(rows, cols)


@intrinsic
def _view2d(typingctx, flat, offset, rows, cols):
    if not (isinstance(flat, types.Array) and flat.ndim == 1 and flat.layout == "C"):
        return None
    result = flat.copy(ndim=2, layout="C")
    sig = result(flat, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        source = make_array(signature.args[0])(context, builder, args[0])
        view = make_array(signature.return_type)(context, builder)
        offset, rows, cols = args[1:]
        itemsize = context.get_constant(
            types.intp, context.get_abi_sizeof(context.get_data_type(flat.dtype)))
        populate_array(view,
                       data=builder.gep(source.data, [offset]),
                       shape=cgutils.pack_array(builder, [rows, cols]),
                       strides=cgutils.pack_array(builder, [builder.mul(cols, itemsize),
                                                            itemsize]),
                       itemsize=itemsize,
                       meminfo=source.meminfo)
        return impl_ret_borrowed(context, builder, signature.return_type, view._getvalue())

    return sig, codegen


@overload(view2d, jit_options=COMMON)
def _view2d_compiled(flat, offset, rows, cols):
    if not (isinstance(flat, types.Array) and flat.ndim == 1 and flat.layout == "C"):
        return None

    def impl(flat, offset, rows, cols):
        return _view2d(flat, offset, rows, cols)

    return impl

"""A cache prefetch hint for compiled kernels.

:func:`prefetch` asks the processor to start loading the cache line that holds ``array[index]``
and returns at once; the kernel goes on and finds the line in cache when it gets there. It
changes no value and cannot fault: an index past the end of the array (the last rows of an
interval's spikes, an empty array) only wastes the hint. The spike delivery uses it to load the
synapse rows of the spikes a few places ahead, whose first lines are otherwise a memory stall
per spike and projection on every rank (see :func:`brainsim.kernels.delivery.deliver_all`).

It is ``llvm.prefetch`` (read, high temporal locality, data cache), emitted inline; numba has
no prefetch of its own. Compiled functions that use it are cached like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

__all__ = ["prefetch"]

_READ = 0
_KEEP_IN_ALL_LEVELS = 3
_DATA_CACHE = 1


@intrinsic
def _prefetch(typingctx: Any, array: Any, index: Any) -> Any:
    """Hint that ``array[index]`` (a 1-D array, an integer index) will be read soon."""
    if not isinstance(array, types.Array) or array.ndim != 1:
        return None
    if not isinstance(index, types.Integer):
        return None
    sig = types.void(array, index)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        array_type, _ = signature.args
        data = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(  # type: ignore[no-untyped-call]
            context, builder, array_type, data, [args[1]], wraparound=False, boundscheck=False
        )
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        # Declared with a typed pointer, as numba declares its own intrinsics: LLVM builds that
        # only know opaque pointers rename it to ``llvm.prefetch.p0`` when they read the module.
        function = builder.module.declare_intrinsic(
            "llvm.prefetch",
            [byte_pointer],
            ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]),
        )
        builder.call(
            function,
            [
                builder.bitcast(pointer, byte_pointer),
                ir.Constant(i32, _READ),
                ir.Constant(i32, _KEEP_IN_ALL_LEVELS),
                ir.Constant(i32, _DATA_CACHE),
            ],
        )
        return context.get_dummy_value()

    return sig, codegen


prefetch = cast(Callable[[Any, int], None], _prefetch)
"""``prefetch(array, index)`` in compiled code (typed here as what it does there)."""

"""Bit instructions for the compiled kernels: popcount, count of trailing and of leading zeros
of a uint64, each one machine instruction (LLVM's ctpop, cttz, ctlz), and `nonzero_mask64`,
the nonzero elements of 64 consecutive ones as the bits of a uint64 (vector compares and
movemasks).

numba has no function for them, so they are numba intrinsics. Without numba they are plain
Python, for completeness: the kernels that call them then never run (`jit.enabled()`).
"""

from __future__ import annotations

from . import jit

__all__ = ["popcount", "trailing_zeros", "leading_zeros", "nonzero_mask64"]

if jit.numba is not None:
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    def _unary(emit):
        """An intrinsic uint64 -> int64 emitting `emit(builder, value)` (the instruction's
        result is 64 bits wide, like its argument)."""

        def typer(typingctx, v):
            def codegen(context, builder, signature, args):
                return emit(builder, args[0])

            return types.int64(types.uint64), codegen

        return intrinsic(typer)

    _ZERO_IS_POISON = ir.Constant(ir.IntType(1), 1)
    popcount = _unary(lambda b, v: b.ctpop(v))
    popcount.__doc__ = "The set bits of a uint64 (int64)."
    trailing_zeros = _unary(lambda b, v: b.cttz(v, _ZERO_IS_POISON))
    trailing_zeros.__doc__ = "The zeros below a uint64's lowest set bit; v must not be 0."
    leading_zeros = _unary(lambda b, v: b.ctlz(v, _ZERO_IS_POISON))
    leading_zeros.__doc__ = "The zeros above a uint64's highest set bit; v must not be 0."

    @intrinsic
    def nonzero_mask64(typingctx, ary, at):
        """Bit j set iff ary[at + j] != 0, j < 64 (a 1-D contiguous integer array; at: int64,
        at + 64 <= len(ary): not checked). One unaligned vector load, compared with zero;
        the 64 flags are the mask's bits."""

        if not (isinstance(ary, types.Array) and ary.ndim == 1 and ary.layout == "C"
                and isinstance(ary.dtype, types.Integer)):
            return None  # (numba then reports that no signature matches)

        def codegen(context, builder, signature, args):
            data = context.make_array(signature.args[0])(context, builder, args[0]).data
            lanes = ir.VectorType(data.type.pointee, 64)
            vector = builder.load(builder.bitcast(builder.gep(data, [args[1]]),
                                                  lanes.as_pointer()), align=1)
            flags = builder.icmp_unsigned("!=", vector, ir.Constant(lanes, None))
            return builder.bitcast(flags, ir.IntType(64))

        return types.uint64(ary, types.int64), codegen
else:
    def nonzero_mask64(ary, at):
        """Bit j set iff ary[at + j] != 0, j < 64."""
        return sum(1 << j for j in range(64) if ary[at + j] != 0)

    def popcount(v):
        """The set bits of a uint64 (int64)."""
        return bin(int(v)).count("1")

    def trailing_zeros(v):
        """The zeros below a uint64's lowest set bit; v must not be 0."""
        v = int(v)
        return (v & -v).bit_length() - 1

    def leading_zeros(v):
        """The zeros above a uint64's highest set bit; v must not be 0."""
        return 64 - int(v).bit_length()

"""The pair-code histogram's listing step in vector registers: a numba intrinsic emitting LLVM
vector IR, for `level_keys._tally_pairs`.

Entropy's pair mode counts the codes keys[2i] << shift | keys[2i + 1] of uint8 keys. Most
pairs of a sparse gradient (qsgd at 4 bits: ~56%) are (0, 0), and each increment of a
counter costs a load and a store. `list_pairs32` reads 64 keys as 32 little-endian uint16
(low byte the even key), makes their 32 codes, and compresses those of the nonzero pairs to
the front of a register (vpcompressw) stored whole: the caller counts only those, and adds
the zero pairs to code 0 at once. Measured in one process, 1 M coordinates, one thread,
`level_keys.of_rounding` (norms, rounding, keys and pair histogram): qsgd 0.54 -> 0.47 ms;
qsgdinf 0.418 -> 0.430 ms (dense: its spans are counted directly after one probing call).

Where this runs: `FAST` (`lane_vectors.FAST`: AVX-512 BW and VBMI2). Elsewhere callers keep
the scalar loop.
"""

from __future__ import annotations

from . import jit
from . import lane_vectors as LV

__all__ = ["FAST", "PAIRS", "list_pairs32"]

FAST = False
PAIRS = 32  # pairs a call (64 uint8 keys)

if jit.numba is not None and LV.FAST:
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    FAST = True
    _M = 2 * LV.N  # 32 lanes of i16
    I16 = LV.I16

    @intrinsic
    def list_pairs32(typingctx, keys_at, shift, out_at):
        """The codes keys[2i] << shift | keys[2i + 1] of the 32 pairs of uint8 keys at the
        address keys_at (64 bytes, all read) that are not (0, 0), in order, to the uint16
        address out_at onward; the 32 entries from there are all written (those past the
        count: zeros). shift <= 8. Returns the count."""
        sig = types.int64(types.intp, types.int64, types.intp)

        def codegen(context, builder, signature, args):
            keys_at, shift, out_at = args
            pairs = LV._load(builder, LV._addr(builder, keys_at), LV._vec(I16, _M))
            even = builder.and_(pairs, LV._const(builder, I16, 0xFF, _M))
            odd = builder.lshr(pairs, LV._const(builder, I16, 8, _M))
            codes = builder.or_(builder.shl(even, LV._splat(builder, builder.trunc(shift, I16),
                                                             _M)), odd)
            nonzero = builder.icmp_unsigned("!=", pairs, LV._const(builder, I16, 0, _M))
            listed = LV._compress(builder, codes, nonzero, LV._const(builder, I16, 0, _M))
            LV._store(builder, listed, LV._addr(builder, out_at))
            return LV._count(builder, nonzero)

        return sig, codegen

else:
    @jit.inline
    def list_pairs32(keys_at, shift, out_at):
        """Without the vector step: never called (callers check FAST)."""
        return -1

"""Compiled CPU kernels (numba) for the codecs, with the vectorised numpy/torch code as fallback.

The variable-length formats (`elias`, `entropy`) are serial at heart: vectorised numpy walks
them in thousands of small steps, each a pass over a lane array, which costs tens of times a
memory pass. numba compiles the same loops to machine code. Every kernel produces exactly the
bytes (and raises exactly the ValueErrors) of the vectorised path, which stays as the fallback
and as the oracle the tests compare the kernels against.

`enabled()` is read at call time, so tests can switch it off with
`monkeypatch.setattr(jit, "ENABLED", False)`. SIMNET_JIT=0 in the environment, or numba missing,
switches it off for a whole process.
"""

from __future__ import annotations

import os

try:
    import numba
except ImportError:  # a Python numba has no wheel for yet: the vectorised path runs
    numba = None

__all__ = ["ENABLED", "enabled", "kernel", "inline", "mul128"]

ENABLED = numba is not None and os.environ.get("SIMNET_JIT", "1") != "0"


def enabled() -> bool:
    """Whether the compiled kernels run (module flag, read at call time)."""
    return ENABLED


def kernel(fn):
    """Compile `fn` lazily on first call: no-Python mode, GIL released (so a thread pool runs
    kernels in parallel), machine code cached on disk beside the source. Without numba the
    function is returned as is; callers check `enabled()` first and never call it then."""
    if numba is None:
        return fn
    return numba.njit(cache=True, nogil=True)(fn)


def inline(fn):
    """A helper of kernels, inlined into each caller at numba's IR level (a per-coordinate
    helper compiled as a call stops LLVM from optimising the caller's loop: ~4x slower)."""
    if numba is None:
        return fn
    return numba.njit(inline="always")(fn)


def _mul128_python(a, b):
    """(high, low) 64-bit halves of the 128-bit product of uint64 a and b (the reference;
    kernels use the compiled intrinsic below: one machine multiply gives both halves)."""
    p = int(a) * int(b)
    return p >> 64, p & ((1 << 64) - 1)


if numba is None:
    mul128 = _mul128_python
else:
    from llvmlite import ir
    from numba.extending import intrinsic

    @intrinsic
    def mul128(typingctx, a, b):
        """(high, low) halves of uint64 a · b, as LLVM's 128-bit multiply (x86: one `mul`
        or `mulx`; a separate 64-bit low product would cost a second multiply)."""
        u64 = numba.types.uint64
        sig = numba.types.UniTuple(u64, 2)(u64, u64)

        def codegen(context, builder, signature, args):
            wide = ir.IntType(128)
            product = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
            high = builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))
            low = builder.trunc(product, ir.IntType(64))
            return context.make_tuple(builder, signature.return_type, [high, low])

        return sig, codegen

"""PCG64DXSM inside compiled kernels: numpy's `random_raw` stream, bit for bit, in registers.

`uniforms.py` draws with numpy's generator; kernels that round as they go draw the same
stream here instead (from the state `uniforms.pcg_state` gives), so the compiled and the
vectorised paths see the same uniforms. The 128-bit LCG step uses `jit.mul128`, one
machine multiply for both halves of lo · multiplier.
"""

from __future__ import annotations

import numpy as np

from .jit import inline, mul128

__all__ = ["draw"]

_M32 = np.uint64(0xFFFFFFFF)
_CHEAP = np.uint64(0xDA942042E4DD58B5)  # PCG64DXSM's multiplier (LCG step and output mix)


@inline
def _lcg(hi, lo, inc_hi, inc_lo):
    """The 128-bit LCG step: (hi, lo)·multiplier + (inc_hi, inc_lo) mod 2^128."""
    mul_hi, mul_lo = mul128(lo, _CHEAP)
    new_lo = mul_lo + inc_lo
    carry = np.uint64(1) if new_lo < mul_lo else np.uint64(0)
    return hi * _CHEAP + mul_hi + inc_hi + carry, new_lo


@inline
def _output(hi, lo):
    """The DXSM output of a state."""
    out = hi ^ (hi >> np.uint64(32))
    out *= _CHEAP
    out ^= out >> np.uint64(48)
    return out * (lo | np.uint64(1))


@inline
def _pcg_next(hi, lo, inc_hi, inc_lo):
    """One PCG64DXSM output of the 128-bit state (hi, lo) with increment (inc_hi, inc_lo), all
    uint64: (output, next hi, next lo). numpy's `random_raw`, bit for bit: the DXSM output of
    the pre-step state, then the LCG step. Scalars, not an array, so they stay in registers."""
    hi2, lo2 = _lcg(hi, lo, inc_hi, inc_lo)
    return _output(hi, lo), hi2, lo2


@inline
def _uniform_pair(u, i, raw):
    """u[i], u[i + 1] from one output, low half first: (u32 >> 8)·2^-24, as numpy's float32.
    Through int64: uint64 -> float32 is a slow multi-instruction path on x86."""
    u[i] = np.float32(np.int64((raw & _M32) >> np.uint64(8))) * np.float32(2.0**-24)
    u[i + 1] = np.float32(np.int64(raw >> np.uint64(40))) * np.float32(2.0**-24)


@inline
def draw(u, m, hi, lo, inc_hi, inc_lo):
    """The next m uniforms into u[:m] as `uniforms.fill` draws them (each 64-bit output gives
    two, low half first); returns the advanced (hi, lo). Kept apart from the rounding so that
    PCG's serial chain and the (vectorised) rounding each run at full speed."""
    for t in range(m // 2):
        raw, hi, lo = _pcg_next(hi, lo, inc_hi, inc_lo)
        _uniform_pair(u, 2 * t, raw)
    if m % 2:
        raw, hi, lo = _pcg_next(hi, lo, inc_hi, inc_lo)
        u[m - 1] = np.float32(np.int64((raw & _M32) >> np.uint64(8))) * np.float32(2.0**-24)
    return hi, lo


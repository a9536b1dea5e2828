"""Compiled CPU kernels of the grid quantizers: stochastic rounding, `fixed` packing, decoding.

Each kernel does in one pass what `quantize.round_with` and `wire.pack_fields` /
`wire._decode_fixed` do in several vectorised torch/numpy passes with full-size temporaries,
and gives bit for bit their result: the same float32 operations in the same order
(uniform grid: t = |x| · (s · (1/scale)), as torch's `s / scale` computes it; exponential grid:
r = |x| / scale and its frexp), the same uniforms, the same bytes. Only the uniform and
exponential grids in float32 (levels <= 1024) run here; the rest stays on the torch path.

Kernels take flat arrays of whole buckets (`d` coordinates each, row b's scale in scales[b])
and release the GIL, so callers run chunks of buckets on a thread pool.
"""

from __future__ import annotations

import numpy as np

from .jit import inline, kernel

__all__ = ["UNIFORM", "EXPONENTIAL", "grid_code", "quantize_rows", "pack_fields", "unpack_rows",
           "scale_rows"]

UNIFORM, EXPONENTIAL = 0, 1


def grid_code(grid, levels: int) -> int | None:
    """The kernels' code for `grid` (UNIFORM or EXPONENTIAL), None where only torch applies."""
    if levels > 1024:  # those round in float64 (GridQuantizer._precise)
        return None
    return {"uniform": UNIFORM, "exponential": EXPONENTIAL}.get(grid.kind)


@inline
def _level(ax, scale, mult, u, kind, s):
    """Level index of one |x| (float32 `ax`) given its bucket's multiplier and a uniform u.

    scale: the bucket's scale, 1 for a zero bucket; mult: s·(1/scale) on the uniform grid, unused
    on the exponential one (r = ax / scale is a true division there, as in torch); s: the grid
    parameter."""
    if kind == UNIFORM:
        if mult < np.inf:
            t = ax * mult  # float32 r·s
        else:  # subnormal scale: 1/scale overflowed, divide instead (as the torch path does)
            t = (ax / scale) * np.float32(s)
        lo = np.int64(t)  # truncation = floor (t >= 0)
        frac = t - np.float32(lo)
        idx = lo + (1 if u < frac else 0)
        return min(idx, s)
    # torch's frexp, from the float32 bits: r = m·2^e with m in [0.5, 1), e = biased
    # exponent - 126; the bracket [2^(e-1), 2^e] has index s + e, and P(up) = 2m - 1 exactly
    r = min(ax / scale, np.float32(1.0))
    bits = np.uint32(np.float32(r).view(np.uint32))
    biased = np.int64(bits >> np.uint32(23))
    lo = 0 if biased == 0 else min(max(biased - 126 + s, 0), s + 1)  # 0: zero or subnormal
    if lo > 0:  # 2m - 1: the mantissa with the exponent of [1, 2), minus 1
        p = np.uint32((bits & np.uint32(0x7FFFFF)) | np.uint32(127 << 23)).view(np.float32)
        p -= np.float32(1.0)
    else:  # below 2^-s the bracket is [0, 2^-s]
        p = r * np.float32(2.0**s)
    return lo + (1 if u < p else 0)


@inline
def _safe(scale):
    """The divisor of a bucket: its scale, or 1 for a zero bucket."""
    return scale if scale > 0 else np.float32(1.0)


@inline
def _multiplier(scale, s):
    """s·(1/scale) in float32, as torch computes s / scale."""
    return np.float32(s) * (np.float32(1.0) / scale)


_M32 = np.uint64(0xFFFFFFFF)
_CHEAP = np.uint64(0xDA942042E4DD58B5)  # PCG64DXSM's multiplier (LCG step and output mix)


@inline
def _mulhi(a, b):
    """High 64 bits of the 128-bit product of uint64 a and b."""
    a_lo, a_hi = a & _M32, a >> np.uint64(32)
    b_lo, b_hi = b & _M32, b >> np.uint64(32)
    p1, p2 = a_lo * b_hi, a_hi * b_lo
    mid = ((a_lo * b_lo) >> np.uint64(32)) + (p1 & _M32) + (p2 & _M32)
    return a_hi * b_hi + (p1 >> np.uint64(32)) + (p2 >> np.uint64(32)) + (mid >> np.uint64(32))


@inline
def _pcg_next(hi, lo, inc_hi, inc_lo):
    """One PCG64DXSM output of the 128-bit state (hi, lo) with increment (inc_hi, inc_lo), all
    uint64: (output, next hi, next lo). numpy's `random_raw`, bit for bit: the DXSM output of
    the pre-step state, then the LCG step. Scalars, not an array, so they stay in registers."""
    out = hi ^ (hi >> np.uint64(32))
    out *= _CHEAP
    out ^= out >> np.uint64(48)
    out *= lo | np.uint64(1)
    mul_lo = lo * _CHEAP
    new_lo = mul_lo + inc_lo
    carry = np.uint64(1) if new_lo < mul_lo else np.uint64(0)
    return out, hi * _CHEAP + _mulhi(lo, _CHEAP) + inc_hi + carry, new_lo


@kernel
def quantize_rows(x, scales, state, d, kind, s, idx_out, neg_out):
    """Stochastic rounding of len(scales) buckets: level indices and negative-sign flags.

    x: float32 [rows·d]; idx_out: uint8 or int32 [rows·d]; neg_out: bool [rows·d]. The uniforms
    are drawn here, as `uniforms.fill` draws them, from the PCG64DXSM `state` (uint64 [hi, lo,
    inc hi, inc lo], `uniforms.pcg_state`) positioned at coordinate 0's draw: each 64-bit
    output gives two draws, low half first, (u32 >> 8)·2^-24."""
    hi, lo, inc_hi, inc_lo = state[0], state[1], state[2], state[3]
    raw = np.uint64(0)
    for b in range(scales.size):
        scale = _safe(scales[b])
        mult = _multiplier(scale, s)
        for i in range(b * d, (b + 1) * d):
            if i % 2 == 0:
                raw, hi, lo = _pcg_next(hi, lo, inc_hi, inc_lo)
                half = raw & _M32
            else:
                half = raw >> np.uint64(32)
            u = np.float32(np.int64(half >> np.uint64(8))) * np.float32(2.0**-24)  # signed: 1 op
            v = x[i]
            j = _level(abs(v), scale, mult, u, kind, s)
            idx_out[i] = j
            neg_out[i] = v < 0 and j > 0  # canonical: a zero level carries no sign


@kernel
def pack_fields(idx, neg, count, w, out):
    """Pack the first `count` (sign, w-bit index) fields of idx/neg (as `quantize_rows` wrote
    them) as k = w + 1 bits each, MSB first, into `out` (uint8, ceil(count·k/8) bytes, the
    last one zero-padded). For k <= 8, 8 fields make k whole bytes of one 64-bit word."""
    k = w + 1
    pos = 0
    start = 0
    if k <= 8:
        for g in range(count // 8):
            acc = np.uint64(0)
            for i in range(8 * g, 8 * g + 8):
                field = np.uint64(idx[i]) | (np.uint64(neg[i]) << np.uint64(w))
                acc = (acc << np.uint64(k)) | field
            for j in range(k):
                out[pos + j] = np.uint8((acc >> np.uint64(8 * (k - 1 - j))) & np.uint64(255))
            pos += k
        start = count // 8 * 8
    acc = np.uint64(0)  # the rest (all fields when k > 8): a bit accumulator
    nbits = 0
    for i in range(start, count):
        field = np.uint64(idx[i]) | (np.uint64(neg[i]) << np.uint64(w))
        acc = (acc << np.uint64(k)) | field
        nbits += k
        while nbits >= 8:
            nbits -= 8
            out[pos] = np.uint8((acc >> np.uint64(nbits)) & np.uint64(255))
            pos += 1
    if nbits:
        out[pos] = np.uint8((acc << np.uint64(8 - nbits)) & np.uint64(255))


@kernel
def unpack_rows(body, first, scales, d, w, signed, out):
    """Decode `out.size` `fixed` fields starting at field `first` of `body` (uint8) into
    sgn·level·scale (float32 `out`); `signed` maps a (k = w + 1)-bit field to sgn·level (NaN:
    invalid field). out[0] belongs to bucket first // d, scales are all the payload's scales.

    Returns 0, or 1 for an invalid field, 2 for a nonzero level in a zero-scale bucket."""
    k = w + 1
    mask = np.uint64((1 << k) - 1)
    bit = np.int64(first) * k
    acc = np.uint64(0)
    have = 0  # valid bits in acc, right-aligned
    byte = bit // 8
    skip = bit % 8
    if skip:
        acc = np.uint64(body[byte]) & np.uint64((1 << (8 - skip)) - 1)
        have = 8 - skip
        byte += 1
    i = 0
    n = out.size
    zero_bucket_bad = False  # reported after the scan: an invalid field takes precedence
    while i < n:
        b = (first + i) // d
        end = min(n, (b + 1) * d - first)
        scale = scales[b]
        for j in range(i, end):
            while have < k:
                acc = (acc << np.uint64(8)) | np.uint64(body[byte])
                byte += 1
                have += 8
            have -= k
            c = signed[(acc >> np.uint64(have)) & mask]
            if c != c:
                return 1
            if scale == 0 and c != 0:
                zero_bucket_bad = True
            out[j] = c * scale
        i = end
    return 2 if zero_bucket_bad else 0


@kernel
def scale_rows(coeff, scales, d):
    """coeff[i] *= scales[i // d] in place (float32); returns 2 if a zero-scale bucket holds a
    nonzero level, else 0."""
    for b in range(scales.size):
        scale = scales[b]
        for i in range(b * d, min((b + 1) * d, coeff.size)):
            if scale == 0 and coeff[i] != 0:
                return 2
            coeff[i] *= scale
    return 0

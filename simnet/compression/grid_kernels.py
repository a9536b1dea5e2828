"""Compiled CPU kernels of the grid quantizers: stochastic rounding, `fixed` packing, decoding.

Each kernel does in one pass what `quantize.round_with` and `wire.pack_fields` /
`wire._decode_fixed` do in several vectorised torch/numpy passes with full-size temporaries,
and gives bit for bit their result: the same float32 operations in the same order
(uniform grid: t = |x| · (s · (1/scale)), as torch's `s / scale` computes it; exponential grid:
r = |x| / scale and its frexp), the same uniforms, the same bytes. Only the uniform and
exponential grids in float32 (levels <= 1024) run here; the rest stays on the torch path.

Kernels take flat arrays of buckets (`d` coordinates each, row b's scale in scales[b]; the
last one may be cut short) and release the GIL, so callers run chunks of buckets on a thread
pool. The uniforms come from `counter_kernels`.
"""

from __future__ import annotations

import numpy as np

from .jit import inline, kernel
from .counter_kernels import draw

__all__ = ["UNIFORM", "EXPONENTIAL", "grid_code", "quantize_rows", "pack_fields", "unpack_rows",
           "scale_rows"]

UNIFORM, EXPONENTIAL = 0, 1


def grid_code(grid, levels: int) -> int | None:
    """The kernels' code for `grid` (UNIFORM or EXPONENTIAL), None where only torch applies."""
    if levels > 1024:  # those round in float64 (GridQuantizer._precise)
        return None
    return {"uniform": UNIFORM, "exponential": EXPONENTIAL}.get(grid.kind)


BLOCK = 1024  # draws made ahead of each rounding pass (4 KiB of float32: stays in L1)


# The rounding passes below take slices of one bucket (0-based loops over slices, so numba
# adds no negative-index checks) and write level index and negative flag; a zero level
# carries no sign (canonical). Level arithmetic is in float32, exact for these small
# integers: numba widens int32 arithmetic to int64, and int64 lanes halve the vector width
# and spill registers (float32 lanes run these passes ~2x faster).

@inline
def _round_uniform(x, u, mult, s, idx_out, neg_out):
    """Uniform grid, t = |x|·mult with mult = s·(1/scale) in float32, as torch's s / scale."""
    top = np.float32(s)
    for i in range(x.size):
        v = x[i]
        t = abs(v) * mult
        lo = np.float32(np.int32(t))  # truncation = floor (t >= 0)
        j = min(lo + (np.float32(1.0) if u[i] < t - lo else np.float32(0.0)), top)
        idx_out[i] = np.int32(j)
        neg_out[i] = (v < np.float32(0.0)) & (j > np.float32(0.0))


@inline
def _round_uniform_divided(x, u, scale, s, idx_out, neg_out):
    """Uniform grid of a bucket with a subnormal scale, where 1/scale overflows: t = (|x| /
    scale)·s, as the torch path divides then."""
    top = np.float32(s)
    for i in range(x.size):
        v = x[i]
        t = (abs(v) / scale) * top
        lo = np.float32(np.int32(t))
        j = min(lo + (np.float32(1.0) if u[i] < t - lo else np.float32(0.0)), top)
        idx_out[i] = np.int32(j)
        neg_out[i] = (v < np.float32(0.0)) & (j > np.float32(0.0))


@inline
def _round_exponential(x, u, scale, s, two_s, idx_out, neg_out):
    """Exponential grid: r = |x| / scale (a true division, as torch's) and torch's frexp from
    the float32 bits: r = m·2^e with m in [0.5, 1), e = biased exponent - 126; the bracket
    [2^(e-1), 2^e] has index s + e and P(up) = 2m - 1 exactly; below 2^-s the bracket is
    [0, 2^-s] and P(up) = r·2^s (two_s, hoisted: a power per coordinate costs 5x the pass)."""
    shift, top = np.float32(126 - s), np.float32(s + 1)
    for i in range(x.size):
        v = x[i]
        r = min(abs(v) / scale, np.float32(1.0))
        bits = np.float32(r).view(np.uint32)
        biased = np.float32(np.int32(bits >> np.uint32(23)))
        lo = min(max(biased - shift, np.float32(0.0)), top)
        lo = np.float32(0.0) if biased == np.float32(0.0) else lo  # zero or subnormal r
        # 2m - 1: the mantissa with the exponent of [1, 2), minus 1
        mantissa = np.uint32((bits & np.uint32(0x7FFFFF)) | np.uint32(127 << 23))
        p = mantissa.view(np.float32) - np.float32(1.0) if lo > np.float32(0.0) else r * two_s
        j = lo + (np.float32(1.0) if u[i] < p else np.float32(0.0))
        idx_out[i] = np.int32(j)
        neg_out[i] = (v < np.float32(0.0)) & (j > np.float32(0.0))


@kernel
def quantize_rows(x, scales, seed, first, d, kind, s, idx_out, neg_out):
    """Stochastic rounding of len(scales) buckets: level indices and negative-sign flags.

    x: float32 [m], rows·d - d < m <= rows·d (the last bucket may be cut short: it is rounded
    as far as it goes); idx_out: uint8 or int32 [m]; neg_out: bool [m]. The uniforms are drawn
    here, BLOCK at a time, as `uniforms.fill` draws them: coordinate i takes draw first + i
    (first even) of the stream `seed` (uint64)."""
    n = min(x.size, scales.size * d)
    u = np.empty(BLOCK, np.float32)
    words = np.empty(BLOCK // 2, np.uint64)
    halves = words.view(np.uint32)
    two_s = np.float32(2.0**s)
    for start in range(0, n, BLOCK):
        m = min(BLOCK, n - start)
        draw(u, words, halves, m, seed, (first + start) // 2)
        a = start
        while a < start + m:  # the block's pieces of buckets
            b = a // d
            e = min((b + 1) * d, start + m)
            xs, us = x[a:e], u[a - start:e - start]
            io, no = idx_out[a:e], neg_out[a:e]
            scale = scales[b] if scales[b] > 0 else np.float32(1.0)  # 1: a zero bucket
            if kind == EXPONENTIAL:
                _round_exponential(xs, us, scale, s, two_s, io, no)
            else:
                mult = np.float32(s) * (np.float32(1.0) / scale)
                if mult < np.inf:
                    _round_uniform(xs, us, mult, s, io, no)
                else:
                    _round_uniform_divided(xs, us, scale, s, io, no)
            a = e


@inline
def _field(idx, neg, i, w):
    """Field i, (sign, w-bit index), as uint32."""
    return np.uint32(idx[i]) | (np.uint32(neg[i]) << np.uint32(w))


@kernel
def pack_fields(idx, neg, count, w, out):
    """Pack the first `count` (sign, w-bit index) fields of idx/neg (as `quantize_rows` wrote
    them) as k = w + 1 bits each, MSB first, into `out` (uint8, ceil(count·k/8) bytes, the
    last one zero-padded). k = 2, 4, 8 put whole fields in a byte (one loop each, which LLVM
    vectorises); other k <= 8 make k whole bytes of one 64-bit word from 8 fields."""
    k = w + 1
    pos = 0
    start = 0
    if k == 4:
        for j in range(count // 2):
            out[j] = (_field(idx, neg, 2 * j, w) << np.uint32(4)) | _field(idx, neg, 2 * j + 1, w)
        pos, start = count // 2, count // 2 * 2
    elif k == 8:
        for j in range(count):
            out[j] = _field(idx, neg, j, w)
        pos, start = count, count
    elif k == 2:
        for j in range(count // 4):
            out[j] = ((_field(idx, neg, 4 * j, w) << np.uint32(6))
                      | (_field(idx, neg, 4 * j + 1, w) << np.uint32(4))
                      | (_field(idx, neg, 4 * j + 2, w) << np.uint32(2))
                      | _field(idx, neg, 4 * j + 3, w))
        pos, start = count // 4, count // 4 * 4
    elif k <= 8:
        for g in range(count // 8):
            acc = np.uint64(0)
            for i in range(8 * g, 8 * g + 8):
                acc = (acc << np.uint64(k)) | np.uint64(_field(idx, neg, i, w))
            for j in range(k):
                out[pos + j] = np.uint8((acc >> np.uint64(8 * (k - 1 - j))) & np.uint64(255))
            pos += k
        start = count // 8 * 8
    acc = np.uint64(0)  # the rest (all fields when k > 8): a bit accumulator
    nbits = 0
    for i in range(start, count):
        acc = (acc << np.uint64(k)) | np.uint64(_field(idx, neg, i, w))
        nbits += k
        while nbits >= 8:
            nbits -= 8
            out[pos] = np.uint8((acc >> np.uint64(nbits)) & np.uint64(255))
            pos += 1
    if nbits:
        out[pos] = np.uint8((acc << np.uint64(8 - nbits)) & np.uint64(255))


@inline
def _unpack_fields(body, first, k, signed, scale, out):
    """out[j] = signed[field first + j]·scale for k in {2, 4, 8} (no field straddles a byte;
    callers pass k as a literal, so LLVM folds the shifts); returns 1 if a field is invalid
    (NaN in `signed`), else 0 (an int flag: a bool one stops LLVM vectorising)."""
    mask = np.uint32((1 << k) - 1)
    invalid = np.int32(0)
    for j in range(out.size):
        bit = (first + j) * k
        c = signed[(np.uint32(body[bit >> 3]) >> np.uint32(8 - k - (bit & 7))) & mask]
        invalid |= np.int32(c != c)
        out[j] = c * scale
    return invalid


@inline
def _unpack_nibbles(body, byte0, signed, scale, out):
    """k = 4 from byte `byte0` on, two fields per byte (out.size even): as `_unpack_fields`,
    about 1.5x faster."""
    invalid = np.int32(0)
    for j in range(out.size // 2):
        byte = body[byte0 + j]
        c0, c1 = signed[byte >> 4], signed[byte & 15]
        invalid |= np.int32(c0 != c0) | np.int32(c1 != c1)
        out[2 * j] = c0 * scale
        out[2 * j + 1] = c1 * scale
    return invalid


@inline
def _any_nonzero_level(body, first, count, k, signed):
    """Whether fields first .. first + count - 1 hold a nonzero (or invalid) level: the check
    of a zero-scale bucket, whose decoded values are all zero whatever its fields say."""
    mask = np.uint32((1 << k) - 1)
    for j in range(count):
        bit = (first + j) * k
        if signed[(np.uint32(body[bit >> 3]) >> np.uint32(8 - k - (bit & 7))) & mask] != 0:
            return True
    return False


@kernel
def unpack_rows(body, first, scales, d, w, signed, out):
    """Decode `out.size` `fixed` fields starting at field `first` of `body` (uint8) into
    sgn·level·scale (float32 `out`); `signed` maps a (k = w + 1)-bit field to sgn·level (NaN:
    invalid field). out[0] belongs to bucket first // d, scales are all the payload's scales.

    Returns 0, or 1 for an invalid field, 2 for a nonzero level in a zero-scale bucket."""
    k = w + 1
    n = out.size
    if k in (2, 4, 8):  # bucket by bucket, fields read straight from their byte
        invalid = np.int32(0)  # an invalid field takes precedence over a zero-bucket error
        zero_bucket_bad = False
        i = 0
        while i < n:
            b = (first + i) // d
            end = min(n, (b + 1) * d - first)
            part, scale, at = out[i:end], scales[b], first + i
            if k == 4 and at % 2 == 0 and part.size % 2 == 0:
                invalid |= _unpack_nibbles(body, at // 2, signed, scale, part)
            elif k == 4:
                invalid |= _unpack_fields(body, at, 4, signed, scale, part)
            elif k == 2:
                invalid |= _unpack_fields(body, at, 2, signed, scale, part)
            else:
                invalid |= _unpack_fields(body, at, 8, signed, scale, part)
            if scale == 0 and not zero_bucket_bad:
                zero_bucket_bad = _any_nonzero_level(body, at, part.size, k, signed)
            i = end
        return 1 if invalid else (2 if zero_bucket_bad else 0)
    mask = np.uint64((1 << k) - 1)  # other k: a bit accumulator
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
    zero_bucket_bad = False
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

"""Compiled stochastic rounding of the grid quantizers (CPU), and rounding fused with
`fixed` packing.

The same float32 operations in the same order as `quantize.round_with` (uniform grid:
t = |x| · (s · (1/scale)), as torch's `s / scale` computes it; exponential grid: r = |x| /
scale and its frexp), the same uniforms (`counter_kernels`), so the same level indices and
signs, bit for bit. Kernels take flat arrays of buckets (`d` coordinates each, row b's scale
in scales[b]; the last one may be cut short) and release the GIL, so callers run chunks of
buckets on a thread pool, or all chunks in one launch on numba's threads
(`quantize_pack_chunks`).
"""

from __future__ import annotations

import numpy as np

from .counter_kernels import draw
from .grid_kernels import EXPONENTIAL, pack_fields
from .jit import inline, kernel, parallel_kernel, prange
from .norm_kernels import scale_through
from .norm_kernels import scratch as norm_scratch

__all__ = ["BLOCK", "quantize_rows", "quantize_pack_rows", "quantize_pack_chunk",
           "quantize_pack_chunks", "draw_scratch", "round_from"]

BLOCK = 1024  # draws made ahead of each rounding pass (4 KiB of float32: stays in L1)


# The rounding passes below take slices of one bucket (0-based loops over slices, so numba
# adds no negative-index checks) and write level index and negative flag, or (neg_out None)
# the key 2·level + sign of `level_keys` in one array; a zero level carries no sign
# (canonical). Level arithmetic is in float32, exact for these small integers: numba widens
# int32 arithmetic to int64, and int64 lanes halve the vector width and spill registers
# (float32 lanes run these passes ~2x faster).

@inline
def _store(idx_out, neg_out, i, j, v):
    """Coordinate i's level j (float32) and the sign of its value v: idx_out[i] = j and
    neg_out[i] = the sign, or with neg_out None the key idx_out[i] = 2·j + sign (one store,
    no second pass to combine them; numba compiles each case on its own)."""
    neg = (v < np.float32(0.0)) & (j > np.float32(0.0))
    if neg_out is None:
        idx_out[i] = j + j + (np.float32(1.0) if neg else np.float32(0.0))
    else:
        idx_out[i] = np.int32(j)
        neg_out[i] = neg


@inline
def _round_uniform(x, u, mult, s, idx_out, neg_out):
    """Uniform grid, t = |x|·mult with mult = s·(1/scale) in float32, as torch's s / scale."""
    top = np.float32(s)
    for i in range(x.size):
        v = x[i]
        t = abs(v) * mult
        lo = np.float32(np.int32(t))  # truncation = floor (t >= 0)
        j = min(lo + (np.float32(1.0) if u[i] < t - lo else np.float32(0.0)), top)
        _store(idx_out, neg_out, i, j, v)


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
        _store(idx_out, neg_out, i, j, v)


@inline
def _round_exponential(x, u, scale, s, two_s, idx_out, neg_out):
    """Exponential grid: r = |x| / scale (a true division, as torch's) and torch's frexp from
    the float32 bits: r = m·2^e with m in [0.5, 1), e = biased exponent - 126; the bracket
    [2^(e-1), 2^e] has index s + e and P(up) = 2m - 1 exactly; below 2^-s the bracket is
    [0, 2^-s] and P(up) = r·2^s (two_s, hoisted: a power per coordinate costs 5x the pass)."""
    if s <= _EXACT_S and neg_out is None:
        _round_exponential_keys(x, u, s, scale, idx_out)
        return
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
        _store(idx_out, neg_out, i, j, v)


_EXACT_S = 125  # `_round_exponential_keys` needs 2^s normal and 126 - s > 0


@inline
def _round_exponential_keys(x, u, s, scale, keys):
    """`_round_exponential`'s keys 2·level + sign, for s <= _EXACT_S, in fewer vector
    operations (one compare a coordinate, no selects; the loop is bound by their count:
    round_from ~8% faster at 1 M). The same values: with E = max(biased exponent, 127 - s), P(up) =
    r·2^(127 - E) - min(lo, 1), which is 2m - 1 (r·2^(1-e) = 2m, exact) where lo > 0 and
    r·2^s where lo = 0 (a subnormal r has biased exponent 0, so lo = 0 without a test); the
    sign is the sign bit, kept where min(level, 1) = 1. Float32 lanes, as `_store`'s."""
    shift, top = np.float32(126 - s), np.float32(s + 1)
    floor_e = np.int32(127 - s)
    for i in range(x.size):
        v = x[i]
        r = min(abs(v) / scale, np.float32(1.0))
        e = np.int32(np.float32(r).view(np.uint32) >> np.uint32(23))
        lo = min(max(np.float32(e) - shift, np.float32(0.0)), top)
        power = np.uint32((254 - max(e, floor_e)) << 23).view(np.float32)  # 2^(127 - E)
        p = r * power - min(lo, np.float32(1.0))
        j = lo + (np.float32(1.0) if u[i] < p else np.float32(0.0))
        sign = np.float32(np.int32(np.float32(v).view(np.uint32) >> np.uint32(31)))
        keys[i] = j + j + min(j, np.float32(1.0)) * sign


@inline
def _round_block(x, scales, d, kind, s, two_s, u, start, m, idx_out, neg_out, off):
    """Round coordinates [start, start + m) of x (one block, uniforms u[:m]) into
    idx_out[start - off:], neg_out[start - off:] (or keys into idx_out: neg_out None),
    bucket piece by bucket piece."""
    a = start
    while a < start + m:
        b = a // d
        e = min((b + 1) * d, start + m)
        xs, us = x[a:e], u[a - start:e - start]
        io = idx_out[a - off:e - off]
        no = neg_out if neg_out is None else neg_out[a - off:e - off]
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


@kernel
def quantize_rows(x, scales, seed, first, d, kind, s, idx_out, neg_out):
    """Stochastic rounding of len(scales) buckets: level indices and negative-sign flags.

    x: float32 [m], rows·d - d < m <= rows·d (the last bucket may be cut short: it is rounded
    as far as it goes); idx_out: uint8 or int32 [m]; neg_out: bool [m]. The uniforms are drawn
    here, BLOCK at a time, as `uniforms.fill` draws them: coordinate i takes draw first + i
    of the stream `seed` (uint64)."""
    n = min(x.size, scales.size * d)
    u, pairs = draw_scratch()
    for start in range(0, n, BLOCK):
        round_from(x, scales, seed, d, kind, s, start, min(BLOCK, n - start), first, u, pairs,
                   idx_out[start:], neg_out[start:])


@kernel
def quantize_pack_rows(x, scales, norm, seed, first, d, kind, s, w, idx_block, neg_block, out):
    """Scale the buckets of x as `norm_kernels` does (`norm`: L2 or LINF; bucket b's scale to
    scales[b], float32 [len(scales)]), then `quantize_rows` and `pack_fields` them (k = w + 1
    bits a coordinate) into out (uint8, ceil(m·k/8) bytes for m coordinates), a block at a
    time through idx_block / neg_block (BLOCK each, uint8 or int32 / bool): no temporaries
    the size of x, whose fresh pages cost a fault each (~2 µs on this VM: 1 ms for 1 M
    coordinates' indices and signs), and each bucket's norm read just before its rounding
    reads it again from L1. Returns -1, or the first bucket whose scale is not finite
    (nothing rounded from it)."""
    n = min(x.size, scales.size * d)
    u, pairs = draw_scratch()
    buf = norm_scratch(d)
    scaled = 0  # buckets [0, scaled) have their scales
    k = w + 1
    for start in range(0, n, BLOCK):  # a block of BLOCK fields fills k·BLOCK/8 whole bytes
        m = min(BLOCK, n - start)
        scaled, bad = scale_through(x, d, norm, scaled, (start + m - 1) // d + 1, buf, scales)
        if bad >= 0:
            return bad
        round_from(x, scales, seed, d, kind, s, start, m, first, u, pairs, idx_block, neg_block)
        at = start * k // 8
        pack_fields(idx_block, neg_block, m, w, out[at:at + (m * k + 7) // 8])
    return -1


@kernel
def quantize_pack_chunk(x, scales, norm, seed, first, d, kind, s, w, rows, index_like, out, c):
    """`quantize_pack_rows` of chunk c = buckets [c·rows, (c + 1)·rows): its fields into out
    from byte c·rows·d·(w + 1) / 8 (rows·d a multiple of 8: whole bytes), its coordinates
    drawing first + their index, through blocks of BLOCK made like index_like (an array of
    the level indices' dtype). Returns `quantize_pack_rows`' result."""
    k = w + 1
    b0, b1 = c * rows, min(scales.size, (c + 1) * rows)
    part = x[b0 * d:b1 * d]  # the last chunk may end mid-bucket
    at = b0 * d * k // 8
    return quantize_pack_rows(part, scales[b0:b1], norm, seed, first + b0 * d, d, kind, s, w,
                              np.empty(BLOCK, index_like.dtype), np.empty(BLOCK, np.bool_),
                              out[at:at + (part.size * k + 7) // 8])


@parallel_kernel
def quantize_pack_chunks(x, scales, norm, seed, first, d, kind, s, w, rows, index_like, out,
                         bad):
    """`quantize_pack_chunk` of every chunk c < len(bad) on numba's threads
    (`threads.team_ready`), its result into bad[c] (int64)."""
    for c in prange(bad.size):
        bad[c] = quantize_pack_chunk(x, scales, norm, seed, first, d, kind, s, w, rows,
                                     index_like, out, c)


@inline
def draw_scratch():
    """The draw buffers of `round_from`: (uniforms, their 64-bit words), L1-resident."""
    return np.empty(BLOCK + 2, np.float32), np.empty(BLOCK // 2 + 1, np.uint64)


@inline
def round_from(x, scales, seed, d, kind, s, start, m, off, u, pairs, idx, neg):
    """Round coordinates [start, start + m) (m <= BLOCK) of x into idx[:m], neg[:m], or with
    neg None their keys 2·level + sign into idx[:m] (of `level_keys.dtype_for`'s dtype or
    wider); coordinate i takes draw off + i of the stream `seed`, as `uniforms.fill` draws
    them (u, pairs: `draw_scratch`'s). Draws come in pairs from an even index, so an odd
    off + start draws one more and skips it."""
    lead = (off + start) & 1
    draw(u, pairs, pairs.view(np.uint32), m + lead, seed, (off + start - lead) // 2)
    _round_block(x, scales, d, kind, s, np.float32(2.0**s), u[lead:], start, m, idx, neg, start)

"""The `elias` encoder fused with the stochastic rounding (CPU, compiled kernels).

`quantize` then `elias.encode` pass the gradient's level indices and signs through memory
twice: rounding writes them (2 bytes a coordinate), `section_bits` reads them to size every
bucket's code section, `write_sections` reads them again to write the codes. Here each thread
takes a contiguous range of buckets and, a block of BLOCK coordinates at a time, computes the
block's bucket norms, rounds the block into L1-resident scratch and writes its codes at once
into a stream of its own, from bit 0, noting each bucket's section length. The ranges'
streams are then spliced, bit-shifted, into the payload. One pass over the gradient, no
full-size temporaries; the bytes are exactly those of `quantize` -> `elias.encode` (the same
uniforms, the same tables, the same layout).

Units: bit offsets (`bit0`, `nbits`) into code streams, byte offsets (`c`) into buffers.
"""

from __future__ import annotations

import numpy as np

from . import elias_kernels as K
from . import jit
from .norm_kernels import scale_through
from .norm_kernels import scratch as norm_scratch
from .round_kernels import BLOCK, round_from, scratch

__all__ = ["BLOCK", "encode_rows", "splice"]


_M32 = np.uint64(0xFFFFFFFF)


@jit.inline
def _bswap32(v):
    """The 32-bit v (uint64) with its bytes reversed: stored little-endian, its bytes read MSB
    first (LLVM makes this one bswap)."""
    return ((v & np.uint64(0xFF)) << np.uint64(24)) | ((v & np.uint64(0xFF00)) << np.uint64(8)) \
        | ((v >> np.uint64(8)) & np.uint64(0xFF00)) | ((v >> np.uint64(24)) & np.uint64(0xFF))


@jit.inline
def _emit(words, wi, acc, nacc, value, width):
    """Append a field of width <= 32 bits to the accumulator (nacc < 32 bits pending), storing
    32 bits once complete. Returns (acc, nacc, wi)."""
    acc = (acc << np.uint64(width)) | value
    nacc += width
    if nacc >= 32:
        nacc -= 32
        words[wi] = np.uint32(_bswap32((acc >> np.uint64(nacc)) & _M32))
        wi += 1
    return acc, nacc, wi


@jit.inline
def _append(acc, nacc, t):
    """Append the code of fused-table entry t (not a sentinel) to the accumulator, without
    branching: returns (acc, nacc, word, full), word being the pending 32 bits as stored
    (byte-swapped) and full = 1 once they are complete. The caller stores word at the word
    index every time and advances it by full (no arrays here: see `elias_kernels`)."""
    width = t & np.uint64(63)  # <= 32
    acc = (acc << width) | (t >> np.uint64(6))
    nacc += np.int64(width)
    full = nacc >> 5
    nacc -= full << 5
    return acc, nacc, np.uint32(_bswap32((acc >> np.uint64(nacc)) & _M32)), full


@jit.kernel
def _emit_slow(words, wi, acc, nacc, gap, level, negative, gtab, ltab):
    """The rare triple (gap, sign, level) field by field, from the split tables (out of
    `encode_rows`' loop, so that the loop keeps its state in registers). Returns (acc, nacc,
    wi): every field <= 43 bits, emitted in parts of <= 32."""
    m6 = np.uint64(63)
    if gap < gtab.size:
        gc, gl = gtab[gap] >> np.uint64(6), np.int64(gtab[gap] & m6)
    else:
        gc, gl = K.omega_code(gap)
    e = ltab[2 * np.int64(level) + np.int64(negative)]
    for code, width in ((gc, gl), (e >> np.uint64(6), np.int64(e & m6))):
        if width > 32:
            acc, nacc, wi = _emit(words, wi, acc, nacc, code >> np.uint64(32), width - 32)
            code, width = code & _M32, 32
        acc, nacc, wi = _emit(words, wi, acc, nacc, code, width)
    return acc, nacc, wi


@jit.kernel
def _code(keys, todo, count, a, start, last, ftab, lb, words, wi, acc, nacc, idx, neg, gtab,
          ltab):
    """Append the triples of `count` coordinates of a bucket's piece: todo[:count] (its
    nonzeros), or with todo None the coordinates a, a + 1, ... (numba compiles each case on
    its own: the `None` test costs nothing). keys, idx, neg: the block's, from `start`; last:
    the previous nonzero's position. Returns (acc, nacc, wi, last)."""
    for j in range(count):
        k = a + j if todo is None else todo[np.uint64(j)]
        key = np.uint64(keys[np.uint64(k - start)])
        gap = k - last
        t = ftab[(np.uint64(min(gap, K.GAPS + 1)) << lb) | key]
        last = k if key != 0 else last
        if t >> np.uint64(63):  # rare: a sentinel (long gap or level)
            acc, nacc, wi = _emit_slow(words, wi, acc, nacc, gap, idx[k - start],
                                       neg[k - start], gtab, ltab)
            continue
        acc, nacc, word, full = _append(acc, nacc, t)
        words[np.uint64(wi)] = word
        wi += full
    return acc, nacc, wi, last


@jit.kernel
def encode_rows(x, scales, norm, seed, d, kind, s, b0, b1, ftab, lb, lcap, gtab, ltab, words,
                sec_bits):
    """Scale and round buckets [b0, b1) of the flat gradient x (float32 [n]; the last bucket
    may be cut short) as `norm_kernels` (`norm`: L2 or LINF; bucket b's scale to scales[b],
    float32) and `round_kernels.quantize_rows` do, and write their elias code sections into
    words (uint32, whose bytes are the stream from bit 0, MSB first; the range's largest
    possible section bits / 32 + 3·BLOCK + 1 words or more), sec_bits[b] (int64) receiving
    each section's length in bits. Tables as
    `elias_kernels.section_bits`; the rounding yields levels inside the grid.

    A block with more zeros than nonzeros lists its nonzeros first (branch-free) and codes
    only them; in a denser one every coordinate is coded (no list: faster there). Returns the
    range's bits (its last word zero-padded), -ERR_SCALE at the first bucket whose scale is
    not finite (nothing rounded from it), or -ERR_OVERFLOW if words is too small (an
    internal error: callers size it by the largest section)."""
    n = min(x.size, b1 * d)
    first = b0 * d
    u, pairs, idx, neg = scratch()
    keys = np.empty(BLOCK, np.uint32)  # the fused table's column: 2·min(level, lcap) + sign
    todo = np.empty(BLOCK, np.int64)  # positions of the coordinates to code
    lb = np.uint64(lb)
    acc = np.uint64(0)  # pending bits: the last nacc < 32 of them; 32·wi + nacc written
    nacc = 0
    wi = 0
    last = first - 1  # flat position of the bucket's previous nonzero (none: one before it)
    opened = 0  # the bit at which the current bucket's section starts
    buf = norm_scratch(d)
    scaled = b0  # buckets [b0, scaled) have their scales
    for start in range(first, n, BLOCK):
        m = min(BLOCK, n - start)
        scaled, bad = scale_through(x, d, norm, scaled, (start + m - 1) // d + 1, buf, scales)
        if bad >= 0:  # (the norms just before the rounding reads them again from L1)
            return -K.ERR_SCALE
        round_from(x, scales, seed, d, kind, s, start, m, first, u, pairs, idx, neg)
        count = 0
        for i in range(m):
            key = np.uint32(min(np.uint32(idx[i]), np.uint32(lcap)) * 2) | np.uint32(neg[i])
            keys[i] = key
            count += np.int64(key != 0)
        sparse = 2 * count < m
        a = start
        while a < start + m:  # the pieces of buckets in this block
            b = a // d
            e = min((b + 1) * d, start + m)
            if wi + 3 * (e - a) + 1 > words.size:  # a triple stores <= 3 words, the end 1
                return -K.ERR_OVERFLOW
            if sparse:  # the piece's nonzeros listed first, branch-free; only they are coded
                count = 0
                for k in range(a, e):
                    todo[np.uint64(count)] = k
                    count += keys[np.uint64(k - start)] != 0
                acc, nacc, wi, last = _code(keys, todo, count, a, start, last, ftab, lb, words,
                                            wi, acc, nacc, idx, neg, gtab, ltab)
            else:  # every coordinate: a zero's table entry is empty (width 0)
                acc, nacc, wi, last = _code(keys, None, e - a, a, start, last, ftab, lb, words,
                                            wi, acc, nacc, idx, neg, gtab, ltab)
            if e == (b + 1) * d or e == n:  # the bucket is complete
                sec_bits[b] = 32 * wi + nacc - opened
                opened = 32 * wi + nacc
                last = e - 1
            a = e
    total = 32 * wi + nacc
    if nacc:
        words[wi] = np.uint32(_bswap32((acc << np.uint64(32 - nacc)) & _M32))
    return total


@jit.kernel
def splice(src, nbits, dst, bit0, head):
    """Copy the first nbits of the stream src (uint32 words as `encode_rows` stores them: the
    bytes MSB first, zero after nbits) to bits [bit0, bit0 + nbits) of dst (uint8). A first
    byte shared with the bits before bit0 (bit0 not byte-aligned) is not stored: its part
    goes to head[0], for the caller to OR in once every range is spliced. The last byte's
    bits after the stream are zero; no byte past it is touched (another range's)."""
    if nbits == 0:
        return
    sh = bit0 & 7
    c0 = bit0 >> 3
    last = (bit0 + nbits - 1) >> 3  # the last byte holding bits of src
    s8 = src.view(np.uint8)  # the stream's bytes in order (each word stored byte-swapped)
    nsrc = (nbits + 7) >> 3  # the bytes holding its bits; past them s8 is scratch
    u = np.uint64  # (unsigned indices: no negative-index code, so LLVM vectorises the loops)
    if sh == 0:  # aligned: a byte copy
        for j in range(nsrc):
            dst[u(c0 + j)] = s8[u(j)]
        return
    head[0] = s8[0] >> np.uint8(sh)
    # dst byte c0 + 1 + j: the low sh bits of stream byte j, then the high 8 - sh of byte j + 1
    up, down = np.uint8(8 - sh), np.uint8(sh)
    count = last - c0
    body = min(count, nsrc - 1)
    for j in range(body):
        dst[u(c0 + 1 + j)] = np.uint8(s8[u(j)] << up) | (s8[u(j + 1)] >> down)
    for j in range(body, count):  # the last byte, if only stream byte j reaches it
        dst[u(c0 + 1 + j)] = np.uint8(s8[u(j)] << up)

"""Compiled (numba) kernels of the `elias` wire format; the layout is specified in `elias.py`.

The encoder's tables and rare-path helpers are here and its loops in `elias_fused.py`;
`write_fixed` writes the bucket-length fields. Decoding is `decode_sections`. Buckets are
independent once their offsets are known, so it works on a contiguous range [b0, b1) of
buckets, and the caller (`elias.py`) runs a few ranges at once: in one launch of
`decode_ranges` on numba's threads, or on a thread pool (the kernels release the GIL).

Bit order: MSB first, within a field and within a byte (`coding.py`). Units: `pos`, `end`,
`at` are bit offsets into the code stream; `c` a byte offset; `d` coordinates per bucket;
`k` a flat coordinate index; `seen` a 1-based position in a bucket; widths and lengths are
in bits.

Speed, in the decoder's hot loop: it reads a 64-bit window per 4 table entries, each entry
one or two triples, and decodes two lanes of buckets side by side, as each entry waits for
the previous one's length load (a uint8 table beside the entries). While both lanes are
>= 64 bits from their sections' ends they step in lockstep with no per-entry check; near an
end a lane takes checked steps. It calls no helper that receives an array (a call costs an
atomic reference-count update per array) and keeps no rare path inline (it would spill the
loop's registers): long or out-of-table codes go to `jit.inline` helpers in branches.

Safety: numba does no bounds checking. Every read of the payload is of a byte known to lie
in the buffer (`_window` reads bytes past its end as 0), every decoded index is range-checked
before it is used (but in the lockstep, whose stores may pass a bucket's end before the step's
check: a lane steps only while out has `_REACH` coordinates beyond it), every loop is bounded
(a triple advances a section by >= 3 bits; an omega code has at most 5 groups below 2^57),
and stores are checked against the buffer's end. Kernels report malformed input by returning
an error code (`ERR_*`); the caller raises the ValueError with the vectorised path's message.
"""

from __future__ import annotations

import numpy as np

from . import jit
from .bit_kernels import leading_zeros, nonzero_mask64, popcount, trailing_zeros

__all__ = ["TABLE_BITS", "GAPS", "SENTINEL", "ERR_PAST", "ERR_RANGE", "ERR_BEYOND",
           "ERR_OVERFLOW", "ERR_SCALE", "ERR_DECLINED", "omega_code", "write_fixed", "read_fixed",
           "decode_sections", "decode_ranges", "gap_bits", "bucket_gap_bits"]

TABLE_BITS = 14  # decoder: (gap, sign, level) triples of <= 14 bits in one lookup (2^14
#                 entries: the lengths' 16 KiB stay in L1; 12 bits sent qsgd's gaps >= 16 to
#                 the slow path, 0.40 ms -> 0.25 ms a 1 M decode)
_SHIFT = np.uint64(64 - TABLE_BITS)
_M32 = np.uint64(0xFFFFFFFF)

ERR_PAST = 1  # a code runs past its bucket's section
ERR_RANGE = 2  # a gap exceeds d or a level index exceeds G - 1 (or an omega group is too wide)
ERR_BEYOND = 3  # a nonzero lies beyond its bucket (incl. the short last bucket)
ERR_OVERFLOW = 5  # encoder: a store past its buffer (an internal error: sizes disagree)
ERR_SCALE = 6  # fused encoder: a bucket's scale is not finite (NaN/Inf input, or L2 overflow)
ERR_DECLINED = 7  # encoder: its vector step declined a code (not an error: the caller then
#                   codes the range without it)


@jit.kernel
def omega_code(v):
    """Elias-omega code of an integer 1 <= v < 2^32: (code as uint64, length in bits <= 43).
    For gaps beyond the encoder's table (buckets of more than 2^16 coordinates)."""
    code = np.uint64(0)
    length = 1  # the terminating 0
    while v > 1:
        bl = 0  # bit length of v
        t = v
        while t > 0:
            t >>= 1
            bl += 1
        code |= np.uint64(v) << np.uint64(length)
        length += bl
        v = bl - 1
    return code, length


# -- encoder ------------------------------------------------------------------------------
# The code sections are written by `elias_fused.py` (from a gradient as it is rounded, or from
# level keys); here are the tables it reads (built in elias.py), uint64 entries
# code << 6 | width (in bits):
#   ftab[g << lb | 2l + s] = the whole triple ω(g), sign bit s, ω(l) for gaps 1 <= g <= GAPS
#     and levels 1 <= l < lcap; 0 for l = 0 (a zero coordinate has no code, whatever g);
#     SENTINEL in row g = GAPS + 1 (a longer gap), in column l = lcap (a level beyond the
#     table) and where the triple is longer than 32 bits; lcap = min(G, 128) and rows of
#     2^lb >= 2·lcap + 2 entries, so the table stays small.
#   gtab[g] = ω(g) for gaps 1 <= g < gtab.size (longer gaps: `omega_code`), and
#   ltab[2l + s] = the sign bit s followed by ω(l), one field, for levels 1 <= l < G:
#     the split tables of the rare path (`elias_fused._emit_slow`).
# So the hot loops look up one entry per coordinate and never branch on whether it is zero.
GAPS = 63  # gaps in the fused table
SENTINEL = np.uint64((1 << 63) | 63)  # width 63 > 32: sends a coordinate down the rare path


@jit.inline
def _store(out, c, word, nbytes):
    """Store the top `nbytes` bytes of the 32-bit `word` at out[c], out[c + 1], ...
    Returns the new c, or -1 for a byte past the end of out."""
    for k in range(nbytes):
        if c >= out.size:
            return -1
        out[c] = np.uint8((word >> np.uint64(24 - 8 * k)) & np.uint64(255))
        c += 1
    return c


@jit.inline
def _put(out, acc, nacc, c, value, width):
    """Append a field of width <= 32 bits to the accumulator (its low nacc < 32 bits pending),
    storing 32 bits once complete. Returns (acc, nacc, c); c = -1 on a bad store."""
    acc = (acc << np.uint64(width)) | value
    nacc += width
    if nacc >= 32:
        nacc -= 32
        c = _store(out, c, (acc >> np.uint64(nacc)) & _M32, 4)
    return acc, nacc, c


@jit.kernel
def write_fixed(values, w, out):
    """Write values[i] as fields of w <= 64 bits, MSB first, into out (exactly
    ceil(values.size·w/8) bytes, the last zero-padded). Returns 0, or ERR_OVERFLOW (out of
    another size: nothing written)."""
    if (values.size * w + 7) // 8 != out.size:
        return ERR_OVERFLOW
    acc = np.uint64(0)
    nacc = 0
    c = 0
    if w <= 32:  # (the bucket-length fields): each complete 32 bits stored at once, their
        # bytes known to lie in out (checked above), ~4x faster than `_put`'s checked stores
        for i in range(values.size):
            acc = (acc << np.uint64(w)) | np.uint64(values[i])
            nacc += w
            if nacc >= 32:
                nacc -= 32
                word = acc >> np.uint64(nacc)
                for k in range(4):
                    out[np.uint64(c + k)] = np.uint8((word >> np.uint64(24 - 8 * k))
                                                     & np.uint64(255))
                c += 4
    else:
        for i in range(values.size):
            v = np.uint64(values[i])
            acc, nacc, c = _put(out, acc, nacc, c, v >> np.uint64(32), w - 32)
            acc, nacc, c = _put(out, acc, nacc, c, v & _M32, 32)
    if nacc:  # the < 32 pending bits, zero-padded to a byte
        c = _store(out, c, (acc << np.uint64(32 - nacc)) & _M32, (nacc + 7) // 8)
    return 0 if c == out.size else ERR_OVERFLOW


# -- decoder ------------------------------------------------------------------------------
# Table (built in elias.py for one d and grid): table[t], for the top TABLE_BITS bits t of a
# window, describes the (gap, sign, level) triples they start with, one or two:
#   sym1 | gap1 << 16 | (gap1 + gap2) << 24 | L << 32 | L1 << 38 | sym2 << 48,
# L the bits of both, L1 of the first, sym = 2·level + sign; with one triple, gap2 = 0 and
# sym2 = sym1 (the second store repeats the first). 0 if the first triple is longer than
# TABLE_BITS, or has gap > d or a level outside the grid (the slow path then decodes it, or
# reports it). The lockstep takes each of its four fields out with one instruction (low 16
# bits, a byte, a byte, top 16 bits), and both stores' offsets add to o directly (1 M qsgdinf
# decode 0.645 -> 0.620 ms against L | L1 << 6 | gap1 << 12 | gap2 << 24 | sym1 << 32 |
# sym2 << 48, which took 7 instructions).
G1, G12, L_AT, L1_AT, SYM2 = 16, 24, 32, 38, 48  # the fields' bit offsets

@jit.inline
def _window(buf, pos):
    """uint64 whose MSB is the bit at `pos` of buf; its top 57 bits are valid. Bytes past the
    end of buf read as 0; nothing outside buf is touched."""
    i = pos >> 3
    n = buf.size
    w = np.uint64(0)
    for k in range(8):
        w <<= np.uint64(8)
        if 0 <= i + k < n:
            w |= np.uint64(buf[i + k])
    return w << np.uint64(pos & 7)


@jit.inline
def _window8(buf, pos):
    """`_window` where the 8 bytes from pos >> 3 lie in buf (one unaligned load)."""
    i = pos >> 3
    w = np.uint64(0)
    for k in range(8):
        w = (w << np.uint64(8)) | np.uint64(buf[np.uint64(i + k)])
    return w << np.uint64(pos & 7)


_REACH = 4 * 63  # the furthest 4 entries move a lane in out: a triple of <= 14 bits has a
#                  gap <= 63 (|ω(64)| = 13); two of them in 14 bits, gaps <= 15 each


@jit.inline
def _spots(e, o):
    """Out indices + 1 of table entry e's one or two triples, the first nonzero so far
    ending at index o: (o1, o2)."""
    return (o + np.int64((e >> np.uint64(G1)) & np.uint64(0xFF)),
            o + np.int64((e >> np.uint64(G12)) & np.uint64(0xFF)))


@jit.inline
def _put2(e, o1, o2, signed, scale, out):
    """Store entry e's triples at out[o1 - 1] and out[o2 - 1] (one triple: the same store
    twice). Unchecked: callers check o2 first, or know the stores lie in out."""
    out[np.uint64(o1 - 1)] = signed[e & np.uint64(0xFFFF)] * scale
    out[np.uint64(o2 - 1)] = signed[e >> np.uint64(SYM2)] * scale


@jit.kernel
def read_fixed(buf, count, w, out):
    """out[i] = the i-th w-bit field (1 <= w <= 57) of buf, MSB first, for i < count; bits
    past the end of buf read as 0."""
    n = buf.size
    for i in range(count):
        pos = i * w
        window = _window8(buf, pos) if (pos >> 3) + 8 <= n else _window(buf, pos)
        out[i] = np.int64(window >> np.uint64(64 - w))


@jit.inline
def _omega_slow(buf, pos, end, limit, maxbits):
    """Decode one omega code at bit pos of a section ending at `end`, group by group, reading
    no bit at or past `end`. limit: the largest value accepted; maxbits = bitlen(limit) <= 57.
    Returns (value, new pos, 0), or (0, pos, ERR_PAST or ERR_RANGE)."""
    n = np.int64(1)
    for _ in range(8):  # a value < 2^57 has <= 5 groups: the loop always returns sooner
        if pos >= end:
            return np.int64(0), pos, ERR_PAST
        w = _window(buf, pos)
        if (w >> np.uint64(63)) == 0:  # the terminating 0
            return n, pos + 1, 0
        k = n + 1  # the next group has n + 1 bits (so a value >= 2^n)
        if k > maxbits:
            return np.int64(0), pos, ERR_RANGE
        if pos + k > end:
            return np.int64(0), pos, ERR_PAST
        n = np.int64(w >> np.uint64(64 - k))
        pos += k
        if n > limit:
            return np.int64(0), pos, ERR_RANGE
    return np.int64(0), pos, ERR_RANGE


@jit.inline
def _bit_length(v):
    n = 0
    while v > 0:
        v >>= 1
        n += 1
    return n


@jit.kernel
def decode_sections(body, starts, b0, b1, d, numel, table, lengths, signed, scales, out):
    """Decode buckets [b0, b1) into out[b·d: min((b+1)·d, numel)], sgn·level·scale (0 where
    no code; a zero scale would hide a nonzero level: callers check those buckets). body:
    the code stream (uint8); starts: int64 [B + 1], bit offsets of the sections (starts[-1]
    <= 8·body.size); table: uint64 [2^TABLE_BITS] (above); lengths: uint8, its entries' L;
    signed: float32 [2G], signed[2l + s] = (-1)^s·level l; scales: float32 [B]; out: float32
    [numel]. Returns (0, 0), or (ERR_*, bucket) for a malformed bucket.

    Each entry waits for the previous one's length load, so two lanes of buckets (b0, b0+2,
    ... and b0+1, b0+3, ...) decode side by side. While both are >= 64 bits from their
    sections' ends, a step takes 4 entries of each in lockstep (`_REACH` below); near an end,
    one lane takes a checked step on its own and the lanes swap."""
    nbody = body.size
    lmax = signed.size // 2 - 1
    dbits = min(_bit_length(d), 57)
    lbits = min(_bit_length(lmax), 57)
    # this lane: bucket, bit position, section end, out index just past the last nonzero so
    # far (the bucket's first coordinate before any), the bucket's end in out, scale; then
    # the other lane's
    b, pos, end, o, limit, scale = b0 - 2, 0, 0, 0, 0, np.float32(0)
    ob, opos, oend, oo, olimit, oscale = b0 - 1, 0, 0, 0, 0, np.float32(0)
    while True:  # each step decodes >= 1 triple (>= 3 bits), opens a bucket, or swaps
        if (end - pos >= 64 and oend - opos >= 64 and o + _REACH <= numel
                and oo + _REACH <= numel):
            # lockstep: 4 entries (<= 56 bits) of each lane cannot pass its section's end,
            # whose >= 64 bits hold the window's 8 bytes, nor store past out's end; a
            # bucket's own end is checked after them (stores past it, into a bucket the
            # error then discards, stay inside out)
            w, ow = _window8(body, pos), _window8(body, opos)
            for _ in range(4):
                t, ot = w >> _SHIFT, ow >> _SHIFT
                length, olength = lengths[t], lengths[ot]
                if min(length, olength) == 0:  # not in the table: the checked step
                    break
                e, oe = table[t], table[ot]
                o1, o = _spots(e, o)
                _put2(e, o1, o, signed, scale, out)
                oo1, oo = _spots(oe, oo)
                _put2(oe, oo1, oo, signed, oscale, out)
                pos, w = pos + np.int64(length), w << np.uint64(length)
                opos, ow = opos + np.int64(olength), ow << np.uint64(olength)
            if o > limit:
                return ERR_BEYOND, b
            if oo > olimit:
                return ERR_BEYOND, ob
            if min(length, olength) != 0:
                continue
        if pos < end:  # a checked step of this lane: up to 4 entries, then the slow path
            w = _window8(body, pos) if (pos >> 3) + 8 <= nbody else _window(body, pos)
            at = pos  # the bit after the last triple decoded
            for _ in range(4):
                e = table[w >> _SHIFT]
                if e == 0:
                    break
                length = (e >> np.uint64(L_AT)) & np.uint64(63)
                if at + np.int64(length) > end:  # the section's end: the first triple only
                    length = (e >> np.uint64(L1_AT)) & np.uint64(63)
                    if at + np.int64(length) > end:
                        return ERR_PAST, b
                    sym1, gap1 = e & np.uint64(0xFFFF), (e >> np.uint64(G1)) & np.uint64(0xFF)
                    e = (sym1 | (gap1 << np.uint64(G1)) | (gap1 << np.uint64(G12))
                         | (sym1 << np.uint64(SYM2)))  # gap2 = 0, sym2 = sym1
                o1, o = _spots(e, o)
                if o > limit:
                    return ERR_BEYOND, b
                _put2(e, o1, o, signed, scale, out)
                at += np.int64(length)
                w <<= length
                if at >= end:
                    break
            if at == pos:  # a triple the table lacks (long, or out of range): by fields
                gap, pos, err = _omega_slow(body, pos, end, d, dbits)
                if err != 0:
                    return err, b
                if pos >= end:
                    return ERR_PAST, b
                sign = np.int64(_window(body, pos) >> np.uint64(63))
                lvl, at, err = _omega_slow(body, pos + 1, end, lmax, lbits)
                if err != 0:
                    return err, b
                if gap > d or lvl > lmax:
                    return ERR_RANGE, b
                o += gap
                if o > limit:
                    return ERR_BEYOND, b
                out[o - 1] = signed[2 * lvl + sign] * scale
            pos = at
        elif b + 2 < b1:  # this lane's next bucket: zero its coordinates
            b += 2
            o = b * d
            limit = min(o + d, numel)
            for k in range(np.uint64(o), np.uint64(limit)):  # (unsigned: a memset)
                out[k] = 0
            pos, end, scale = starts[b], starts[b + 1], scales[b]
        elif opos >= oend and ob + 2 >= b1:  # both lanes are done
            break
        b, pos, end, o, limit, scale, ob, opos, oend, oo, olimit, oscale = (
            ob, opos, oend, oo, olimit, oscale, b, pos, end, o, limit, scale)
    return 0, 0


# -- exact size from keys -----------------------------------------------------------------
# A payload's code bits are Σ over nonzeros of |ω(gap)| + 1 + |ω(level)|: the sign and level
# parts follow from the key counts; the gaps need positions. `gap_bits` sums their |ω| from
# a bit mask of each 64-coordinate word of a bucket, without visiting nonzeros one by one
# (`auto` sizes elias this way, and writes it only if it wins).

@jit.parallel_kernel
def decode_ranges(body, starts, bounds, d, numel, table, lengths, signed, scales, out, errs):
    """`decode_sections` of the bucket ranges [bounds[i], bounds[i + 1]) on numba's threads,
    one a thread (`threads.team_ready`): range i's (error, bucket) into errs[i] (int64 [R,
    2])."""
    for i in jit.prange(bounds.size - 1):
        errs[i, 0], errs[i, 1] = decode_sections(body, starts, bounds[i], bounds[i + 1], d,
                                                 numel, table, lengths, signed, scales, out)


@jit.inline
def _word_mask(keys, at, count):
    """Bit j set iff keys[at + j] != 0, for j < count <= 64."""
    if count == 64:
        return nonzero_mask64(keys, np.int64(at))
    m = np.uint64(0)
    for j in range(count):
        m |= np.uint64(keys[np.uint64(at + j)] != 0) << np.uint64(j)
    return m


@jit.inline
def _inner_gap_bits(m):
    """Σ |ω(gap)| over the set bits of m but its lowest, each gap being the distance to the
    set bit below it (< 64). |ω(g)| = 1 + 2·[g >= 2] + 3·[g >= 4] + [g >= 8] + 4·[g >= 16]
    + [g >= 32] for g < 64; gap >= t iff the t - 1 bits below are clear, and cover_k (the
    bits with a set bit 1..k places below) tells that for all bits at once."""
    rest = m & (m - np.uint64(1))
    c1 = m << np.uint64(1)
    c2 = c1 | (c1 << np.uint64(1))
    c3 = c2 | (c1 << np.uint64(2))
    c4 = c2 | (c2 << np.uint64(2))
    c7 = c4 | (c3 << np.uint64(4))
    c8 = c4 | (c4 << np.uint64(4))
    c15 = c8 | (c7 << np.uint64(8))
    c16 = c8 | (c8 << np.uint64(8))
    c31 = c16 | (c15 << np.uint64(16))
    return (popcount(rest) + 2 * popcount(rest & ~c1) + 3 * popcount(rest & ~c3)
            + popcount(rest & ~c7) + 4 * popcount(rest & ~c15) + popcount(rest & ~c31))


@jit.inline
def bucket_gap_bits(keys, base, end, glen):
    """Σ |ω(gap)| over the nonzero keys of the bucket keys[base:end] (`gap_bits`' gaps;
    glen as there)."""
    total = 0
    last = -1  # the bucket's previous nonzero, relative to base
    for at in range(base, end, 64):
        m = _word_mask(keys, at, min(64, end - at))
        if m == 0:
            continue
        rel = at - base
        gap = rel + trailing_zeros(m) - last  # the word's first nonzero
        total += glen[gap] if gap < glen.size else omega_code(gap)[1]
        total += _inner_gap_bits(m)
        last = rel + 63 - leading_zeros(m)
    return total


@jit.kernel
def gap_bits(keys, d, b0, b1, glen):
    """Σ |ω(gap)| over the nonzero keys of buckets [b0, b1) (keys of the n coordinates; the
    last bucket may be cut short), gaps as the format's: the 1-based position of a bucket's
    first nonzero, then the distance to the previous one. glen: int64, glen[g] = |ω(g)| for
    g < glen.size (longer gaps: `omega_code`)."""
    n = min(keys.size, b1 * d)
    total = 0
    for b in range(b0, b1):
        total += bucket_gap_bits(keys, b * d, min(b * d + d, n), glen)
    return total

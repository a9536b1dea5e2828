"""Compiled (numba) kernels of the `entropy` wire format: the static model, rANS encoder and
decoder (the keys and their histogram come from `level_keys.py`).

They walk the same interleaved-rANS stream as the vectorised code of `entropy.py` (whose
docstring is the format's spec) in compiled loops and produce exactly its bytes: within a
chunk of n symbols, symbol i in lane i mod K, step t = i // K, 32-bit states in
[L, 2^32), 16-bit words. Units: n, K and lane positions count symbols (a coordinate each, or
a pair of coordinates); word counts and word buffers count 16-bit words.

Codes. The encoder indexes its tables by a code: the key 2·idx + neg (level index, sign
bit) of a coordinate, which `entropy.py` maps to the symbol 2·idx - (idx > 0) + neg of
`entropy.symbols` (key - (key >= 2)); or, in pair mode, the two keys of coordinates 2i, 2i + 1
side by side (key0 << shift | key1), mapped to the pair's symbol. No symbol arithmetic per
coordinate. The decoder maps a slot to its symbol (one small table: L1/L2-resident), then the
symbol to its frequency, first slot and signed level(s).

Word order. The stream holds step 0's words first, and within a step the words of the lanes
that renormalise, in ascending lane order. The encoder runs the steps t = T-1 .. 0 and each
step's lanes downwards, storing words downwards from the end of its buffer; the decoder runs
forwards and reads a lane's word as it decodes the lane. Both store or read a word every
symbol and keep it only if the lane renormalises (branch-free: which lanes renormalise is
random, and a mispredicted branch costs more than the store or load).

Division. The encoder's x // f (x < f·2^(32-SB) after renormalisation, so x / f < 2^17;
1 <= f <= 2^15) is computed as trunc(x · fl(1/f) + 2^-20) in float64: the product is within
2^-33 of x / f, whose fractional part is 0 or at least 1/f >= 2^-15, so adding 2^-20 and
truncating gives floor(x / f) exactly (checked exhaustively: every f, and for every multiple
m·f < min(f·2^17, 2^32) both m·f and m·f + f - 1, the ends of the run with quotient m).

Safety. numba does not check bounds. The encoder's inputs are validated first (`level_keys`
rejects levels outside the grid; rounding makes none); the decoder checks the word count of
every step before reading its words, and every loop is bounded by n, K, the number of steps or
the table sizes. Errors are returned as codes; `entropy.py` raises the vectorised path's
ValueErrors. Unsigned indices (`U`) spare numba's negative-index wraparound code in the hot
loops.
"""

from __future__ import annotations

import numpy as np

from . import jit
from .bit_kernels import popcount
from .lane_vectors import decode_pairs16, encode_pairs16, renorm16

SB = 15  # log2 of the frequency total M
M = 1 << SB
L = 1 << 16  # lower bound of a state
TOP_SHIFT = 32 - SB  # renormalise while x >= f << TOP_SHIFT
ROUND_UP = 2.0 ** -20  # see "Division" above

DECODE_RAN_OUT = 1  # a step needs more words than the stream has left

U = np.uint64


@jit.kernel
def model(code_counts, code_sym, total, counts, freq, ftab, ctab):
    """The static model of `entropy._table` from the counts of the kernel codes (int64, by
    code; code_sym: each code's symbol): counts[A] (by symbol) and freq[A] (frequencies
    summing to M: 1 + count·(M - present) // total for each present symbol, the rest to the
    first most frequent), and by code ftab, ctab (its symbol's frequency and first slot).
    All int64; total: the symbols counted."""
    counts[:] = 0
    for code in range(code_counts.size):
        counts[U(code_sym[U(code)])] += code_counts[U(code)]
    present, mode = 0, 0
    for sym in range(counts.size):
        present += np.int64(counts[U(sym)] > 0)
        if counts[U(sym)] > counts[U(mode)]:
            mode = sym
    spare = M
    for sym in range(counts.size):
        c = counts[U(sym)]
        freq[U(sym)] = 1 + c * (M - present) // total if c > 0 else 0
        spare -= freq[U(sym)]
    freq[U(mode)] += spare
    cum = np.empty(counts.size, np.int64)
    first = 0
    for sym in range(counts.size):
        cum[U(sym)] = first
        first += freq[U(sym)]
    for code in range(code_counts.size):
        ftab[U(code)] = freq[U(code_sym[U(code)])]
        ctab[U(code)] = cum[U(code_sym[U(code)])]


@jit.inline
def _push(state, j, code, top, inv, cmpl, ctab, words, pos):
    """Encode the symbol of `code` into lane j's state; its renormalisation word goes to
    words[pos - 1] (pos >= 1). Returns the new pos: one lower if the word was kept."""
    xs = np.int64(state[U(j)])
    # renormalise (at most once: x < 2^32 and f << TOP_SHIFT >= 2^17), branch-free: the low
    # word is always stored, and kept if pos moves past it
    need = np.int64(xs >= top[code])
    words[U(pos - 1)] = ((xs & 0xFF) << 8) | ((xs >> 8) & 0xFF)  # big-endian bytes
    xs >>= need << 4
    quo = np.int64(xs * inv[code] + ROUND_UP)  # = xs // f, see the module docstring
    # (xs // f)·M + xs mod f + c, as xs + quo·(M - f) + c: one multiply, no shift
    state[U(j)] = xs + quo * cmpl[code] + ctab[code]
    return pos - need


@jit.kernel
def encode(keys, shift, ftab, ctab, x, words, limit):
    """rANS-encode one chunk in K = len(x) lanes; returns the word count, or -1 as soon as it
    exceeds `limit`.

    keys: `level_keys` keys of the chunk's coordinates, every one valid. shift = 0: each key is
    a symbol, its code the key; shift > 0 (pairs; len(keys) even): the symbol of coordinates
    2i, 2i + 1 has the code keys[2i] << shift | keys[2i + 1]. ftab, ctab: int64, by code: the
    frequency f (summing to M over symbols, >= 1 for every code present) and the cumulative
    frequency of the code's symbol. x: int64 [K], receives the lanes' final states. words:
    uint16, longer than the chunk's symbols (a word a symbol at most, plus the one slot that
    the branch-free store may write without keeping); the words (byte-swapped: their bytes
    are the big-endian stream) fill its tail words[len - count:].

    Order: steps t = T-1 .. 0, each walking its lanes downwards and storing words downwards
    from the end, so that the stream reads step 0's words first, and a step's in ascending
    lane order.
    """
    ncodes = ftab.size
    top = np.empty(ncodes, np.int64)  # renormalise while x >= f << TOP_SHIFT
    inv = np.empty(ncodes, np.float64)  # fl(1/f); 0 for absent codes (never used)
    cmpl = np.empty(ncodes, np.int64)  # M - f
    for code in range(ncodes):
        f = ftab[U(code)]
        top[U(code)] = f << TOP_SHIFT
        inv[U(code)] = 1.0 / f if f > 0 else 0.0
        cmpl[U(code)] = M - f
    n = keys.size if shift == 0 else keys.size // 2  # symbols
    k = x.size
    sh = U(shift)
    state = np.full(k, L, np.uint32)  # (32-bit: cache-friendly)
    end = words.size
    pos = end  # the words so far fill words[pos:end]; pos >= end - n >= 1
    for t in range((n + k - 1) // k - 1, -1, -1):
        lo = t * k
        if shift == 0:  # (two loops: no test per symbol)
            for j in range(min(k, n - lo) - 1, -1, -1):
                pos = _push(state, j, U(keys[U(lo + j)]), top, inv, cmpl, ctab, words, pos)
        else:
            for j in range(min(k, n - lo) - 1, -1, -1):
                i = 2 * (lo + j)
                code = (U(keys[U(i)]) << sh) | U(keys[U(i + 1)])
                pos = _push(state, j, code, top, inv, cmpl, ctab, words, pos)
        if end - pos > limit:
            return -1
    for j in range(k):
        x[U(j)] = state[U(j)]
    return end - pos


@jit.kernel
def encode_pairs_vector(keys, shift, fc, x, words, limit):
    """`encode` of a chunk of pair symbols (shift > 0), 16 lanes at a time in vector
    registers (`lane_vectors`: only where `lane_vectors.FAST`): the same words, final states
    and return value. keys: uint8, even length; fc: uint32 by code, f | first slot << 16.
    The rest as `encode`'s.

    Order: as `encode`'s, a group of 16 lanes at a time: steps downwards, each step's
    groups downwards (the last may be partial), a group's words stored below the words so
    far in ascending lane order."""
    n = keys.size // 2
    k = x.size
    xs = np.full((k + 15) & ~15, L, np.uint32)  # whole groups of 16 (the last one padded)
    xa, ka, fa, wa = xs.ctypes.data, keys.ctypes.data, fc.ctypes.data, words.ctypes.data
    end = words.size
    pos = end  # the words so far fill words[pos:end]
    for t in range((n + k - 1) // k - 1, -1, -1):
        lo = t * k
        width = min(k, n - lo)
        for g in range((width - 1) & ~15, -1, -16):
            valid = min(16, width - g)
            pos -= encode_pairs16(xa + 4 * g, ka + 2 * (lo + g), fa, valid, shift,
                                  wa + 2 * pos, SB)
        if end - pos > limit:
            return -1
    x[:] = xs[:k]
    return end - pos


@jit.inline
def _pop(x, lo, j, end, words, ptr, top, symtab, fc, vals, ps, coeff, scale):
    """Decode lanes j .. end - 1 of the step at symbol lo (one bucket's piece, its scale),
    lane i's renormalisation word read at words[ptr] (top None: the caller knows the step
    stays inside the stream) or at words[min(ptr, top)]. Returns (ptr, the last symbol)."""
    s = U(0)
    for i in range(j, end):
        xs = x[U(i)]
        slot = xs & np.uint32(M - 1)
        s = U(symtab[U(slot)])
        if ps == 0:
            coeff[U(lo + i)] = vals[s] * scale
        else:
            coeff[U(2 * (lo + i))] = vals[2 * s] * scale
            coeff[U(2 * (lo + i) + 1)] = vals[2 * s + U(1)] * scale
        xs = fc[2 * s] * (xs >> np.uint32(SB)) + slot - fc[2 * s + U(1)]
        w = np.uint32(words[U(ptr) if top is None else U(min(ptr, top))])
        w = ((w & np.uint32(0xFF)) << np.uint32(8)) | (w >> np.uint32(8))
        need = xs < np.uint32(L)
        x[U(i)] = ((xs << np.uint32(16)) | w) if need else xs
        ptr += np.int64(need)
    return ptr, s


@jit.kernel
def decode(words, nwords, symtab, fc, vals, ps, x, coeff, scales, first, d, last):
    """rANS-decode one chunk into coeff, each coordinate times its bucket's scale; returns the
    words consumed, or -DECODE_RAN_OUT. (A zero scale would hide a nonzero level: callers
    check those buckets.)

    words: uint16, the chunk's nwords words read natively (byte-swapped: the stream is
    big-endian), at least one element (a dummy when nwords = 0: the branch-free refill reads
    a word every symbol, clamped to the last in the steps that could run past it). symtab:
    uint8 or uint16 [M], slot -> symbol. By symbol s (interleaved: one table each, fewer
    pointers live in the loop): fc[2s], fc[2s + 1] (uint32) its frequency and first slot;
    vals (float32) its signed level, vals[s] (ps = 0: a symbol a coordinate, len(coeff)
    symbols), or (ps = 1: pairs, len(coeff) / 2 symbols, coeff of even length) vals[2s],
    vals[2s + 1] those of its two coordinates. x: uint32 [K] states (initially the
    payload's, >= L), updated. scales: float32 [B]; coeff[i] is the gradient's coordinate
    first + i, in bucket (first + i) // d (pairs: first and d even). last: int64 [1],
    receives the chunk's last symbol. The caller checks the end: all words consumed, every
    state back at L.
    """
    n = coeff.size >> ps
    k = x.size
    top = max(nwords - 1, 0)  # the last word (a dummy if none)
    ptr = 0
    s = U(0)
    b = first // d  # the bucket of the symbol at hand; it ends before chunk coordinate bend
    bend = (b + 1) * d - first  # (walked forward: no division per step)
    for t in range((n + k - 1) // k):
        lo = t * k
        width = min(n - lo, k)
        inside = ptr + width <= top  # a word a symbol at most: no read can pass the last
        j = 0
        while j < width:  # the step's symbols, a bucket's piece at a time
            while (lo + j) << ps >= bend:
                b += 1
                bend += d
            end = min(width, (bend >> ps) - lo)  # (pairs: d and first even, so bend is)
            scale = scales[U(b)]
            if inside:  # (unclamped reads: no compare and branch a symbol)
                ptr, s = _pop(x, lo, j, end, words, ptr, None, symtab, fc, vals, ps, coeff,
                              scale)
            else:
                ptr, s = _pop(x, lo, j, end, words, ptr, top, symtab, fc, vals, ps, coeff,
                              scale)
            j = end
        if ptr > nwords:  # a read past the end was clamped: the stream ran out
            return -DECODE_RAN_OUT
    last[0] = s
    return ptr


@jit.kernel
def decode_pairs_vector(words, nwords, symtab, fc, values, a, x, coeff, scales, first, d, last):
    """`decode` of a chunk of pair symbols (ps = 1), 16 lanes at a time in vector registers
    (`lane_vectors`: only where `lane_vectors.FAST`): the same values, the same word count
    and final states, the same return codes. Needs d >= 32 (a group of 16 pairs spans at
    most two buckets).

    symtab: uint8 [M + 3] (slot -> symbol, 3 bytes of padding: read 32 bits at a time); fc:
    uint32 by symbol, frequency | first slot << 16; values: float32 [16], a coordinate's
    signed level by its own symbol (0 past the 2G - 1 of them); a = 2G - 1 (a pair's symbol
    is a·first + second). The rest as `decode`'s."""
    n = coeff.size >> 1
    k = x.size
    xs = np.full((k + 15) & ~15, L, np.uint32)  # whole groups of 16 (the last one padded)
    xs[:k] = x
    syms = np.zeros(16, np.uint32)
    xa, wa, ca, sa_ = xs.ctypes.data, words.ctypes.data, coeff.ctypes.data, syms.ctypes.data
    ta, fa, va = symtab.ctypes.data, fc.ctypes.data, values.ctypes.data
    inv_a = np.float32(1.0) / np.float32(a)
    ptr = 0
    valid = 0
    b = first // d  # the bucket of the group at hand; it ends before chunk coordinate bend
    bend = (b + 1) * d - first
    for t in range((n + k - 1) // k):
        lo = t * k
        width = min(n - lo, k)
        for g in range(0, width, 16):
            valid = min(16, width - g)
            c0 = 2 * (lo + g)  # the group's first coordinate in the chunk
            while c0 >= bend:
                b += 1
                bend += d
            cut = (bend - c0) >> 1  # lanes before the next bucket (d and first even)
            s0 = scales[U(b)]
            s1 = scales[U(b + 1)] if cut < valid else s0
            bits = decode_pairs16(xa + 4 * g, ta, fa, va, ca + 4 * c0, s0, s1, cut, valid, a,
                                  inv_a, sa_, SB, L)
            count = popcount(U(bits))
            if ptr + count > nwords:  # (the scalar decoder reads clamped, then says so)
                return -DECODE_RAN_OUT
            renorm16(xa + 4 * g, wa + 2 * ptr, bits)
            ptr += count
    x[:] = xs[:k]
    last[0] = syms[U(valid - 1)] if n else 0
    return ptr


@jit.kernel
def encode_chunk(keys, tail, cuts, per, shift, ftab, ctab, fc, vector, states, lanes, words,
                 wcuts, limit, c):
    """`encode` (or with `vector`, `encode_pairs_vector`, fc its table) of chunk c, whose
    symbols [cuts[c], cuts[c + 1]) are keys[per·cuts[c]:per·cuts[c + 1]], or for the last
    chunk `tail` where it is not empty (a lone last coordinate with its partner's key 0
    appended): its final states to states[lanes[c]:lanes[c + 1]], its words to the tail of
    words[wcuts[c]:wcuts[c + 1]]. Returns `encode`'s result."""
    part = keys[per * cuts[c]:per * cuts[c + 1]]
    if c == cuts.size - 2 and tail.size:
        part = tail
    x, out = states[lanes[c]:lanes[c + 1]], words[wcuts[c]:wcuts[c + 1]]
    if vector:
        return encode_pairs_vector(part, shift, fc, x, out, limit)
    return encode(part, shift, ftab, ctab, x, out, limit)


@jit.parallel_kernel
def encode_chunks(keys, tail, cuts, per, shift, ftab, ctab, fc, vector, states, lanes, words,
                  wcuts, limit, got):
    """`encode_chunk` of every chunk on numba's threads (`threads.team_ready`), chunk c's
    result into got[c] (int64)."""
    for c in jit.prange(got.size):
        got[c] = encode_chunk(keys, tail, cuts, per, shift, ftab, ctab, fc, vector, states,
                              lanes, words, wcuts, limit, c)


@jit.kernel
def decode_chunk(words, wcuts, symtab, fc, vals, a, ps, vector, states, lanes, coeff, cuts,
                 scales, d, lasts, c):
    """`decode` (or with `vector`, `decode_pairs_vector`, a its alphabet of one coordinate)
    of chunk c: its words words[wcuts[c]:wcuts[c + 1]] (a dummy word where it has none:
    the kernels read one every symbol, clamped), its states states[lanes[c]:lanes[c + 1]]
    (updated), its symbols [cuts[c], cuts[c + 1]) into coeff (a coordinate a symbol, or
    with ps = 1 two), its last symbol to lasts[c] (int64). Returns `decode`'s result."""
    w0, w1 = wcuts[c], wcuts[c + 1]
    own = words[w0:w1] if w1 > w0 else np.zeros(1, np.uint16)
    lo, hi = cuts[c] << ps, cuts[c + 1] << ps
    x, out, last = states[lanes[c]:lanes[c + 1]], coeff[lo:hi], lasts[c:c + 1]
    if vector:
        return decode_pairs_vector(own, w1 - w0, symtab, fc, vals, a, x, out, scales, lo, d,
                                   last)
    return decode(own, w1 - w0, symtab, fc, vals, ps, x, out, scales, lo, d, last)


@jit.parallel_kernel
def decode_chunks(words, wcuts, symtab, fc, vals, a, ps, vector, states, lanes, coeff, cuts,
                  scales, d, lasts, ptrs):
    """`decode_chunk` of every chunk on numba's threads (`threads.team_ready`), chunk c's
    result into ptrs[c] (int64)."""
    for c in jit.prange(ptrs.size):
        ptrs[c] = decode_chunk(words, wcuts, symtab, fc, vals, a, ps, vector, states, lanes,
                               coeff, cuts, scales, d, lasts, c)

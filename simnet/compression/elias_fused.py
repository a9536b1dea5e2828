"""The compiled `elias` encoder (CPU): code sections written a bucket range a thread.

Each thread takes a contiguous range of buckets and writes their code sections into a
stream of its own, from bit 0, noting each bucket's section length; the ranges' streams are
then spliced, bit-shifted, into the payload (`elias.py`). Two entry points share the coding
loop (`_code_block`):
- `encode_rows`, fused with the stochastic rounding: a block of BLOCK coordinates at a time,
  it computes the block's bucket norms, rounds the block into L1-resident scratch and codes
  it at once. One pass over the gradient, no full-size temporaries; the bytes are exactly
  those of `quantize` -> `elias.encode` (the same uniforms, the same tables, the same layout);
- `code_rows`, from level keys (`level_keys`: `elias.encode` of given levels, and `auto`
  when elias wins).
Where the host has AVX-512, the nonzeros are listed and coded 64 a call in vector registers
(`elias_vectors`, the same bits; one process, 1 M coordinates, one thread: encodes 1.2-1.7x
faster than the scalar coder); a range it declines (a code too long for it) is coded again
without it. The scalar coder lists a sparse block's nonzeros first, and codes every
coordinate of a dense one.

Units: bit offsets (`bit0`, `nbits`) into code streams, byte offsets (`c`) into buffers.
"""

from __future__ import annotations

import numpy as np

from . import elias_kernels as K
from . import jit
from .elias_vectors import LANES, RARE, code_listed64, code_listed64_keyed, list64
from .norm_kernels import scale_through
from .norm_kernels import scratch as norm_scratch
from .round_kernels import BLOCK, draw_scratch, round_from

__all__ = ["BLOCK", "encode_rows", "code_rows", "encode_ranges", "code_ranges", "splice",
           "OVERFLOW", "DECLINED"]


_M32 = np.uint64(0xFFFFFFFF)
OVERFLOW = -K.ERR_OVERFLOW  # the coding kernels' results that are not a bit count
DECLINED = -K.ERR_DECLINED


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
def _emit_slow(words, wi, acc, nacc, gap, key, gtab, ltab):
    """The rare triple (gap, key = 2·level + sign) field by field, from the split tables (out
    of `_code`'s loop, so that the loop keeps its state in registers). Returns (acc, nacc,
    wi): every field <= 43 bits, emitted in parts of <= 32."""
    m6 = np.uint64(63)
    if gap < gtab.size:
        gc, gl = gtab[gap] >> np.uint64(6), np.int64(gtab[gap] & m6)
    else:
        gc, gl = K.omega_code(gap)
    e = ltab[key]
    for code, width in ((gc, gl), (e >> np.uint64(6), np.int64(e & m6))):
        if width > 32:
            acc, nacc, wi = _emit(words, wi, acc, nacc, code >> np.uint64(32), width - 32)
            code, width = code & _M32, 32
        acc, nacc, wi = _emit(words, wi, acc, nacc, code, width)
    return acc, nacc, wi


@jit.inline
def _code(keys, base, todo, count, a, last, ftab, lb, lcol, words, wi, acc, nacc, gtab, ltab):
    """Append the triples of `count` coordinates of a bucket's piece: a + todo[:count] (its
    nonzeros), or with todo None the coordinates a, a + 1, ... (numba compiles each case on
    its own: the `None` test costs nothing). keys[k - base]: coordinate k's key 2·level +
    sign, inside the grid; its fused-table column is min(key, lcol), lcol = 2·lcap (the
    sentinels of levels >= lcap). last: the previous nonzero's position. Returns (acc, nacc,
    wi, last)."""
    for j in range(count):
        k = a + j if todo is None else a + todo[np.uint64(j)]
        key = np.uint64(keys[np.uint64(k - base)])
        gap = k - last
        t = ftab[(np.uint64(min(gap, K.GAPS + 1)) << lb) | min(key, lcol)]
        last = k if key != 0 else last
        if t >> np.uint64(63):  # rare: a sentinel (long gap or level)
            acc, nacc, wi = _emit_slow(words, wi, acc, nacc, gap, key, gtab, ltab)
        else:
            acc, nacc, word, full = _append(acc, nacc, t)
            words[np.uint64(wi)] = word
            wi += full
    return acc, nacc, wi, last


@jit.inline
def _to_carry(acc, nacc):
    """The accumulator's nacc < 32 pending bits (its lowest) at the top of a 32-bit word, 0
    below them: `elias_vectors.code_listed64`'s carry."""
    return np.int64((acc << np.uint64(32 - nacc)) & _M32)


@jit.inline
def _from_carry(carry, nacc):
    """`_to_carry` undone: the pending bits as the accumulator's lowest."""
    return np.uint64(carry) >> np.uint64(32 - nacc)


@jit.inline
def _code_listed(keys, base, a, e, last, todo, listed, words, wi, acc, nacc, kfields):
    """The triples of the nonzeros among coordinates a, ..., e - 1 (one bucket's piece;
    keys[k - base], as `_code`), in vector registers: listed first (`elias_vectors.list64`:
    their positions from a into todo, their keys into listed, int32, BLOCK + 16 each), then
    coded LANES a call (`code_listed64`, its pending bits carried at the top of a 32-bit
    word, not at the bottom of acc; `code_listed64_keyed` where kfields, `key_fields()`, is
    given: numba compiles each case on its own). Returns (acc, nacc, wi, last, declined):
    declined True if a call declined (a code too long for it), and the rest then
    meaningless.

    The loop has no branch and the kernel no call on its path: either made it ~1.3x
    slower (LLVM then spills the vector constants)."""
    pos_at, key_at = todo.ctypes.data, listed.ctypes.data
    count = 0
    for k in range(a, e, LANES):
        count += list64(keys, k - base, min(LANES, e - k), k - a, pos_at + 4 * count,
                        key_at + 4 * count)
    carry = _to_carry(acc, nacc)
    at = words.ctypes.data
    declined = 0
    for j in range(0, count, LANES):
        valid = min(LANES, count - j)
        if kfields is None:
            r = code_listed64(pos_at + 4 * j, key_at + 4 * j, valid, last - a, at + 4 * wi,
                              carry, nacc)
        else:
            r = code_listed64_keyed(pos_at + 4 * j, key_at + 4 * j, valid, last - a,
                                    at + 4 * wi, carry, nacc, kfields.ctypes.data)
        declined |= r
        wi += r & 255  # (0 if declined: within the words the caller checked)
        nacc = (r >> 8) & 31
        carry = (r >> 32) & 0xFFFFFFFF
        last = a + todo[np.uint64(j + valid - 1)]
    return _from_carry(carry, nacc), nacc, wi, last, (declined & RARE) != 0


@jit.inline
def _code_block(keys, base, start, m, n, d, sparse, vector, todo, listed, ftab, lb, lcol, gtab,
                ltab, kfields, words, sec_bits, acc, nacc, wi, last, opened):
    """Code coordinates [start, start + m) (keys[k - base], as `_code`), a bucket's piece at
    a time: in vector registers if `vector` (`_code_listed`), else a sparse block lists
    each piece's nonzeros first (branch-free) and codes only them, a dense one codes every
    coordinate (a zero's table entry is empty). A bucket completed here gets its section
    length in sec_bits and resets `last`. Returns (acc, nacc, wi, last, opened, status):
    status 0, OVERFLOW if words could overflow (nothing written), or DECLINED if the vector
    step declined a call (the rest then meaningless)."""
    a = start
    while a < start + m:
        b = a // d
        e = min((b + 1) * d, start + m)
        if wi + 3 * (e - a) + 1 > words.size:
            return acc, nacc, wi, last, opened, OVERFLOW  # (a triple stores <= 3 words, the end 1)
        if vector:
            acc, nacc, wi, last, declined = _code_listed(keys, base, a, e, last, todo, listed,
                                                         words, wi, acc, nacc, kfields)
            if declined:
                return acc, nacc, wi, last, opened, DECLINED
        elif sparse:
            count = 0
            for k in range(a, e):
                todo[np.uint64(count)] = k - a
                count += keys[np.uint64(k - base)] != 0
            acc, nacc, wi, last = _code(keys, base, todo, count, a, last, ftab, lb, lcol,
                                        words, wi, acc, nacc, gtab, ltab)
        else:
            acc, nacc, wi, last = _code(keys, base, None, e - a, a, last, ftab, lb, lcol,
                                        words, wi, acc, nacc, gtab, ltab)
        if e == (b + 1) * d or e == n:  # the bucket is complete
            sec_bits[b] = 32 * wi + nacc - opened
            opened = 32 * wi + nacc
            last = e - 1
        a = e
    return acc, nacc, wi, last, opened, 0


@jit.inline
def _nonzeros(keys, m):
    """How many of keys[:m] are nonzero."""
    count = 0
    for i in range(m):
        count += np.int64(keys[i] != 0)
    return count


@jit.inline
def _flush(words, wi, acc, nacc):
    """Store the < 32 pending bits, zero-padded; returns the stream's length in bits."""
    if nacc:
        words[wi] = np.uint32(_bswap32((acc << np.uint64(32 - nacc)) & _M32))
    return 32 * wi + nacc


@jit.kernel
def encode_rows(x, scales, norm, seed, off, d, kind, s, b0, b1, ftab, lb, lcap, gtab, ltab,
                kfields, words, sec_bits, vector):
    """Scale and round buckets [b0, b1) of the flat gradient x (float32 [n]; the last bucket
    may be cut short) as `norm_kernels` (`norm`: L2 or LINF; bucket b's scale to scales[b],
    float32) and `round_kernels.quantize_rows` do (coordinate i with draw off + i of the
    stream `seed`), and write their elias code sections into words (uint32, whose bytes are
    the stream from bit 0, MSB first; the range's largest possible section bits / 32 +
    3·BLOCK + 1 words or more), sec_bits[b] (int64) receiving each section's length in bits.
    Tables as in `elias.py`'s `_enc_tables` (kfields: `elias_vectors.key_fields()` for
    grids of <= 16 points, else None); the rounding yields levels inside the grid.

    With `vector` (only where `elias_vectors.FAST`) the nonzeros are coded in vector
    registers; else a block with more zeros than nonzeros lists its nonzeros first
    (branch-free) and codes only them, and in a denser one every coordinate is coded (no
    list: faster there). The same bits either way. Returns the range's bits (its last word
    zero-padded), -ERR_SCALE at the first bucket whose scale is not finite (nothing rounded
    from it), OVERFLOW if words is too small (an internal error: callers size it by the
    largest section), or DECLINED if the vector step declined a code (callers then run the
    range again without it)."""
    n = min(x.size, b1 * d)
    first = b0 * d
    u, pairs = draw_scratch()
    keys = np.empty(BLOCK, np.uint32)  # the block's keys 2·level + sign
    todo = np.empty(BLOCK + 16, np.int32)  # positions of the nonzeros to code, from a piece's
    listed = np.empty(BLOCK + 16, np.int32)  # start; their keys (the vector step's)
    lb, lcol = np.uint64(lb), np.uint64(2 * lcap)
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
        round_from(x, scales, seed, d, kind, s, start, m, off, u, pairs, keys, None)
        sparse = not vector and 2 * _nonzeros(keys, m) < m
        acc, nacc, wi, last, opened, status = _code_block(
            keys, start, start, m, n, d, sparse, vector, todo, listed, ftab, lb, lcol, gtab,
            ltab, kfields, words, sec_bits, acc, nacc, wi, last, opened)
        if status:
            return status
    return _flush(words, wi, acc, nacc)


@jit.kernel
def code_rows(keys, d, b0, b1, ftab, lb, lcap, gtab, ltab, kfields, words, sec_bits, vector):
    """`encode_rows` from the keys 2·level + sign of the n coordinates (`level_keys`, inside
    the grid; the last bucket may be cut short) instead of a gradient: the code sections of
    buckets [b0, b1) into words, their lengths into sec_bits (`vector` as there). Returns
    the range's bits, OVERFLOW or DECLINED (as there)."""
    n = min(keys.size, b1 * d)
    first = b0 * d
    todo = np.empty(BLOCK + 16, np.int32)
    listed = np.empty(BLOCK + 16, np.int32)
    lb, lcol = np.uint64(lb), np.uint64(2 * lcap)
    acc = np.uint64(0)
    nacc = 0
    wi = 0
    last = first - 1
    opened = 0
    sparse = True
    for start in range(first, n, BLOCK):
        m = min(BLOCK, n - start)
        at = 32 * wi + nacc
        acc, nacc, wi, last, opened, status = _code_block(
            keys, 0, start, m, n, d, sparse, vector, todo, listed, ftab, lb, lcol, gtab, ltab,
            kfields, words, sec_bits, acc, nacc, wi, last, opened)
        if status:
            return status
        # the next block's walk, by this one's density (neighbours are alike; either walk is
        # exact): a nonzero costs >= 3 bits, so < 2 bits a coordinate means mostly zeros
        # (counting the nonzeros first would cost a pass over the keys)
        sparse = 32 * wi + nacc - at < 2 * m
    return _flush(words, wi, acc, nacc)


@jit.parallel_kernel
def encode_ranges(x, scales, norm, seed, off, d, kind, s, bounds, ftab, lb, lcap, gtab, ltab,
                  kfields, streams, sec_bits, vector, got):
    """`encode_rows` of the bucket ranges [bounds[i], bounds[i + 1]) on numba's threads, one
    a thread (`threads.team_ready`): range i into streams[i] (a tuple), its result into
    got[i] (int64)."""
    for i in jit.prange(bounds.size - 1):
        got[i] = encode_rows(x, scales, norm, seed, off, d, kind, s, bounds[i], bounds[i + 1],
                             ftab, lb, lcap, gtab, ltab, kfields, streams[i], sec_bits, vector)


@jit.parallel_kernel
def code_ranges(keys, d, bounds, ftab, lb, lcap, gtab, ltab, kfields, streams, sec_bits, vector,
                got):
    """`code_rows` of the bucket ranges [bounds[i], bounds[i + 1]) on numba's threads, as
    `encode_ranges`."""
    for i in jit.prange(bounds.size - 1):
        got[i] = code_rows(keys, d, bounds[i], bounds[i + 1], ftab, lb, lcap, gtab, ltab,
                           kfields, streams[i], sec_bits, vector)


@jit.inline
def _bswap64(v):
    """The uint64 v with its bytes reversed (LLVM makes this one bswap)."""
    r = np.uint64(0)
    for k in range(8):
        r = (r << np.uint64(8)) | ((v >> np.uint64(8 * k)) & np.uint64(0xFF))
    return r


def wide_view(dst: np.ndarray, c: int) -> np.ndarray:
    """The whole uint64 words of the uint8 array dst from byte c on: `splice`'s `wide`, a
    view that numpy (and so numba) marks unaligned where it is."""
    return dst[c:c + (dst.size - c) // 8 * 8].view(np.uint64)


@jit.kernel
def splice(src, nbits, dst, bit0, head, wide):
    """Copy the first nbits of the stream src (uint32 words as `encode_rows` stores them: the
    bytes MSB first, zero after nbits) to bits [bit0, bit0 + nbits) of dst (uint8). A first
    byte shared with the bits before bit0 (bit0 not byte-aligned) is not stored: its part
    goes to head[0], for the caller to OR in once every range is spliced. The last byte's
    bits after the stream are zero; no byte past it is touched (another range's). wide:
    `wide_view(dst, (bit0 >> 3) + 1)`, through which a shifted copy stores 8 bytes at a
    time (byte by byte it ran at ~3 bytes a cycle, 5x slower)."""
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
    # 8 bytes at a time: dst word i from stream bytes 8i .. 8i + 8 (big-endian words)
    s64 = src[:src.size // 2 * 2].view(np.uint64)
    whole = min(body // 8, s64.size - 1, wide.size)
    w_up, w_down = u(8 - sh), u(56 + sh)
    for i in range(whole):
        a, b = _bswap64(s64[u(i)]), _bswap64(s64[u(i + 1)])
        wide[u(i)] = _bswap64((a << w_up) | (b >> w_down))
    for j in range(8 * whole, body):
        dst[u(c0 + 1 + j)] = np.uint8(s8[u(j)] << up) | (s8[u(j + 1)] >> down)
    for j in range(body, count):  # the last byte, if only stream byte j reaches it
        dst[u(c0 + 1 + j)] = np.uint8(s8[u(j)] << up)

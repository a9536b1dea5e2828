"""Compiled (numba) kernels of the `entropy` wire format: rANS encoder and decoder (the keys
and their histogram come from `level_keys.py`).

They walk the same interleaved-rANS stream as the vectorised code of `entropy.py` (whose
docstring is the format's spec) in compiled loops and produce exactly its bytes: within a
chunk of n coordinates, coordinate i in lane i mod K, step t = i // K, 32-bit states in
[L, 2^32), 16-bit words. Units: n, K and positions count coordinates; word counts and word
buffers count 16-bit words.

Keys. The kernels index their tables by key = 2·idx + neg (level index, sign bit), which
`entropy.py` maps to the symbol 2·idx - (idx > 0) + neg of `entropy.symbols` (key - (key >= 2)):
no symbol arithmetic per coordinate. Keys lie in [0, 2G) for a grid of G points: uint8 arrays
up to G = 128, uint16 beyond.

Word order. The encoder runs the steps t = T-1 .. 0 backwards; the stream holds step 0's words
first, and within a step the words of the lanes that renormalise, in ascending lane order. Per
step the encoder collects its words in lane order, then stores them just before the previous
step's: a word buffer is filled from its end, step 0's words last.

Division. The encoder's x // f (x < f·2^(32-SB) after renormalisation, so x / f < 2^17;
1 <= f <= 2^15) is computed as trunc(x · fl(1/f) + 2^-20) in float64: the product is within
2^-33 of x / f, whose fractional part is 0 or at least 1/f >= 2^-15, so adding 2^-20 and
truncating gives floor(x / f) exactly (checked exhaustively: every f, and for every multiple
m·f < min(f·2^17, 2^32) both m·f and m·f + f - 1, the ends of the run with quotient m).

Safety. numba does not check bounds. The encoder's inputs are validated first (`level_keys`
rejects levels outside the grid; rounding makes none); the decoder checks the word count of every step before reading
its words, and every loop is bounded by n, K, the number of steps or the table sizes. Errors are
returned as codes; `entropy.py` raises the vectorised path's ValueErrors. Unsigned indices
(`U`) spare numba's negative-index wraparound code in the hot loops.
"""

from __future__ import annotations

import numpy as np

from . import jit

SB = 15  # log2 of the frequency total M
M = 1 << SB
L = 1 << 16  # lower bound of a state
TOP_SHIFT = 32 - SB  # renormalise while x >= f << TOP_SHIFT
ROUND_UP = 2.0 ** -20  # see "Division" above

DECODE_RAN_OUT = 1  # a step needs more words than the stream has left

U = np.uint64


@jit.kernel
def encode(keys, ftab, ctab, x, words, limit):
    """rANS-encode one chunk, the n = len(keys) coordinates in K = len(x) lanes; returns the
    word count, or -1 as soon as it exceeds `limit`.

    keys: `level_keys` keys, every one valid. ftab, ctab: int64 [2G], by key: the frequency f
    (summing to M over symbols, >= 1 for every key present) and the cumulative frequency of
    the key's symbol. x: int64 [K], receives the lanes' final states. words: uint16, at least
    min(count, limit) long; step t's words (byte-swapped: their bytes are the big-endian
    stream), in lane order, land just before step t + 1's, so that the words fill the tail
    words[len - count:].
    """
    nkeys = ftab.size
    top = np.empty(nkeys, np.int64)  # renormalise while x >= f << TOP_SHIFT
    inv = np.empty(nkeys, np.float64)  # fl(1/f); 0 for absent keys (never used)
    for key in range(nkeys):
        f = ftab[U(key)]
        top[U(key)] = f << TOP_SHIFT
        inv[U(key)] = 1.0 / f if f > 0 else 0.0
    n, k = keys.size, x.size
    state = np.full(k, L, np.uint32)  # (32-bit: cache-friendly)
    chunk = np.empty(k, np.uint16)  # one step's words, in lane order
    steps = (n + k - 1) // k
    pos = words.size  # step t + 1's chunk starts here
    total = 0
    for t in range(steps - 1, -1, -1):
        lo = t * k
        got = 0
        for j in range(min(k, n - lo)):
            i = U(lo + j)
            key = U(keys[i])
            xs = np.int64(state[U(j)])
            # renormalise (at most once: x < 2^32 and f << TOP_SHIFT >= 2^17), branch-free:
            # the low word is always stored, and kept if the count moves past it
            need = np.int64(xs >= top[key])
            chunk[U(got)] = ((xs & 0xFF) << 8) | ((xs >> 8) & 0xFF)  # big-endian bytes
            got += need
            xs >>= need << 4
            quo = np.int64(xs * inv[key] + ROUND_UP)  # = xs // f, see the module docstring
            state[U(j)] = (quo << SB) + (xs - quo * ftab[key]) + ctab[key]
        total += got
        if total > limit:
            return -1
        pos -= got
        for r in range(got):
            words[U(pos + r)] = chunk[U(r)]
    for j in range(k):
        x[U(j)] = state[U(j)]
    return total


@jit.kernel
def decode(words, tab, values, x, coeff, scales, first, d):
    """rANS-decode one chunk of len(coeff) coordinates into coeff, each times its bucket's
    scale; returns the words consumed, or -DECODE_RAN_OUT. (A zero scale would hide a nonzero
    level: callers check those buckets.)

    words: uint16, the chunk's stream read natively (byte-swapped: it is big-endian). tab: uint32 [M], slot -> f | (slot - cum) << 16 of the slot's symbol (freq
    summing to M). values: float32 [M], slot -> the symbol's signed level. x: uint32 [K]
    states (initially the payload's, >= L), updated. scales: float32 [B]; the chunk's coordinate i is the gradient's
    first + i, in bucket (first + i) // d. The caller checks the end: all words consumed,
    every state back at L.
    """
    n, nwords = coeff.size, words.size
    k = x.size
    lanes = np.empty(k, np.int64)  # the lanes of a step that take a word
    ptr = 0
    for t in range((n + k - 1) // k):
        lo = t * k
        width = min(n - lo, k)
        need = 0  # lanes of this step that take a word
        j = 0
        while j < width:  # the step's coordinates, a bucket's piece at a time
            b = (first + lo + j) // d
            end = min(width, (b + 1) * d - first - lo)
            scale = scales[U(b)]
            for i in range(j, end):
                xs = x[U(i)]
                slot = xs & (M - 1)
                e = tab[U(slot)]
                v = values[U(slot)]
                coeff[U(lo + i)] = v * scale
                xs = (e & 0xFFFF) * (xs >> SB) + (e >> 16)
                x[U(i)] = xs
                lanes[U(need)] = i  # kept if the count moves past it (need <= i < K)
                need += np.int64(xs < L)
            j = end
        if need > nwords - ptr:
            return -DECODE_RAN_OUT
        for r in range(need):  # in lane order, as the encoder emitted them
            j = U(lanes[U(r)])
            w = np.uint32(words[U(ptr + r)])
            x[j] = (x[j] << 16) | ((w & 0xFF) << 8) | (w >> 8)
        ptr += need
    return ptr


@jit.kernel
def slot_tables(freq, signed, tab, values):
    """The decoder's tables of a frequency table freq (int64 [A], summing to M): tab[slot] =
    f | (slot - cum) << 16 and values[slot] = signed[symbol] (float32), for the symbol whose
    slots [cum, cum + f) hold slot."""
    slot = 0
    for a in range(freq.size):
        f = freq[U(a)]
        for r in range(f):
            tab[U(slot)] = np.uint32(f | (r << 16))
            values[U(slot)] = signed[U(a)]
            slot += 1

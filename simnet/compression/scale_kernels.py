"""Compiled (numba) kernels of `scale_coding.py`'s Rice-coded bucket scales: the same bytes and
the same verdicts as its vectorised numpy code (the fallback and the tests' oracle), without
its few dozen small numpy passes (~0.25 ms to code, ~0.13 ms to decode 2000 scales).

z: zigzagged residuals (int64, < 2^33); k: the Rice parameter; bits MSB first.
"""

from __future__ import annotations

import numpy as np

from . import jit

U = np.uint64

ERR_PADDING = 1  # nonzero bits after the remainders
ERR_FEW = 2  # fewer zero bits (quotient ends) than scales in the unary part
ERR_TRAILING = 3  # bytes or one-bits after the last quotient
ERR_RANGE = 4  # a quotient too large for z < 2^33


@jit.kernel
def best_k(z, max_k):
    """(bits, k) of the cheapest Rice parameter in [0, max_k] for z, ties to the smaller k:
    the first k whose cost step B - Σ((z >> k) - (z >> (k + 1))) is >= 0 (the cost is
    convex; `scale_coding._best_k`)."""
    lo, hi = 0, max_k
    while lo < hi:
        mid = (lo + hi) // 2
        step = z.size
        for i in range(z.size):
            step -= (z[i] >> mid) - (z[i] >> (mid + 1))
        if step >= 0:
            hi = mid
        else:
            lo = mid + 1
    total = z.size * (lo + 1)
    for i in range(z.size):
        total += z[i] >> lo
    return total, lo


@jit.inline
def _put(out, c, acc, nacc, value, width):
    """Append a field of width <= 33 bits (nacc < 8 pending in acc); store complete bytes.
    Returns (c, acc, nacc)."""
    acc = (acc << U(width)) | U(value)
    nacc += width
    while nacc >= 8:
        nacc -= 8
        out[c] = np.uint8((acc >> U(nacc)) & U(255))
        c += 1
    return c, acc, nacc


@jit.kernel
def write(z, k, out):
    """The remainders (k bits each, then zero padding to a byte) and the unary quotients (q
    one-bits and a zero each, zero-padded) of z into out, which holds exactly
    ceil(B·k / 8) + ceil((Σ q + B) / 8) bytes."""
    c, acc, nacc = 0, U(0), 0
    mask = (np.int64(1) << k) - 1
    for i in range(z.size):  # remainders
        c, acc, nacc = _put(out, c, acc, nacc, z[i] & mask, k)
    if nacc:
        c, acc, nacc = _put(out, c, acc, nacc, 0, 8 - nacc)
    for i in range(z.size):  # quotients: q ones, then a zero
        q = z[i] >> k
        while q > 32:
            c, acc, nacc = _put(out, c, acc, nacc, 0xFFFFFFFF, 32)
            q -= 32
        c, acc, nacc = _put(out, c, acc, nacc, ((np.int64(1) << q) - 1) << 1, q + 1)
    if nacc:
        _put(out, c, acc, nacc, 0, 8 - nacc)


@jit.kernel
def read(buf, rem_at, unary_at, unary_len, count, k, z):
    """z[:count] from the remainders at byte rem_at and the unary quotients at byte unary_at
    (unary_len bytes) of buf, with `scale_coding.decode`'s checks in its order. Returns (0,
    count), or (ERR_*, zeros found) for the first failed check."""
    pos = rem_at * 8
    for i in range(count):  # remainders
        r = 0
        for _ in range(k):
            r = (r << 1) | ((buf[pos >> 3] >> (7 - (pos & 7))) & 1)
            pos += 1
        z[i] = r
    for p in range(pos, unary_at * 8):  # the remainders' padding
        if (buf[p >> 3] >> (7 - (p & 7))) & 1:
            return ERR_PADDING, 0
    pos, end, found = unary_at * 8, (unary_at + unary_len) * 8, 0
    limit = np.int64(1) << (33 - k)
    bad_range = False
    while found < count and pos < end:
        q = 0
        while pos < end and (buf[pos >> 3] >> (7 - (pos & 7))) & 1:
            q += 1
            pos += 1
        if pos == end:
            break
        pos += 1  # the zero ending it
        bad_range |= q >= limit
        z[found] = (np.int64(q) << k) | z[found]
        found += 1
    if found < count:
        return ERR_FEW, found
    if (pos + 7) >> 3 != unary_at + unary_len:
        return ERR_TRAILING, found
    for p in range(pos, end):
        if (buf[p >> 3] >> (7 - (p & 7))) & 1:
            return ERR_TRAILING, found
    if bad_range:
        return ERR_RANGE, found
    return 0, found

"""Compiled (numba) kernels of `scale_coding.py`'s Rice-coded bucket scales: the same bytes and
the same verdicts as its vectorised numpy code (the fallback and the tests' oracle), without
its few dozen small numpy passes (~0.25 ms to code, ~0.13 ms to decode 2000 scales; the
kernels take ~0.025 ms each).

u: the scales' bit patterns (uint32 [B]); z: zigzagged residuals (int64, < 2^33), which the
encoder computes from u as it goes (`_z`); k: the Rice parameter; bits MSB first.
"""

from __future__ import annotations

import numpy as np

from . import jit

U = np.uint64

ERR_PADDING = 1  # nonzero bits after the remainders
ERR_FEW = 2  # fewer zero bits (quotient ends) than scales in the unary part
ERR_TRAILING = 3  # bytes or one-bits after the last quotient
ERR_RANGE = 4  # a quotient too large for z < 2^33
# `patterns`' verdicts, in the order the checks apply (the vectorised path's order)
PATTERN_OUTSIDE = 1  # a pattern outside [0, 2^32)
PATTERN_NOT_FINITE = 2  # a NaN or Inf scale (exponent bits all ones)
PATTERN_NEGATIVE = 3  # a scale below zero (sign bit set, not -0.0)


@jit.inline
def _z(u, i, mode, ref):
    """The zigzagged residual z_i of pattern i (u: uint32 patterns): against the previous
    pattern (mode 0; 0 before the first) or the reference (mode 1)."""
    base = ref if mode == 1 else (np.int64(u[i - 1]) if i > 0 else np.int64(0))
    r = np.int64(u[i]) - base
    return 2 * r if r >= 0 else -2 * r - 1


@jit.inline
def _best_k(u, mode, ref, max_k):
    """(bits, k) of the cheapest Rice parameter in [0, max_k] for the residuals of `mode`,
    ties to the smaller k: the first k whose cost step B - Σ((z >> k) - (z >> (k + 1))) is
    >= 0 (the cost is convex; `scale_coding._best_k`)."""
    lo, hi = 0, max_k
    while lo < hi:
        mid = (lo + hi) // 2
        step = u.size
        for i in range(u.size):
            z = _z(u, i, mode, ref)
            step -= (z >> mid) - (z >> (mid + 1))
        if step >= 0:
            hi = mid
        else:
            lo = mid + 1
    total = u.size * (lo + 1)
    for i in range(u.size):
        total += _z(u, i, mode, ref) >> lo
    return total, lo


@jit.kernel
def choose(u, ref, max_k):
    """(mode, k) of the fewest bits for the patterns u (uint32 [B]; ref: their lower median,
    when B > 0): mode 1 pays its 32-bit reference, and ties go to mode 0 (then the smaller k),
    as `scale_coding.encode`'s min over its candidates."""
    bits0, k0 = _best_k(u, 0, 0, max_k)
    if u.size == 0:
        return 0, k0
    bits1, k1 = _best_k(u, 1, ref, max_k)
    return (1, k1) if bits1 + 32 < bits0 else (0, k0)


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
def write(u, mode, ref, k, out):
    """The remainders (k bits each, then zero padding to a byte) and the unary quotients (q
    one-bits and a zero each, zero-padded) of the residuals of `mode` (`_z`) into out (large
    enough: 5·B + 1 bytes hold any). Returns (remainder bytes, unary bytes)."""
    c, acc, nacc = 0, U(0), 0
    mask = (np.int64(1) << k) - 1
    for i in range(u.size):  # remainders
        c, acc, nacc = _put(out, c, acc, nacc, _z(u, i, mode, ref) & mask, k)
    if nacc:
        c, acc, nacc = _put(out, c, acc, nacc, 0, 8 - nacc)
    rem_len = c
    for i in range(u.size):  # quotients: q ones, then a zero
        q = _z(u, i, mode, ref) >> k
        while q > 32:
            c, acc, nacc = _put(out, c, acc, nacc, 0xFFFFFFFF, 32)
            q -= 32
        c, acc, nacc = _put(out, c, acc, nacc, ((np.int64(1) << q) - 1) << 1, q + 1)
    if nacc:
        c, acc, nacc = _put(out, c, acc, nacc, 0, 8 - nacc)
    return rem_len, c - rem_len


@jit.kernel
def read(buf, rem_at, unary_at, unary_len, count, k, z):
    """z[:count] from the remainders at byte rem_at and the unary quotients at byte unary_at
    (unary_len bytes) of buf, with `scale_coding.decode`'s checks in its order. Returns (0,
    count), or (ERR_*, zeros found) for the first failed check."""
    pos = rem_at * 8
    mask = (np.int64(1) << k) - 1
    for i in range(count):  # remainders: the <= 5 bytes holding bits [pos, pos + k), all
        acc = np.int64(0)   # before unary_at (the caller checked the block holds them)
        for c in range(pos >> 3, (pos + k + 7) >> 3):
            acc = (acc << 8) | np.int64(buf[c])
        z[i] = (acc >> (-(pos + k) & 7)) & mask  # less the last byte's bits after them
        pos += k
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


@jit.kernel
def patterns(z, mode, ref, out):
    """The scales' bit patterns (out: uint32 [B]) from the zigzagged residuals z of `mode`
    (0: deltas from the previous pattern, 1: from ref), and `wire.check_scales`' checks of
    the float32 scales they are. Returns PATTERN_OUTSIDE as soon as a pattern falls outside
    [0, 2^32), else PATTERN_NOT_FINITE if a scale is NaN or Inf, else PATTERN_NEGATIVE if one
    is below zero (-0.0 is not: its pattern is 2^31), else 0."""
    prev = np.int64(0)
    not_finite = negative = False
    for i in range(z.size):
        r = -(z[i] >> 1) - 1 if z[i] & 1 else z[i] >> 1
        u = prev + r if mode == 0 else ref + r
        if u < 0 or u >= np.int64(1) << 32:
            return PATTERN_OUTSIDE
        out[i] = np.uint32(u)
        not_finite |= (u & 0x7F800000) == 0x7F800000
        negative |= u > np.int64(1) << 31
        prev = u
    return PATTERN_NOT_FINITE if not_finite else PATTERN_NEGATIVE if negative else 0

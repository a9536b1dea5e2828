"""Lossless coding of the B float32 bucket scales for the `entropy` format.

Raw float32 scales cost 32 bits a bucket: 0.0625 bits a coordinate at d = 512, 6% of what
4-bit QSGD's symbols carry. Scales of neighbouring buckets are close, so their IEEE-754 bit
patterns u_b (read as uint32, which orders non-negative floats) are close too; we send each
as a small residual, Rice-coded (Golomb with a power-of-two divisor 2^k). On Gaussian buckets
of 512 this is ~21 bits a scale; it is never more than ~34.

Residual: mode 0 (suits a real gradient, whose layers' scales differ by orders of magnitude)
    r_b = u_b - u_{b-1}, u_{-1} = 0;
mode 1 (suits i.i.d. buckets, where the spread about the middle is sqrt(2) smaller)
    r_b = u_b - ref, ref = the median u.
z_b = 2r_b if r_b >= 0 else -2r_b - 1 (zigzag, z < 2^33); quotient q_b = z_b >> k, remainder
the low k bits. The encoder takes the mode, then the k in [0, 32], that give the fewest bits.

Layout (big-endian), R = ceil(B·k / 8), U the unary bytes:
    [mode u8][k u8][ref u32 (mode 1 only)][U u32][B remainders of k bits, MSB first: R bytes]
    [for each b, q_b one-bits then a zero-bit; zero-padded to a byte: U bytes]
The decoder rejects an unknown mode, k > 32, lengths past the payload, a unary part longer
than 34 bits a scale (no encoder writes one) or with fewer than B zeros, a byte past the
B-th zero or a one-bit after it, and quotients too large for z < 2^33, then patterns outside
uint32 and scales that are NaN, Inf or negative.

Two implementations, the same bytes and the same ValueErrors: compiled kernels
(`scale_kernels.py`, when `jit.enabled()`) and the vectorised numpy code below.
"""

from __future__ import annotations

import numpy as np

from . import jit, scale_kernels
from .wire import SCALE_NEGATIVE, SCALE_NOT_FINITE, check_scales

__all__ = ["encode", "decode"]

MAX_K = 32
_Z_BITS = 33  # |r| <= 2^32 - 1, so z < 2^33
# bits of a block's chosen (mode, k) <= its bits at k = 32 = B·33 + Σ (z >> 32) <= 34·B, so
# its unary part (those bits less B·k) never exceeds 34 bits a scale
_MAX_BITS = _Z_BITS + 1


def _zigzag(r: np.ndarray) -> np.ndarray:
    return np.where(r >= 0, 2 * r, -2 * r - 1)


def _best_k(z: np.ndarray) -> tuple[int, int]:
    """(bits, k) of the cheapest Rice parameter for z; ties to the smaller k.

    bits(k) = B·(k + 1) + Σ (z >> k) is convex in k: its step bits(k + 1) - bits(k) =
    B - Σ ((z >> k) - (z >> k + 1)) never decreases (each term is ceil((z >> k) / 2)). So
    the smallest minimiser is the first k whose step is >= 0, found by bisection (at k = 32
    the step is B - Σ (z >> 32) >= 0, as z < 2^33)."""
    def step(k: int) -> int:
        return z.size - int(((z >> k) - (z >> (k + 1))).sum())

    lo, hi = 0, MAX_K  # step(hi) >= 0; the answer lies in [lo, hi]
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if step(mid) >= 0 else (mid + 1, hi)
    return z.size * (lo + 1) + int((z >> lo).sum()), lo


def _pack_bits(bits: np.ndarray) -> bytes:
    return np.packbits(bits.astype(np.uint8)).tobytes()


def encode(scales: np.ndarray) -> bytes:
    """The coded block of float32 scales [B] (any finite or not: the bit pattern is kept)."""
    u32 = np.ascontiguousarray(scales, np.float32).view(np.uint32)
    ref = int(np.partition(u32, (u32.size - 1) // 2)[(u32.size - 1) // 2]) if u32.size else 0
    if jit.enabled():  # the residuals computed on the fly, in two kernels
        mode, k = scale_kernels.choose(u32, ref, MAX_K)
        out = np.empty(5 * u32.size + 1, np.uint8)
        rem_len, unary_len = scale_kernels.write(u32, mode, ref, k, out)
        return b"".join([bytes([mode, k]), ref.to_bytes(4, "big") if mode else b"",
                         unary_len.to_bytes(4, "big"), out[:rem_len + unary_len].tobytes()])
    u = u32.astype(np.int64)
    candidates = [(0, _zigzag(np.diff(u, prepend=0)), b"")]
    if u.size:  # ref: the lower median
        candidates.append((1, _zigzag(u - ref), ref.to_bytes(4, "big")))
    # fewest bits in all (the reference's 32 included), then mode 0
    _, mode, k, z, ref_bytes = min((bits + 8 * len(r), m, k, z, r) for m, z, r in candidates
                                   for bits, k in [_best_k(z)])
    rem = (z[:, None] >> np.arange(k - 1, -1, -1)) & 1  # [B, k], MSB first
    q = z >> k
    unary = np.ones(int(q.sum()) + z.size, np.uint8)
    unary[np.cumsum(q + 1) - 1] = 0  # the zero that ends each quotient
    unary_bytes = _pack_bits(unary)
    return b"".join([bytes([mode, k]), ref_bytes, len(unary_bytes).to_bytes(4, "big"),
                     _pack_bits(rem.reshape(-1)), unary_bytes])


def _take(payload: bytes, off: int, nbytes: int, what: str) -> int:
    """off + nbytes, after checking the payload holds them."""
    if off + nbytes > len(payload):
        raise ValueError(f"truncated entropy payload: {what} need bytes {off}..{off + nbytes}, "
                         f"it has {len(payload)}")
    return off + nbytes


def decode(payload: bytes, off: int, count: int) -> tuple[np.ndarray, int]:
    """(float32 scales [count], offset after the block) from the block at byte off."""
    end = _take(payload, off, 2, "the scales' mode and Rice parameter")
    mode, k = payload[off], payload[off + 1]
    if mode not in (0, 1):
        raise ValueError(f"corrupt entropy payload: unknown scale coding mode {mode}")
    if k > MAX_K:
        raise ValueError(f"corrupt entropy payload: Rice parameter {k} > {MAX_K}")
    ref = 0
    if mode == 1:
        ref, end = int.from_bytes(payload[end:end + 4], "big"), _take(payload, end, 4, "ref")
    unary_len = int.from_bytes(payload[end:end + 4], "big")
    end = _take(payload, end, 4, "the unary length")
    if unary_len > -(-_MAX_BITS * count // 8):  # (also bounds the bits unpacked below)
        raise ValueError(f"corrupt entropy payload: {unary_len} bytes of scale quotients for "
                         f"{count} scales, more than any encoder writes")
    rem_at = end
    end = _take(payload, end, -(-count * k // 8), f"{count} remainders of {k} bits")
    unary_at = end
    end = _take(payload, end, unary_len, "the unary quotients")

    if jit.enabled():
        z = _read_compiled(payload, rem_at, unary_at, unary_len, count, k)
        u = np.empty(count, np.uint32)
        verdict = scale_kernels.patterns(z, mode, ref, u)  # with check_scales' checks
        if verdict:
            raise ValueError(_PATTERN_ERRORS[verdict])
        return u.view(np.float32), end
    z = _read_numpy(payload, rem_at, unary_at, unary_len, count, k)
    r = np.where(z & 1, -(z >> 1) - 1, z >> 1)
    u = np.cumsum(r) if mode == 0 else ref + r
    if ((u < 0) | (u >= 1 << 32)).any():
        raise ValueError(_OUTSIDE)
    return check_scales(u.astype(np.uint32).view(np.float32)), end


_PADDING = "corrupt entropy payload: nonzero padding after the scales' remainders"
_TRAILING = "corrupt entropy payload: bytes or bits after the scales' quotients"
_RANGE = "corrupt entropy payload: a scale residual is out of range"
_OUTSIDE = "corrupt entropy payload: a scale's bit pattern is outside 32 bits"
_PATTERN_ERRORS = {scale_kernels.PATTERN_OUTSIDE: _OUTSIDE,
                   scale_kernels.PATTERN_NOT_FINITE: SCALE_NOT_FINITE,
                   scale_kernels.PATTERN_NEGATIVE: SCALE_NEGATIVE}


def _read_compiled(payload: bytes, rem_at: int, unary_at: int, unary_len: int, count: int,
                   k: int) -> np.ndarray:
    """z [count] by `scale_kernels.read`; ValueError as `_read_numpy`."""
    z = np.empty(count, np.int64)
    err, found = scale_kernels.read(np.frombuffer(payload, np.uint8), rem_at, unary_at,
                                    unary_len, count, k, z)
    if err == scale_kernels.ERR_FEW:
        raise ValueError(f"corrupt entropy payload: {found} scale quotients, not {count}")
    if err:
        raise ValueError({scale_kernels.ERR_PADDING: _PADDING, scale_kernels.ERR_TRAILING:
                          _TRAILING, scale_kernels.ERR_RANGE: _RANGE}[err])
    return z


def _read_numpy(payload: bytes, rem_at: int, unary_at: int, unary_len: int, count: int,
                k: int) -> np.ndarray:
    """The zigzagged residuals z [count] from the remainders and unary quotients, checked."""
    rem_bits = np.unpackbits(np.frombuffer(payload, np.uint8, unary_at - rem_at, rem_at))
    weights = np.left_shift(np.int64(1), np.arange(k - 1, -1, -1, dtype=np.int64))
    rem = rem_bits[: count * k].reshape(count, k).astype(np.int64) @ weights
    if rem_bits[count * k:].any():
        raise ValueError(_PADDING)
    unary = np.unpackbits(np.frombuffer(payload, np.uint8, unary_len, unary_at))
    zeros = np.flatnonzero(unary == 0)[:count]
    if zeros.size < count:
        raise ValueError(f"corrupt entropy payload: {zeros.size} scale quotients, not {count}")
    used = int(zeros[-1]) + 1 if count else 0
    if -(-used // 8) != unary_len or unary[used:].any():
        raise ValueError(_TRAILING)
    q = np.diff(zeros, prepend=-1) - 1
    if (q >= 1 << (_Z_BITS - k)).any():
        raise ValueError(_RANGE)
    return (q << k) | rem

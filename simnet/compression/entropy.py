"""`entropy` wire format: the (sign, level) symbols under interleaved rANS, table in the payload.

Symbols: 0 for level 0, 2j - 1 for +level j, 2j for -level j: an alphabet of A = 2G - 1 for
a grid of G points (G <= 2048). One static model per payload: symbol counts quantized to
frequencies summing to M = 2^15 (every present symbol >= 1).

rANS (Duda 2013) with 32-bit states in [L, 2^32), L = 2^16, 16-bit renormalisation.
Coordinate i goes to lane i mod K, K = ceil(n / 2048) lanes, so a vectorised coder takes
<= 2048 steps whatever n is; lanes share one word stream, read in lane order each step.

Layout, with H the header of `wire.py` and B = ceil(n/d) buckets:
    [header H][B × float32 scale, big-endian][A × uint16 frequency, big-endian]
    [K × uint32 final encoder state, big-endian][N × uint16 word, big-endian]
    len = H + 4B + 2A + 4K + 2N bytes.
The decoder checks the table (sums to M), every state, and that decoding consumes exactly the
N words and returns every lane to the encoder's initial state L: a strong integrity check.
"""

from __future__ import annotations


import numpy as np
import torch

from .quantize import Grid
from .wire import Quantized, header, header_nbytes, read_scales, scales_bytes

__all__ = ["encode", "decode", "supports", "check_supported", "lanes_for"]

SB = 15
M = 1 << SB
L = 1 << 16
MAX_POINTS = 2048
STEPS = 2048


def supports(grid: Grid) -> bool:
    return grid.size <= MAX_POINTS


def check_supported(grid: Grid, name: str) -> None:
    if not supports(grid):
        raise ValueError(f"{name}: encoding='entropy' supports grids of <= {MAX_POINTS} points, "
                         f"this one has {grid.size}")


def lanes_for(n: int) -> int:
    return max(1, -(-n // STEPS))


def symbols(q: Quantized) -> np.ndarray:
    idx = q.idx.reshape(-1)[: q.numel].to(torch.int16)  # A <= 4095 fits int16
    nz = (idx > 0).to(torch.int16)
    sym = (idx << 1).sub_(nz).add_(q.neg.reshape(-1)[: q.numel])  # 2j - 1 + neg, or 0
    return sym.cpu().numpy()


def frequencies(sym: np.ndarray, alphabet: int) -> np.ndarray:
    """Counts -> frequencies summing to M; each present symbol >= 1; remainder to the mode."""
    counts = np.bincount(sym, minlength=alphabet)
    present = counts > 0
    f = np.zeros(alphabet, np.int64)
    f[present] = 1 + counts[present] * (M - present.sum()) // sym.size
    f[np.argmax(counts)] += M - f.sum()
    return f


def encode(q: Quantized, grid: Grid, d: int, max_bytes: int | None = None) -> bytes | None:
    """The payload; with `max_bytes`, None as soon as it is clear it would be longer."""
    check_supported(grid, "entropy")
    sym = symbols(q)
    a, n = 2 * grid.size - 1, sym.size
    freq = frequencies(sym, a)
    cum = np.cumsum(freq) - freq
    k = lanes_for(n)
    fixed_part = header_nbytes(n) + 4 * q.scales.numel() + 2 * a + 4 * k
    if max_bytes is not None:  # skip the coder if even a lower bound is too long:
        # words carry the model's code length minus what the K final states hold (<= 16 bits)
        ideal = float((np.bincount(sym, minlength=a) * np.log2(M / np.maximum(freq, 1))).sum())
        if fixed_part + (0.99 * ideal - 16 * k - 64) / 8 > max_bytes:
            return None
    f_all, c_all = freq[sym], cum[sym]
    top = f_all << (32 - SB)  # renormalise while x >= f·2^(32-SB), keeping x < 2^32 after
    x = np.full(k, L, np.int64)
    chunks = []
    for t in range(-(-n // k) - 1, -1, -1):  # encode backwards; the decoder reads forwards
        lo, hi = t * k, min(n, t * k + k)
        xa = x[: hi - lo]
        need = xa >= top[lo:hi]
        chunks.append(xa[need] & 0xFFFF)
        xa = np.where(need, xa >> 16, xa)
        quo, rem = np.divmod(xa, f_all[lo:hi])
        x[: hi - lo] = (quo << SB) + rem + c_all[lo:hi]
    words = np.concatenate(chunks[::-1]) if chunks else np.zeros(0, np.int64)
    if max_bytes is not None and fixed_part + 2 * words.size > max_bytes:
        return None
    return b"".join([header("entropy", n), scales_bytes(q.scales), freq.astype(">u2").tobytes(),
                     x.astype(">u4").tobytes(), words.astype(">u2").tobytes()])


def decode(payload: bytes, numel: int, d: int, grid: Grid):
    """-> (scales float32 [B], signed levels float32 tensor [numel]); ValueError if malformed."""
    scales = read_scales(payload, numel, d)
    check_supported(grid, "entropy")
    a, k = 2 * grid.size - 1, lanes_for(numel)
    off = header_nbytes(numel) + 4 * scales.size
    if len(payload) < off + 2 * a + 4 * k:
        raise ValueError(f"truncated entropy payload: {len(payload)} bytes, its table and states "
                         f"need {off + 2 * a + 4 * k}")
    if (len(payload) - off) % 2:
        raise ValueError("corrupt entropy payload: odd number of bytes in the word stream")
    freq = np.frombuffer(payload, ">u2", count=a, offset=off).astype(np.int64)
    if freq.sum() != M:
        raise ValueError(f"corrupt payload: symbol frequencies sum to {freq.sum()}, not {M}")
    x = np.frombuffer(payload, ">u4", count=k, offset=off + 2 * a).astype(np.int64)
    if (x < L).any():
        raise ValueError("corrupt payload: an rANS state is below its lower bound")
    words = np.frombuffer(payload, ">u2", offset=off + 2 * a + 4 * k).astype(np.int64)
    cum = np.cumsum(freq) - freq
    lut = np.repeat(np.arange(a), freq)
    sym = np.empty(numel, np.int64)
    ptr = 0
    for t in range(-(-numel // k)):
        lo, hi = t * k, min(numel, t * k + k)
        xa = x[: hi - lo]
        slot = xa & (M - 1)
        s = lut[slot]
        xa = freq[s] * (xa >> SB) + slot - cum[s]
        need = np.flatnonzero(xa < L)
        if ptr + need.size > words.size:
            raise ValueError("corrupt or truncated payload: the rANS word stream ran out")
        xa[need] = (xa[need] << 16) | words[ptr: ptr + need.size]
        ptr += need.size
        x[: hi - lo] = xa
        sym[lo:hi] = s
    if ptr != words.size or (x != L).any():
        raise ValueError("corrupt payload: the rANS stream does not decode to its initial state")
    lv = grid.tensor().numpy()
    signed = np.zeros(a, np.float32)
    signed[1::2], signed[2::2] = lv[1:], -lv[1:]
    return scales, torch.from_numpy(signed[sym])

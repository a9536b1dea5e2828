"""`entropy` wire format: the (sign, level) symbols under interleaved rANS, table in the payload.

Symbols: 0 for level 0, 2j - 1 for +level j, 2j for -level j: an alphabet of A = 2G - 1 for
a grid of G points (G <= 2048). One static model per payload: symbol counts quantized to
frequencies summing to M = 2^15 (every present symbol >= 1).

rANS (Duda 2013) with 32-bit states in [L, 2^32), L = 2^16, 16-bit renormalisation.
Coordinate i goes to lane i mod K, K = ceil(n / 8192) lanes, so a vectorised coder takes
<= 8192 steps whatever n is; lanes share one word stream, read in lane order each step.
(Each lane's final state costs 32 bits: 8192 steps keep that under 0.004 bits a coordinate.)

Layout, with H the header of `wire.py` and B = ceil(n/d) buckets:
    [header H][the B scales, Rice-coded by `scale_coding.py`: S bytes]
    [A × uint16 frequency, big-endian][K × uint32 final encoder state, big-endian]
    [N × uint16 word, big-endian]
    len = H + S + 2A + 4K + 2N bytes.
The decoder checks the table (sums to M), every state, and that decoding consumes exactly the
N words and returns every lane to the encoder's initial state L: a strong integrity check.

Two implementations, the same bytes and the same ValueErrors: compiled kernels
(`entropy_kernels.py`, when `jit.enabled()`: the encoder's lane ranges on threads, the decoder
serial with the output's pages faulted in on a second thread) and the vectorised numpy code
below, the fallback and the tests' oracle.
"""

from __future__ import annotations


import numpy as np
import torch

from . import entropy_kernels, jit, scale_coding, threads
from .quantize import Grid
from .wire import Quantized, header, header_nbytes

__all__ = ["encode", "decode", "supports", "check_supported", "lanes_for"]

SB = 15
M = 1 << SB
L = 1 << 16
MAX_POINTS = 2048
STEPS = 8192


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
    return _table(np.bincount(sym, minlength=alphabet), sym.size)


def _table(counts: np.ndarray, total: int) -> np.ndarray:
    """`frequencies` from symbol counts (int64 [A]) summing to total."""
    present = counts > 0
    f = np.zeros(counts.size, np.int64)
    f[present] = 1 + counts[present] * (M - present.sum()) // total
    f[np.argmax(counts)] += M - f.sum()
    return f


def encode(q: Quantized, grid: Grid, d: int, max_bytes: int | None = None) -> bytes | None:
    """The payload; with `max_bytes`, None as soon as it is clear it would be longer."""
    check_supported(grid, "entropy")
    if jit.enabled():
        return _encode_compiled(q, grid, d, max_bytes)
    sym = symbols(q)
    a, n = 2 * grid.size - 1, sym.size
    freq = frequencies(sym, a)
    cum = np.cumsum(freq) - freq
    k = lanes_for(n)
    scale_block = _scale_block(q)
    fixed_part = header_nbytes(n) + len(scale_block) + 2 * a + 4 * k
    if max_bytes is not None and _surely_longer(np.bincount(sym, minlength=a), freq,
                                                fixed_part, k, max_bytes):
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
    return _prefix(n, scale_block, freq, x) + words.astype(">u2").tobytes()


def _scale_block(q: Quantized) -> bytes:
    return scale_coding.encode(q.scales.detach().cpu().numpy())


def _surely_longer(counts: np.ndarray, freq: np.ndarray, fixed_part: int, k: int,
                   max_bytes: int) -> bool:
    """Whether even a lower bound on the payload exceeds max_bytes: the words carry the
    model's code length of the symbols (counts [A]) minus what the K final states hold
    (<= 16 bits each), so the coder can be skipped."""
    ideal = float((counts * np.log2(M / np.maximum(freq, 1))).sum())
    return fixed_part + (0.99 * ideal - 16 * k - 64) / 8 > max_bytes


def _prefix(n: int, scale_block: bytes, freq: np.ndarray, x: np.ndarray) -> bytes:
    """Everything before the word stream: header, scales, frequency table, final states."""
    return b"".join([header("entropy", n), scale_block, freq.astype(">u2").tobytes(),
                     x.astype(">u4").tobytes()])


def _slot_symbols(freq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cum [A]: each symbol's first slot, slot -> symbol [M]) of a frequency table."""
    return np.cumsum(freq) - freq, np.repeat(np.arange(freq.size), freq)


def _symbol_values(grid: Grid) -> np.ndarray:
    """Symbol -> sgn·level (float32 [A]): 0, then +level j, -level j for j = 1, 2, ..."""
    lv = grid.tensor().numpy()
    signed = np.zeros(2 * grid.size - 1, np.float32)
    signed[1::2], signed[2::2] = lv[1:], -lv[1:]
    return signed


# -- compiled path (entropy_kernels.py) -----------------------------------------------------

_PAR_MIN = 1 << 18  # coordinates below which the kernels run on the calling thread only
_THREADS = threads.THREADS
_PHASES = 16  # decoder phases: the output's page faults are taken a phase ahead


def _run(fn, ranges):
    """[fn(lo, hi) for each range], on this thread and the entropy pool."""
    return threads.run_ranges("simnet-entropy", fn, ranges, _THREADS)


def _split(total: int, n: int) -> list[tuple[int, int]]:
    """[0, total) in contiguous ranges, one per thread (one below _PAR_MIN coordinates)."""
    return threads.split(total, 1 if n < _PAR_MIN else _THREADS)


def _key_symbols(points: int) -> np.ndarray:
    """Symbol of each kernel key 2·idx + neg in [0, 2G): key - (key >= 2), as `symbols`."""
    key = np.arange(2 * points)
    return key - (key >= 2)


def _encode_compiled(q: Quantized, grid: Grid, d: int, max_bytes: int | None) -> bytes | None:
    """`encode` with the compiled kernels: the same bytes and the same None decisions."""
    n, a = q.numel, 2 * grid.size - 1
    idx = q.idx.detach().reshape(-1).cpu().numpy()  # uint8 or int32: no symbol temporaries
    neg = q.neg.detach().reshape(-1).cpu().numpy()
    if idx.size < n or neg.size < n:
        raise ValueError(f"entropy: {idx.size} level indices and {neg.size} signs for numel={n}")
    key_sym = _key_symbols(grid.size)

    def hist(lo, hi):
        kc = np.empty(key_sym.size, np.int64)
        bad = entropy_kernels.histogram(idx, neg, lo, hi, kc)
        if bad >= 0:
            raise ValueError(f"entropy: coordinate {bad} has level index {int(idx[bad])} and "
                             f"sign {bool(neg[bad])}, outside the grid of {grid.size} points")
        return kc

    counts = np.zeros(a, np.int64)
    np.add.at(counts, key_sym, sum(_run(hist, _split(n, n))))
    freq = _table(counts, n)
    cum = np.cumsum(freq) - freq
    k = lanes_for(n)
    scale_block = _scale_block(q)
    fixed_part = header_nbytes(n) + len(scale_block) + 2 * a + 4 * k
    limit = n  # words; each coordinate emits at most one
    if max_bytes is not None:  # the vectorised path's lower bound, then a word budget
        if _surely_longer(counts, freq, fixed_part, k, max_bytes):
            return None
        limit = min(limit, (max_bytes - fixed_part) // 2)
        if limit < 0:
            return None
    ftab, ctab = freq[key_sym], cum[key_sym]
    steps = -(-n // k)
    head = -(-fixed_part // 2)  # words before the stream: room for the prefix
    x = np.empty(k, np.int64)
    lanes = _split(k, n)
    if len(lanes) == 1:  # straight into the payload buffer
        buf = np.empty(head + limit, np.uint16)
        nwords = entropy_kernels.encode(idx, neg, n, k, 0, k, ftab, ctab, x, buf,
                                        np.empty(steps, np.int64), limit)
    else:  # lane ranges on threads, each into its own buffer; then interleaved step by step
        def enc(j0, j1):
            part = np.empty(min(limit, (j1 - j0) * steps), np.uint16)
            per_step = np.empty(steps, np.int64)
            got = entropy_kernels.encode(idx, neg, n, k, j0, j1, ftab, ctab, x, part,
                                         per_step, limit)
            return part, per_step, got

        parts = _run(enc, lanes)
        nwords = sum(got for _, _, got in parts)
        if min(got for _, _, got in parts) >= 0 and nwords <= limit:
            per_step = np.stack([c for _, c, _ in parts], axis=1)  # [T, ranges]
            flat = per_step.reshape(-1)
            offsets = (head + np.cumsum(flat) - flat).reshape(per_step.shape)
            buf = np.empty(head + nwords, np.uint16)

            def place(r, _):  # range r's chunks to their places in the stream
                entropy_kernels.scatter(parts[r][0], parts[r][1], buf,
                                        np.ascontiguousarray(offsets[:, r]))

            _run(place, [(r, r + 1) for r in range(len(parts))])
        else:
            nwords = -1
    if nwords < 0:  # fixed_part + 2·words > max_bytes
        return None
    out = buf.view(np.uint8)
    start = out.size - 2 * nwords - fixed_part
    out[start:start + fixed_part] = np.frombuffer(_prefix(n, scale_block, freq, x), np.uint8)
    return out[start:].tobytes()


def _decode_compiled(payload: bytes, numel: int, woff: int, freq: np.ndarray, x: np.ndarray,
                     grid: Grid) -> torch.Tensor:
    """The word stream at byte woff, decoded by the compiled kernel (table and states already
    checked): float32 sgn·level [numel]; ValueError as the vectorised path."""
    cum, sym = _slot_symbols(freq)
    tab = (freq[sym] | ((np.arange(M) - cum[sym]) << 16)).astype(np.uint32)
    coeff = np.empty(numel, np.float32)
    nwords = (len(payload) - woff) // 2
    # native (maybe unaligned) uint16 view, byte-swapped in the kernel
    words = np.frombuffer(payload, np.uint16, count=nwords, offset=woff)
    values, x, lanes = _symbol_values(grid)[sym], x.astype(np.uint32), np.empty(x.size, np.int64)
    k = x.size
    steps = -(-numel // k)
    # the decoder is serial; a second thread faults the fresh output's pages in (the OS
    # zeroing them), one phase of steps ahead of it
    parts = _PHASES if numel >= _PAR_MIN and _THREADS > 1 else 1
    phases = [(steps * i // parts, steps * (i + 1) // parts) for i in range(parts)]
    ptr = 0
    for p, (t0, t1) in enumerate(phases):
        ahead = None
        if p + 1 < len(phases):
            lo, hi = phases[p + 1][0] * k, min(numel, phases[p + 1][1] * k)
            ahead = threads.pool("simnet-entropy", _THREADS - 1).submit(
                entropy_kernels.touch, coeff, lo, hi)
        ptr = entropy_kernels.decode(words, nwords, tab, values, x, coeff, lanes, t0, t1, ptr)
        if ahead is not None:
            ahead.result()
        if ptr < 0:
            raise ValueError("corrupt or truncated payload: the rANS word stream ran out")
    if ptr != nwords or (x != L).any():
        raise ValueError("corrupt payload: the rANS stream does not decode to its initial state")
    return torch.from_numpy(coeff)


def decode(payload: bytes, numel: int, d: int, grid: Grid):
    """-> (scales float32 [B], signed levels float32 tensor [numel]); ValueError if malformed."""
    check_supported(grid, "entropy")
    scales, off = scale_coding.decode(payload, header_nbytes(numel), -(-numel // d))
    a, k = 2 * grid.size - 1, lanes_for(numel)
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
    if jit.enabled():
        return scales, _decode_compiled(payload, numel, off + 2 * a + 4 * k, freq, x, grid)
    words = np.frombuffer(payload, ">u2", offset=off + 2 * a + 4 * k).astype(np.int64)
    cum, lut = _slot_symbols(freq)
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
    return scales, torch.from_numpy(_symbol_values(grid)[sym])

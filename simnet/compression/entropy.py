"""`entropy` wire format: the (sign, level) symbols under interleaved rANS, table in the payload.

Symbols: 0 for level 0, 2j - 1 for +level j, 2j for -level j: an alphabet of a = 2G - 1 for
a grid of G points (G <= 2048). Pair mode (`pairs_for`: an even bucket size d, G <= 8 and
n >= 2^19 coordinates): coordinates 2i and 2i + 1 form one symbol, a·(first's symbol) +
(second's symbol), of an alphabet of A = a² (<= 225); a lone last coordinate (n odd) pairs with
a level 0. Otherwise A = a, a symbol a coordinate. Pairs halve the coder's steps; the table's
2A bytes are what keeps them to large n, its 1-count floor to small grids. One static model a
payload: symbol counts quantized to frequencies summing to M = 2^15 (every present symbol >= 1).

Chunks. The U symbols (U = n, or ceil(n/2) pairs) are cut into Q contiguous chunks, Q the
largest power of two <= min(8, n // 2^17) (at least 1); chunk c holding symbols
[U·c/Q, U·(c+1)/Q): each is coded on its own (the model is shared), so encoders and decoders
run chunks on threads and each writes a contiguous part of the output. Q depends on n alone,
never on the machine.

rANS (Duda 2013) with 32-bit states in [L, 2^32), L = 2^16, 16-bit renormalisation. In a chunk
of m symbols, symbol i (counted from the chunk's start) goes to lane i mod K_c, K_c =
ceil(m / 8192) (pairs: ceil(m / 4096)), so a vectorised coder takes <= 8192 steps whatever m
is; a chunk's lanes share one word stream, read in lane order each step. (Each lane's final
state costs 32 bits: a lane of <= 8192 coordinates keeps that under 0.004 bits a
coordinate.)

Layout, with H the header of `wire.py`, B = ceil(n/d) buckets and K = Σ K_c states:
    [header H][the B scales, Rice-coded by `scale_coding.py`: S bytes]
    [A × uint16 frequency, big-endian][(Q - 1) × uint32 word count of chunks 0..Q-2]
    [K × uint32 final encoder state, chunk by chunk, big-endian]
    [the words of chunk 0, then chunk 1, ...: N × uint16 word, big-endian]
    len = H + S + 2A + 4(Q - 1) + 4K + 2N bytes (the last chunk's count is what is left).
The decoder checks the table (sums to M), every state and count, that decoding each chunk
consumes exactly its words and returns every lane to the encoder's initial state L (a strong
integrity check), and that a lone last coordinate's partner decodes to level 0.

Two implementations, the same bytes and the same ValueErrors: compiled kernels
(`entropy_kernels.py`, when `jit.enabled()`: chunks on threads) and the vectorised numpy code
below, the fallback and the tests' oracle.
"""

from __future__ import annotations

import struct
from functools import lru_cache

import numpy as np
import torch

from . import entropy_kernels, jit, lane_vectors, level_keys, scale_coding, scratch, threads
from .quantize import Grid
from .wire import (Quantized, header, header_nbytes, scale_coefficients,
                   scaled_by_decoder)

__all__ = ["encode", "encode_keys", "decode", "decode_scaled", "supports", "check_supported",
           "lanes_for", "chunks_for", "model_nbytes", "pairs_for", "alphabet",
           "code_symbols"]

SB, M, L = entropy_kernels.SB, entropy_kernels.M, entropy_kernels.L  # the format's constants
MAX_POINTS = 2048
STEPS = 8192
VECTOR_LANES = True  # the compiled coders' vector paths where the host has them (tests switch)


def supports(grid: Grid) -> bool:
    return grid.size <= MAX_POINTS


def check_supported(grid: Grid, name: str) -> None:
    if not supports(grid):
        raise ValueError(f"{name}: encoding='entropy' supports grids of <= {MAX_POINTS} points, "
                         f"this one has {grid.size}")


CHUNK_MIN = 1 << 17  # coordinates per chunk, at least (but one chunk for smaller n)
MAX_CHUNKS = 8
PAIR_MIN = 1 << 19  # coordinates from which small grids code pairs
PAIR_POINTS = 8  # grids of up to this many points code pairs (A <= 225 symbols)


def pairs_for(n: int, d: int, points: int) -> bool:
    """Whether a payload of n coordinates (bucket size d, a grid of `points`) codes pairs."""
    return d % 2 == 0 and points <= PAIR_POINTS and n >= PAIR_MIN


def alphabet(points: int, pairs: bool) -> int:
    """A, the symbols of the model: 2G - 1, or its square for pairs."""
    a = 2 * points - 1
    return a * a if pairs else a


def lanes_for(m: int, pairs: bool = False) -> int:
    """K_c, the lanes of a chunk of m symbols: <= 8192 steps, or for pairs <= 4096 (a lane
    spans <= 8192 coordinates either way; more lanes, more independent work a step)."""
    return max(1, -(-m // (STEPS // 2 if pairs else STEPS)))


def chunks_for(n: int, pairs: bool = False) -> list[tuple[int, int]]:
    """The Q chunks [lo, hi) of the symbols of n coordinates (Q: the power of two <=
    n // 2^17, <= 8), in symbols: coordinates, or pairs of them."""
    q = min(MAX_CHUNKS, n // CHUNK_MIN)
    q = 1 << (q.bit_length() - 1) if q > 1 else 1  # a power of two: even work on 2^j threads
    u = (n + 1) // 2 if pairs else n
    return [(u * c // q, u * (c + 1) // q) for c in range(q)]


def model_nbytes(n: int, points: int, d: int) -> int:
    """Bytes between the scales and the words: frequency table, chunk word counts, states."""
    pairs = pairs_for(n, d, points)
    chunks, lanes = _layout(n, pairs)
    return 2 * alphabet(points, pairs) + 4 * (len(chunks) - 1) + 4 * lanes[-1]


@lru_cache(maxsize=64)
def _layout(n: int, pairs: bool) -> tuple[tuple, tuple]:
    """(the chunks [lo, hi) of `chunks_for`, the first state of each chunk and K after the
    last: the lanes' running total), per payload size (cached: every encode and decode
    needs them)."""
    chunks = tuple(chunks_for(n, pairs))
    lanes = [0]
    for lo, hi in chunks:
        lanes.append(lanes[-1] + lanes_for(hi - lo, pairs))
    return chunks, tuple(lanes)


def symbols(q: Quantized) -> np.ndarray:
    idx = q.idx.reshape(-1)[: q.numel].to(torch.int16)  # A <= 4095 fits int16
    nz = (idx > 0).to(torch.int16)
    neg = q.neg.reshape(-1)[: q.numel].to(torch.int16) & nz  # a zero level has no sign
    sym = (idx << 1).sub_(nz).add_(neg)  # 2j - 1 + neg, or 0
    return sym.cpu().numpy()


def pair_symbols(sym: np.ndarray, a: int) -> np.ndarray:
    """The pair symbols a·sym[2i] + sym[2i + 1] (int64 [ceil(n/2)]); a lone last one pairs
    with 0."""
    if sym.size % 2:
        sym = np.append(sym, 0)
    return sym[0::2].astype(np.int64) * a + sym[1::2]


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
    n, pairs = q.numel, pairs_for(q.numel, d, grid.size)
    sym = symbols(q)
    if pairs:
        sym = pair_symbols(sym, 2 * grid.size - 1)
    a = alphabet(grid.size, pairs)
    freq = frequencies(sym, a)
    cum = np.cumsum(freq) - freq
    scale_block = _scale_block(q.scales)
    fixed_part = header_nbytes(n) + len(scale_block) + model_nbytes(n, grid.size, d)
    if max_bytes is not None and _surely_longer(np.bincount(sym, minlength=a), freq,
                                                fixed_part, _states(n, pairs), max_bytes):
        return None
    coded = [_encode_chunk(sym[lo:hi], freq, cum, pairs) for lo, hi in chunks_for(n, pairs)]
    words = np.concatenate([w for _, w in coded])
    if max_bytes is not None and fixed_part + 2 * words.size > max_bytes:
        return None
    return (_prefix(n, scale_block, freq, np.concatenate([x for x, _ in coded]),
                    [w.size for _, w in coded])
            + words.astype(">u2").tobytes())


def _encode_chunk(sym: np.ndarray, freq: np.ndarray, cum: np.ndarray, pairs: bool):
    """One chunk's symbols -> (final states int64 [K_c], words int64 [N_c], stream order)."""
    f_all, c_all = freq[sym], cum[sym]
    top = f_all << (32 - SB)  # renormalise while x >= f·2^(32-SB), keeping x < 2^32 after
    n, k = sym.size, lanes_for(sym.size, pairs)
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
    return x, np.concatenate(chunks[::-1]) if chunks else np.zeros(0, np.int64)


def _states(n: int, pairs: bool) -> int:
    """K, the final states of all chunks."""
    return _layout(n, pairs)[1][-1]


def _scale_block(scales: torch.Tensor) -> bytes:
    return scale_coding.encode(scales.detach().cpu().numpy())


def _surely_longer(counts: np.ndarray, freq: np.ndarray, fixed_part: int, k: int,
                   max_bytes: int) -> bool:
    """Whether even a lower bound on the payload exceeds max_bytes: the words carry the
    model's code length of the symbols (counts [A]) minus what the K final states hold
    (<= 16 bits each), so the coder can be skipped."""
    ideal = float((counts * np.log2(M / np.maximum(freq, 1))).sum())
    return fixed_part + (0.99 * ideal - 16 * k - 64) / 8 > max_bytes


def _prefix(n: int, scale_block: bytes, freq: np.ndarray, states: np.ndarray,
            counts) -> bytes:
    """Everything before the words: header, scales, frequency table, the word counts of all
    chunks but the last, the chunks' final states (all chunks' in one array)."""
    return b"".join([header("entropy", n), scale_block, freq.astype(">u2").tobytes(),
                     np.array(counts[:-1], ">u4").tobytes(), states.astype(">u4").tobytes()])


def _slot_symbols(freq: np.ndarray, cum_dtype=np.int64,
                  sym_dtype=np.int64) -> tuple[np.ndarray, np.ndarray]:
    """(cum [A]: each symbol's first slot, slot -> symbol [M]) of a frequency table, in these
    dtypes (the compiled decoder's are small)."""
    f = freq.astype(cum_dtype, copy=False)
    return np.cumsum(f) - f, np.repeat(np.arange(freq.size, dtype=sym_dtype), freq)


def _symbol_values(grid: Grid) -> np.ndarray:
    """Symbol -> sgn·level (float32 [2G - 1]): 0, then +level j, -level j for j = 1, 2, ..."""
    lv = grid.tensor().numpy()
    signed = np.zeros(2 * grid.size - 1, np.float32)
    signed[1::2], signed[2::2] = lv[1:], -lv[1:]
    return signed


# -- compiled path (entropy_kernels.py) -----------------------------------------------------

_PAR_MIN = 1 << 18  # coordinates below which the kernels run on the calling thread only
_NO_TABLE = np.zeros(1, np.uint32)  # the vector kernels' table where they do not run
_THREADS = threads.THREADS


def _on_chunks(parallel, serial, head: tuple, results: np.ndarray, n: int) -> None:
    """`threads.run_chunks` of a payload of n coordinates: results[c] = serial(*head, c) for
    each chunk, on numba's threads or on this thread and the entropy pool (on this thread
    only below _PAR_MIN coordinates)."""
    threads.run_chunks("simnet-entropy", parallel, serial, head, results,
                       1 if n < _PAR_MIN else _THREADS)


@lru_cache(maxsize=16)
def code_symbols(points: int, pairs: bool) -> np.ndarray:
    """The symbol of each kernel code (int64, read-only: cached per grid size and mode): a
    key 2·idx + neg in [0, 2G) maps to key - (key >= 2), as `symbols`; a pair's code
    key0 << shift | key1 (`level_keys.code_space`) to a·sym(key0) + sym(key1) (codes with a
    key >= 2G: 0, never met)."""
    key = np.arange(2 * points)
    sym = key - (key >= 2)
    if pairs:
        b, size = level_keys.code_space(points, pairs)
        a = 2 * points - 1
        code = np.arange(size)
        first, second = code >> b, code & ((1 << b) - 1)
        ok = (first < 2 * points) & (second < 2 * points)
        sym = np.where(ok, sym[np.minimum(first, 2 * points - 1)] * a
                       + sym[np.minimum(second, 2 * points - 1)], 0)
    sym.flags.writeable = False
    return sym


def _encode_compiled(q: Quantized, grid: Grid, d: int, max_bytes: int | None) -> bytes | None:
    """`encode` with the compiled kernels: the same bytes and the same None decisions."""
    try:
        keys, counts = level_keys.of_levels(q.idx, q.neg, q.numel, grid.size, counts=True,
                                            pairs=pairs_for(q.numel, d, grid.size))
    except ValueError as e:
        raise ValueError(f"entropy: {e}") from None
    return encode_keys(keys, counts, q.scales, grid, d, max_bytes)


def encode_keys(keys: np.ndarray, code_counts: np.ndarray, scales: torch.Tensor, grid: Grid,
                d: int, max_bytes: int | None) -> bytes | None:
    """The payload of the n keys (`level_keys`: 2·level + sign, valid) whose code counts are
    code_counts (int64, by `code_symbols`' code: `level_keys` counts with
    pairs=`pairs_for(n, d, G)`), with these bucket scales; chunks rANS-coded on threads
    (compiled kernels). None when longer than max_bytes."""
    check_supported(grid, "entropy")
    n, pairs = keys.size, pairs_for(keys.size, d, grid.size)
    a = alphabet(grid.size, pairs)
    scale_block = _scale_block(scales)
    code_sym = code_symbols(grid.size, pairs)
    counts, freq = np.empty(a, np.int64), np.empty(a, np.int64)
    ftab, ctab = np.empty(code_sym.size, np.int64), np.empty(code_sym.size, np.int64)
    entropy_kernels.model(code_counts, code_sym, (n + 1) // 2 if pairs else n, counts, freq,
                          ftab, ctab)  # (`_table`'s frequencies, by symbol and by code)
    fixed_part = header_nbytes(n) + len(scale_block) + model_nbytes(n, grid.size, d)
    chunks, lanes = _layout(n, pairs)
    limit = chunks[-1][1]  # words; each symbol emits at most one
    if max_bytes is not None:  # the vectorised path's lower bound, then a word budget
        if _surely_longer(counts, freq, fixed_part, lanes[-1], max_bytes):
            return None
        limit = min(limit, (max_bytes - fixed_part) // 2)
        if limit < 0:
            return None
    per, shift = 2 if pairs else 1, level_keys.code_space(grid.size, pairs)[0]
    vector = pairs and keys.dtype == np.uint8 and VECTOR_LANES and lane_vectors.FAST
    fc = _lane_table(ftab, ctab) if vector else _NO_TABLE  # vector: 16 lanes a step
    # chunk c's final states and words (a word a symbol at most, and the slot the
    # branch-free store may write without keeping; the words fill its tail), in one
    # buffer each: scratch belongs to the calling thread
    states = np.empty(lanes[-1], np.int64)
    cuts = threads.bounds(chunks)
    wcuts = np.zeros(len(chunks) + 1, np.int64)
    np.cumsum(np.diff(cuts) + 1, out=wcuts[1:])
    words = scratch.array("entropy.words", int(wcuts[-1]), np.uint16)
    # pairs: the lone last coordinate's partner has key 0
    tail = (np.append(keys[per * chunks[-1][0]:], keys.dtype.type(0)) if keys.size % per
            else keys[:0])
    head = (keys, tail, cuts, per, shift, ftab, ctab, fc, vector, states,
            np.array(lanes, np.int64), words, wcuts, limit)
    sizes = np.empty(len(chunks), np.int64)
    _on_chunks(entropy_kernels.encode_chunks, entropy_kernels.encode_chunk, head, sizes, n)
    if sizes.min() < 0 or sizes.sum() > limit:  # fixed_part + 2·words > max_bytes
        return None
    # a chunk's words fill its buffer's tail, already big-endian bytes: joined straight
    # into the payload (one allocation, one copy)
    return b"".join([_prefix(n, scale_block, freq, states, sizes)]
                    + [words[w1 - got:w1] for w1, got in zip(wcuts[1:], sizes)])


def _lane_table(freq: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The vector paths' table (`lane_vectors._lookup256`): uint32 [256], entry i the
    frequency | first slot << 16 of pair code or symbol i (zero past the given ones)."""
    table = np.zeros(256, np.uint32)
    table[:freq.size] = freq | first.astype(np.int64) << 16
    return table


@lru_cache(maxsize=16)
def _kernel_values(grid: Grid, pairs: bool) -> np.ndarray:
    """The decoder kernel's signed levels (float32, read-only: cached) by symbol: its
    coordinate's, or for pairs its two coordinates' side by side ([2A])."""
    signed = _symbol_values(grid)
    if pairs:
        pair = np.arange(signed.size ** 2)
        signed = np.stack([signed[pair // signed.size], signed[pair % signed.size]], 1)
    signed = signed.reshape(-1)
    signed.flags.writeable = False
    return signed


def _decode_compiled(payload: bytes, numel: int, streams, freq: np.ndarray, grid: Grid,
                     scales: np.ndarray, d: int) -> torch.Tensor:
    """Each chunk's words decoded by the compiled kernel (table, counts and states checked;
    streams: `_streams`' (lo, hi, states, word byte offset, word count) per chunk),
    chunks on threads: float32 sgn·level·scale [numel] (scales float32 [B], none zero: ones
    give the levels); ValueError as the vectorised path."""
    pairs = pairs_for(numel, d, grid.size)
    cs, symtab = _slot_symbols(freq, np.uint32, np.uint8 if freq.size <= 256 else np.uint16)
    per = 2 if pairs else 1
    coeff = np.empty(numel + (numel & 1 if pairs else 0), np.float32)  # pairs: even length
    a = 2 * grid.size - 1  # symbols of one coordinate: a pair's symbol is a·first + second
    vector = pairs and d >= 32 and VECTOR_LANES and lane_vectors.FAST
    if vector:  # 16 lanes a step in vector registers: the tables as its kernel reads them
        symtab = np.append(symtab, np.zeros(3, np.uint8))
        fc = _lane_table(freq, cs)  # by symbol (< 225)
        vals = np.zeros(16, np.float32)
        vals[:a] = _symbol_values(grid)
    else:
        fc = np.stack([freq.astype(np.uint32), cs], 1).reshape(-1)  # by symbol: f, first slot
        vals = _kernel_values(grid, pairs)

    chunks, lanes = _layout(numel, pairs)
    nwords = [count for *_, count in streams]
    # every chunk's words in one native (maybe unaligned) uint16 view, byte-swapped in the
    # kernel: their byte offsets differ by whole words
    words = np.frombuffer(payload, np.uint16, count=sum(nwords), offset=streams[0][3])
    wcuts = np.zeros(len(streams) + 1, np.int64)
    np.cumsum(nwords, out=wcuts[1:])
    x = np.concatenate([states for _, _, states, _, _ in streams])  # (decoded in place)
    lasts = np.zeros(len(streams), np.int64)
    head = (words, wcuts, symtab, fc, vals, a, per - 1, vector, x, np.array(lanes, np.int64),
            coeff, threads.bounds(chunks), scales, d, lasts)
    ptrs = np.empty(len(streams), np.int64)
    _on_chunks(entropy_kernels.decode_chunks, entropy_kernels.decode_chunk, head, ptrs, numel)
    for c, (ptr, count) in enumerate(zip(ptrs, nwords)):
        error = _verdict(ptr, count, x[lanes[c]:lanes[c + 1]])
        if error:  # the first chunk's error, as the vectorised path meets it
            raise ValueError(error)
    if pairs and numel % 2 and lasts[-1] % a:
        raise ValueError(_LONE_PARTNER)
    return torch.from_numpy(coeff[:numel])


def _verdict(ptr: int, nwords: int, states: np.ndarray) -> str | None:
    """A decoded chunk's error message, or None: the kernel ran out of words (ptr < 0), or
    left words unread or a state off its initial value."""
    return _RAN_OUT if ptr < 0 else _NOT_INITIAL if ptr != nwords or (states != L).any() else None


_RAN_OUT = "corrupt or truncated payload: the rANS word stream ran out"
_NOT_INITIAL = "corrupt payload: the rANS stream does not decode to its initial state"
_LONE_PARTNER = "corrupt payload: the lone last coordinate's partner is not level 0"


def _streams(payload: bytes, numel: int, off: int, a: int, pairs: bool) -> list[tuple]:
    """The chunks' streams after the frequency table (a symbols) at byte off: (lo, hi, final
    states uint32 [K_c] (a fresh array's views), byte offset of the words, word count) each,
    lo and hi in symbols; ValueError if malformed."""
    chunks, lanes = _layout(numel, pairs)
    q, k = len(chunks), lanes[-1]
    woff = off + 2 * a + 4 * (q - 1) + 4 * k
    if len(payload) < woff:
        raise ValueError(f"truncated entropy payload: {len(payload)} bytes, its table, counts "
                         f"and states need {woff}")
    if (len(payload) - woff) % 2:
        raise ValueError("corrupt entropy payload: odd number of bytes in the word stream")
    counts = list(struct.unpack_from(f">{q - 1}I", payload, off + 2 * a))
    total = (len(payload) - woff) // 2
    if sum(counts) > total:
        raise ValueError(f"corrupt payload: the chunks' word counts ({sum(counts)}) "
                         f"exceed the {total} words of the stream")
    counts.append(total - sum(counts))
    x = np.frombuffer(payload, ">u4", count=k, offset=off + 2 * a + 4 * (q - 1)).astype(np.uint32)
    if (x < L).any():
        raise ValueError("corrupt payload: an rANS state is below its lower bound")
    streams, start = [], woff
    for c, (lo, hi) in enumerate(chunks):
        streams.append((lo, hi, x[lanes[c]:lanes[c + 1]], start, counts[c]))
        start += 2 * counts[c]
    return streams


def _parse(payload: bytes, numel: int, d: int, grid: Grid):
    """(scales float32 [B], frequency table int64 [A], `_streams`), all checked."""
    check_supported(grid, "entropy")
    scales, off = scale_coding.decode(payload, header_nbytes(numel), -(-numel // d))
    pairs = pairs_for(numel, d, grid.size)
    a = alphabet(grid.size, pairs)
    if len(payload) < off + 2 * a:
        raise ValueError(f"truncated entropy payload: {len(payload)} bytes, its table needs "
                         f"{off + 2 * a}")
    freq = np.frombuffer(payload, ">u2", count=a, offset=off).astype(np.int64)
    if freq.sum() != M:
        raise ValueError(f"corrupt payload: symbol frequencies sum to {freq.sum()}, not {M}")
    return scales, freq, _streams(payload, numel, off, a, pairs)


def decode(payload: bytes, numel: int, d: int, grid: Grid):
    """-> (scales float32 [B], signed levels float32 tensor [numel]); ValueError if malformed."""
    scales, freq, streams = _parse(payload, numel, d, grid)
    if jit.enabled():
        ones = np.ones(scales.size, np.float32)  # levels times 1.0: the levels, exactly
        return scales, _decode_compiled(payload, numel, streams, freq, grid, ones, d)
    cum, lut = _slot_symbols(freq)
    sym = np.empty(streams[-1][1], np.int64)
    for lo, hi, states, woff, nwords in streams:
        words = np.frombuffer(payload, ">u2", count=nwords, offset=woff).astype(np.int64)
        sym[lo:hi] = _decode_chunk(words, states.astype(np.int64), freq, cum, lut, hi - lo)
    if pairs_for(numel, d, grid.size):
        a = 2 * grid.size - 1
        if numel % 2 and sym[-1] % a:
            raise ValueError(_LONE_PARTNER)
        sym = np.stack([sym // a, sym % a], 1).reshape(-1)[:numel]
    return scales, torch.from_numpy(_symbol_values(grid)[sym])


def decode_scaled(payload: bytes, numel: int, d: int, grid: Grid) -> torch.Tensor:
    """The gradient, float32 [numel]: `decode`'s levels times their scales, the kernels
    scaling as they decode."""
    if not jit.enabled():
        return scale_coefficients(*decode(payload, numel, d, grid), d)
    scales, freq, streams = _parse(payload, numel, d, grid)
    return scaled_by_decoder(
        scales, lambda times: _decode_compiled(payload, numel, streams, freq, grid, times, d),
        d)


def _decode_chunk(words: np.ndarray, x: np.ndarray, freq: np.ndarray, cum: np.ndarray,
                  lut: np.ndarray, m: int) -> np.ndarray:
    """The m symbols of one chunk from its words and final states x (int64, updated)."""
    k = x.size
    sym = np.empty(m, np.int64)
    ptr = 0
    for t in range(-(-m // k)):
        lo, hi = t * k, min(m, t * k + k)
        xa = x[: hi - lo]
        slot = xa & (M - 1)
        s = lut[slot]
        xa = freq[s] * (xa >> SB) + slot - cum[s]
        need = np.flatnonzero(xa < L)
        if ptr + need.size > words.size:
            raise ValueError(_RAN_OUT)
        xa[need] = (xa[need] << 16) | words[ptr: ptr + need.size]
        ptr += need.size
        x[: hi - lo] = xa
        sym[lo:hi] = s
    if ptr != words.size or (x != L).any():
        raise ValueError(_NOT_INITIAL)
    return sym

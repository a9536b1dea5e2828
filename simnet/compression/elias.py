"""`elias` wire format: QSGD's Code_s (Alistarh et al. 2017, §3.2), framed per bucket.

Layout, with H the header of `wire.py`, B = ceil(n/d) buckets and G grid points:
    [header H][B × float32 scale, big-endian]
    [B fields of W bits: the bit length of each bucket's code section; MSB first, 0-padded]
    [code sections of buckets 0..B-1, concatenated; zero-padded to a byte]
A bucket's code section is, for each nonzero coordinate in order: ω(gap), one sign bit
(1 = negative), ω(level index >= 1); the first gap is the 1-based position in the bucket,
later gaps the distance to the previous nonzero. ω is Elias omega (`coding.py`).
W = bitlen(d · (|ω(d)| + 1 + |ω(G-1)|)): enough for a bucket's longest possible section.
    len = H + 4B + ceil(B·W/8) + ceil(Σ_buckets Σ_nonzeros (|ω(gap)| + 1 + |ω(level)|) / 8).
A flat ±1 vector with s = √d (every level 1, every gap 1) thus costs 3 bits per coordinate
plus the 32-bit scale, Code_s's 3n + 32, plus H bytes and the W-bit framing.

Bit lengths rather than nonzero counts frame the buckets (DESIGN allows either) because they
let the decoder start every bucket at once: it walks all buckets in parallel, one
(gap, sign, level) triple per step, so the number of numpy steps is the largest nonzero count
of a bucket (<= d), not the number of nonzeros.

Two implementations, the same bytes and the same ValueErrors: compiled kernels
(`elias_fused.py` encodes, `elias_kernels.py` decodes, when `jit.enabled()`: each bucket range
walked by a loop, a few ranges on threads) and the vectorised numpy code below, the fallback
and the tests' oracle.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np
import torch

from . import elias_fused as fused
from . import elias_kernels as K
from . import elias_vectors, jit, level_keys, scratch, threads
from .coding import OMEGA_MAX, BitReader, omega_encode, omega_length, omega_read, write_fields
from .norm_kernels import ScaleNotFinite
from .quantize import Grid
from .wire import (Quantized, header, header_nbytes, read_scales, scale_coefficients,
                   scaled_by_decoder, scales_bytes)

__all__ = ["encode", "decode", "decode_scaled", "Prepared", "length_bits", "keys_of",
           "nbytes_floor", "nbytes_of_keys", "nbytes_of_gaps", "gap_lengths"]

_U = np.uint64
VECTOR_LANES = True  # the encoders' vector step, where the host has it (tests switch it off)
_TB = 18  # fast-path table: every omega code of <= 18 bits (values 1..2047)


@lru_cache(maxsize=32)
def _longest_section(d: int, points: int) -> int:
    """The most bits a bucket's code section can take: d·(|ω(d)| + 1 + |ω(G - 1)|)."""
    return d * int(omega_length(np.array([d]))[0] + 1
                   + omega_length(np.array([points - 1]))[0])


def length_bits(d: int, grid: Grid) -> int:
    """W, the width of a bucket's bit-length field."""
    return _longest_section(d, grid.size).bit_length()


@lru_cache(maxsize=8)
def _omega_lut(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes and lengths of 0..m (index 0 unused)."""
    code, length = omega_encode(np.arange(1, m + 1))
    return np.r_[np.uint64(0), code], np.r_[0, length]


def _codes(values: np.ndarray, m: int):
    if m <= 1 << 20:
        code, length = _omega_lut(m)
        return code[values], length[values]
    return omega_encode(values)


@lru_cache(maxsize=8)
def _triple_lut(d: int, g: int) -> tuple[np.ndarray, np.ndarray]:
    """Whole triples ω(gap)·sign·ω(level) indexed by (gap·g + level)·2 + sign, as (code, len)."""
    gc, gl = _omega_lut(d)
    lc, ll = _omega_lut(g - 1)
    sign = np.arange(2, dtype=_U)
    code = ((gc[:, None, None] << _U(1) | sign) << ll[None, :, None].astype(_U)) | lc[None, :, None]
    length = gl[:, None, None] + 1 + ll[None, :, None] + np.zeros(2, np.int64)
    return code.reshape(-1), length.reshape(-1)


def _check_bucket_size(d: int) -> None:
    if d > OMEGA_MAX:
        raise ValueError(f"elias: bucket_size must be <= {OMEGA_MAX}")


def _triples(q: Quantized, grid: Grid, d: int):
    """Per nonzero in order: (bucket, triple code, triple length), codes as fields of <= 64
    bits (a triple that would be longer is written as two fields; its bucket repeats)."""
    _check_bucket_size(d)
    idx = q.idx.reshape(-1).cpu().numpy()
    nz = np.flatnonzero(idx)
    bucket = nz // d
    j = nz - bucket * d
    gap = j + 1
    gap[1:] -= np.where(bucket[1:] == bucket[:-1], j[:-1] + 1, 0)
    level = idx[nz]
    sign = q.neg.reshape(-1).cpu().numpy()[nz]
    g = grid.size
    if (d + 1) * g * 2 <= 1 << 20 and _triple_lut(d, g)[1].max() <= 64:  # one gather each
        code, length = _triple_lut(d, g)
        key = (gap * g + level) * 2 + sign
        return bucket, code[key], length[key]
    gcode, glen = _codes(gap, d)
    lcode, llen = _codes(level.astype(np.int64), g - 1)
    first = (gcode << _U(1)) | sign.astype(_U)
    if not glen.size or (glen + 1 + llen).max() <= 64:
        return bucket, (first << llen.astype(_U)) | lcode, glen + 1 + llen
    return (np.repeat(bucket, 2), np.stack([first, lcode], 1).reshape(-1),
            np.stack([glen + 1, llen], 1).reshape(-1))


class Prepared:
    """Codes of one gradient, computed once: `nbytes` is exact, `payload()` writes them.
    From levels (`of_quantized`, either path) or from `level_keys` keys (`of_keys`, compiled
    kernels only). Take the payload on the same thread, before its next elias encode: the
    compiled codes wait in the thread's scratch streams."""

    def __init__(self, nbytes: int, write):
        self.nbytes, self._write = nbytes, write

    @classmethod
    def of_quantized(cls, q: Quantized, grid: Grid, d: int) -> "Prepared":
        if jit.enabled():
            return cls.of_keys(keys_of(q, grid, d)[0], q.scales, grid, d)
        bucket, values, widths = _triples(q, grid, d)
        bits = np.bincount(bucket, weights=widths, minlength=q.scales.numel()).astype(np.int64)
        w = length_bits(d, grid)

        def write() -> bytes:
            lengths, _ = write_fields(bits, np.full(bits.size, w))
            stream, _ = write_fields(values, widths)
            return b"".join([header("elias", q.numel), scales_bytes(q.scales),
                             lengths.tobytes(), stream.tobytes()])

        return cls(_nbytes(q.numel, bits.size, w, int(bits.sum())), write)

    @classmethod
    def of_keys(cls, keys: np.ndarray, scales: torch.Tensor, grid: Grid, d: int) -> "Prepared":
        """From the keys of all n coordinates (valid: levels inside the grid)."""
        codes = _KernelCodes(keys, scales, grid, d)
        return cls(codes.nbytes, codes.payload)

    def payload(self) -> bytes:
        return self._write()


@lru_cache(maxsize=32)
def _key_bits(points: int) -> np.ndarray:
    """Bits of each key's sign and level codes (int64 [2G], read-only): 1 + |ω(l)| for the
    keys 2l, 2l + 1 of a level l >= 1, 0 for level 0."""
    lengths = _omega_lut(points - 1)[1] if points > 1 else np.zeros(1, np.int64)
    bits = np.zeros(2 * points, np.int64)
    bits[2:] = 1 + np.repeat(lengths[1:], 2)
    bits.flags.writeable = False
    return bits


def nbytes_floor(n: int, key_counts: np.ndarray, grid: Grid, d: int) -> int:
    """A lower bound on the payload's length (bytes) from the counts of the n coordinates'
    keys 2·level + sign (int64 [2G]) alone: every nonzero costs its sign, its |ω(level)| and
    a gap code of >= 1 bit. Dense gradients come within a few % of the exact length
    (`nbytes_of_keys`, which must look at every coordinate); `auto` skips that when even
    this bound loses."""
    nonzero = int(key_counts[2:].sum())
    return _nbytes(n, -(-n // d), length_bits(d, grid),
                   int(key_counts @ _key_bits(grid.size)) + nonzero)


def nbytes_of_keys(keys: np.ndarray, key_counts: np.ndarray, grid: Grid, d: int) -> int:
    """The exact payload length (bytes) of the n coordinates' keys 2·level + sign (valid),
    whose counts are key_counts (int64 [2G]), without coding them (compiled kernels): the
    sign and level codes follow from the counts, and `elias_kernels.gap_bits` measures the
    gap codes from bit masks, a bucket range a thread (about 0.1 ns a coordinate, a tenth
    of coding them: `auto` sizes elias this way and writes it only if it wins)."""
    _check_bucket_size(d)
    glen = gap_lengths(d)
    gaps = _run(lambda b0, b1: K.gap_bits(keys, d, b0, b1, glen), _ranges(-(-keys.size // d), d))
    return nbytes_of_gaps(keys.size, key_counts, grid, d, sum(gaps))


def nbytes_of_gaps(n: int, key_counts: np.ndarray, grid: Grid, d: int, gap_bits: int) -> int:
    """`nbytes_of_keys` given the gap codes' total length in bits (`elias_kernels.gap_bits`,
    or as `level_keys.of_rounding` counts them while it rounds)."""
    return _nbytes(n, -(-n // d), length_bits(d, grid),
                   int(key_counts @ _key_bits(grid.size)) + gap_bits)


@lru_cache(maxsize=8)
def gap_lengths(d: int) -> np.ndarray:
    """|ω(g)| by gap g <= min(d, 2^16) (int64, read-only; longer gaps: the kernels'
    `omega_code`): the `glen` table of `elias_kernels.gap_bits`."""
    glen = _omega_lut(min(d, 1 << 16))[1]
    glen.flags.writeable = False
    return glen


def _nbytes(n: int, nb: int, w: int, bits: int) -> int:
    """The payload's length (bytes): header, nb float32 scales, nb section lengths of w bits,
    then `bits` bits of codes, each part padded to whole bytes."""
    return header_nbytes(n) + 4 * nb + -(-nb * w // 8) + -(-bits // 8)


def encode(q: Quantized, grid: Grid, d: int) -> bytes:
    return Prepared.of_quantized(q, grid, d).payload()


# -- compiled path (elias_kernels.py) -------------------------------------------------------

_PAR_MIN = 1 << 16  # coordinates below which the kernels run on the calling thread only
# code bytes below which the ranges' streams are spliced on the calling thread: a splice
# copies ~20-40 GB/s, and a pool thread's wake-up took ~50 µs on a 2-vCPU VM (1 M qsgdinf
# coordinates, 0.52 MB: 0.109 ms on two threads, 0.061 on one)
_SPLICE_PAR_MIN = 4 << 20


def _ranges(nb: int, d: int) -> list[tuple[int, int]]:
    """Contiguous bucket ranges [b0, b1), one per thread."""
    return threads.split(nb, 1 if nb * d < _PAR_MIN else threads.THREADS)


def _run(fn, ranges):
    """[fn(b0, b1) for each range], on this thread and the elias pool."""
    return threads.run_ranges("simnet-elias", fn, ranges)


def _run_indexed(fn, ranges):
    """[fn(i, b0, b1) for each range i = (b0, b1)], as `_run`."""
    return _run(fn, [(i, b0, b1) for i, (b0, b1) in enumerate(ranges)])


def _coding_ranges(nb: int, d: int) -> list[tuple[int, int]]:
    """The encoders' bucket ranges, one per thread (`_ranges`), each starting at an even
    coordinate (the fused encoder's uniforms come in pairs)."""
    return level_keys.bucket_ranges(nb, d, len(_ranges(nb, d)))


@lru_cache(maxsize=8)
def _enc_tables(d: int, g: int):
    """Encoder tables (layout in elias_kernels.py): (ftab, lb, lcap, gtab, ltab, kfields),
    kfields the vector step's field of each key (`elias_vectors.key_fields`) for grids of
    <= KEYS / 2 points, else None."""
    gcode, glen = _omega_lut(min(d, 1 << 16))  # the split tables, for the rare path
    gtab = (gcode << _U(6)) | glen.astype(_U)
    lcode, llen = _omega_lut(g - 1)
    width = (llen[1:] + 1).astype(_U)
    ltab = np.zeros(2 * g, _U)
    ltab[2::2] = (lcode[1:] << _U(6)) | width
    ltab[3::2] = (((_U(1) << llen[1:].astype(_U)) | lcode[1:]) << _U(6)) | width
    # the fused table: gaps 1..GAPS, levels 1..lcap-1 (lcap <= 128: the table stays small)
    gaps, lcap = K.GAPS, min(g, 128)
    lb = (2 * lcap + 1).bit_length()
    ftab = np.full((gaps + 2, 1 << lb), K.SENTINEL, _U)
    ftab[:, :2] = 0  # level 0: no code
    gl = glen[1:gaps + 1] if gaps <= d else np.r_[glen[1:], np.zeros(gaps - d, np.int64)]
    gc = gcode[1:gaps + 1] if gaps <= d else np.r_[gcode[1:], np.zeros(gaps - d, _U)]
    lw, lf = width[:lcap - 1], ltab[2:2 * lcap] >> _U(6)  # (sign, level) fields 1..lcap-1
    size = gl[:, None] + lw[None, :].astype(np.int64).repeat(2, 1)
    code = (gc[:, None] << lw.repeat(2)[None, :]) | lf[None, :]
    ftab[1:gaps + 1, 2:2 * lcap] = np.where(size <= 32, (code << _U(6)) | size.astype(_U),
                                           K.SENTINEL)
    ftab[d + 1:gaps + 1, 2:] = K.SENTINEL  # gaps > d cannot occur (rows left for a d < GAPS)
    kfields = elias_vectors.key_fields() if 2 * g <= elias_vectors.KEYS else None
    return ftab.reshape(-1), lb, lcap, gtab, ltab, kfields


def _coded(kernel, *args) -> int:
    """kernel(*args, vector): `elias_fused.encode_rows` or `code_rows` with the vector step
    where the host has it, and again without it if it declined a code (a level or gap >=
    2^16, a triple longer than 32 bits: rare; the scalar coder codes everything)."""
    if _vector():
        got = kernel(*args, True)
        if got != fused.DECLINED:
            return got
    return kernel(*args, False)


def _vector() -> bool:
    return VECTOR_LANES and elias_vectors.FAST


def _coded_ranges(rows, on_team, head, tables, ranges, streams, bits) -> list[int]:
    """The coder `rows` (`elias_fused.encode_rows` or `code_rows`) of each bucket range,
    rows(*head, b0, b1, *tables, streams[i], bits, vector), as `_coded`: all ranges in one
    launch of `on_team` (its `encode_ranges` or `code_ranges`) where `threads.team_ready`,
    else on this thread and the elias pool. Returns each range's result."""
    if not threads.team_ready(len(ranges)):
        return _run_indexed(lambda i, b0, b1: _coded(rows, *head, b0, b1, *tables, streams[i],
                                                     bits), ranges)
    got = np.empty(len(ranges), np.int64)
    on_team(*head, threads.bounds(ranges), *tables, tuple(streams), bits, _vector(), got)
    return [rows(*head, b0, b1, *tables, stream, bits, False) if g == fused.DECLINED else int(g)
            for g, (b0, b1), stream in zip(got, ranges, streams)]


def _check_kernel(err: int) -> None:
    if err:
        raise RuntimeError(f"elias kernel: internal error {err} (a code buffer was sized "
                           "too small)")


def keys_of(q: Quantized, grid: Grid, d: int, counts: bool = False, pairs: bool = False):
    """(keys, counts or None) of q's n coordinates (`level_keys.of_levels`: counts of keys, or
    with `pairs` of pair codes), with the bucket count and the levels checked: the compiled
    path's input (here and for `auto`)."""
    nb = q.scales.numel()
    if q.idx.numel() != nb * d or q.neg.numel() != nb * d:
        raise ValueError(f"elias: idx/neg must hold {nb} buckets of {d}, got {q.idx.numel()}")
    try:
        return level_keys.of_levels(q.idx, q.neg, q.numel, grid.size, counts=counts,
                                        pairs=pairs)
    except ValueError as e:
        raise ValueError(f"elias: a level index lies outside the grid ({e})") from None


def _section_starts(bits: np.ndarray) -> np.ndarray:
    """Bit offset of every bucket's code section in the stream, and the end (int64 [B + 1])."""
    starts = np.zeros(bits.size + 1, np.int64)
    np.cumsum(bits, out=starts[1:])
    return starts


def _frame(numel: int, scales: torch.Tensor, bits: np.ndarray, w: int) -> tuple[np.ndarray, int]:
    """A payload buffer with header, scales and section lengths written: (uint8 array, the
    code stream's byte offset)."""
    nb = bits.size
    lb = -(-nb * w // 8)
    head = np.frombuffer(header("elias", numel) + scales_bytes(scales), np.uint8)
    out = scratch.array("elias.payload", _nbytes(numel, nb, w, int(bits.sum())), np.uint8)
    out[:head.size] = head
    _check_kernel(K.write_fixed(bits, w, out[head.size:head.size + lb]))
    return out, head.size + lb


def _assemble(numel: int, scales: torch.Tensor, bits: np.ndarray, w: int, ranges,
              streams: list[np.ndarray]) -> bytes:
    """The payload of buckets with these section lengths (bits), range i = ranges[i]'s
    sections being in streams[i] from bit 0 (as `elias_fused` writes them): each spliced on
    a thread into its place in the code stream, a first byte shared with the range before
    kept aside and ORed in last."""
    out, at = _frame(numel, scales, bits, w)
    stream = out[at:]
    starts = _section_starts(bits)
    shared = np.zeros((len(ranges), 1), np.uint8)  # first byte of each range, if shared

    def splice(i, b0, b1):
        at = int(starts[b0])
        fused.splice(streams[i], starts[b1] - at, stream, at, shared[i],
                     fused.wide_view(stream, (at >> 3) + 1))

    if stream.size < _SPLICE_PAR_MIN:  # (waking a pool thread costs more than the copy)
        for i, (b0, b1) in enumerate(ranges):
            splice(i, b0, b1)
    else:
        _run_indexed(splice, ranges)
    _or_shared(stream, starts, ranges, shared)
    return out.tobytes()


def _or_shared(stream: np.ndarray, starts: np.ndarray, ranges, shared: np.ndarray) -> None:
    """OR in the byte each range shares with the previous one (kept aside by its kernel)."""
    for i, (b0, _) in enumerate(ranges):
        if starts[b0] & 7:
            stream[starts[b0] >> 3] |= shared[i, 0]


_streams_owner = threading.local()  # per thread: who last coded into its range streams


def _range_streams(d: int, points: int, ranges, owner=None) -> list[np.ndarray]:
    """The calling thread's uint32 scratch streams, one per bucket range, each long enough for
    the range's longest possible sections (`elias_fused`: + 3·BLOCK + 1 words; `scratch`:
    pages never written stay unmapped), now `owner`'s."""
    most = _longest_section(d, points)
    _streams_owner.value = owner
    return [scratch.array(f"elias.stream{i}", (b1 - b0) * most // 32 + 3 * fused.BLOCK + 1,
                          np.uint32) for i, (b0, b1) in enumerate(ranges)]


class _KernelCodes:
    """The code sections of n coordinates' keys, by `elias_fused.code_rows`, a bucket range a
    thread, written at once into the calling thread's range streams: exact `nbytes`, and
    `payload()`, which splices them (take it before the thread's next elias encode, which
    reuses the streams)."""

    def __init__(self, keys: np.ndarray, scales: torch.Tensor, grid: Grid, d: int):
        _check_bucket_size(d)
        nb = scales.numel()
        self.keys, self.scales = keys, scales
        self.w = length_bits(d, grid)
        self.ranges = _coding_ranges(nb, d)
        self.bits = np.empty(nb, np.int64)
        self.streams = _range_streams(d, grid.size, self.ranges, owner=self)
        tables = _enc_tables(d, grid.size)
        for got in _coded_ranges(fused.code_rows, fused.code_ranges, (keys, d), tables,
                                 self.ranges, self.streams, self.bits):
            if got < 0:
                _check_kernel(-got)
        self.nbytes = _nbytes(keys.size, nb, self.w, int(self.bits.sum()))

    def payload(self) -> bytes:
        if getattr(_streams_owner, "value", None) is not self:
            raise RuntimeError("elias: another encode on this thread reused the streams "
                               "of a Prepared before its payload() was taken")
        return _assemble(self.keys.size, self.scales, self.bits, self.w, self.ranges,
                         self.streams)


def encode_rounding(x: np.ndarray, norm: int, seed: int, d: int, fast: tuple[int, int],
                    grid: Grid, off: int = 0) -> bytes:
    """The `elias` payload of the flat float32 gradient x, each bucket scaled by its `norm`
    (`norm_kernels` L2 or LINF) and rounded on the way (`elias_fused.py`): the bytes of
    `quantize` -> `encode` with the same seed's uniforms, coordinate i taking draw off + i.
    `norm_kernels.ScaleNotFinite` when a scale is not finite. fast: the kernels' (grid code,
    s)."""
    _check_bucket_size(d)
    nb, w = -(-x.size // d), length_bits(d, grid)
    tables = _enc_tables(d, grid.size)
    scales, bits = np.empty(nb, np.float32), np.empty(nb, np.int64)
    ranges = _coding_ranges(nb, d)
    streams = _range_streams(d, grid.size, ranges)
    got = _coded_ranges(fused.encode_rows, fused.encode_ranges,
                        (x, scales, norm, seed, off, d, *fast), tables, ranges, streams, bits)
    if -K.ERR_SCALE in got:
        raise ScaleNotFinite(scales)
    for g in got:
        if g < 0:
            _check_kernel(-g)
    return _assemble(x.size, torch.from_numpy(scales), bits, w, ranges, streams)


@lru_cache(maxsize=8)
def _dec_tables(d: int, grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decoder tables (layout in elias_kernels.py): the table of one or two triples for
    bucket size d and this grid, its entries' bit lengths L (uint8: the decoder's chain
    loads one byte), and the signed levels, float32 [2G] (index 2·level + sign)."""
    lv = grid.tensor().numpy()
    signed = np.stack([lv, -lv], 1).reshape(-1)
    t = K.TABLE_BITS
    values = np.arange(1, 1 << t)
    code, length = omega_encode(values)
    short = [(int(v), int(c), int(n)) for v, c, n in zip(values, code, length) if n <= t - 2]
    # the first triple of every t-bit prefix: its length (0: none), gap and 2·level + sign
    size1, gap1, sym1 = (np.zeros(1 << t, np.int64) for _ in range(3))
    for gap, gc, gl in short:
        for level, lc, ll in short:
            size = gl + 1 + ll
            if size > t or gap > d or level >= grid.size:
                continue
            for sign in (0, 1):
                first = ((((gc << 1) | sign) << ll) | lc) << (t - size)
                span = slice(first, first + (1 << (t - size)))
                size1[span], gap1[span], sym1[span] = size, gap, 2 * level + sign
    # a second triple where it fits in the bits the first leaves (none: gap 0, same symbol)
    rest = (np.arange(1 << t) << size1) & ((1 << t) - 1)
    size2 = size1[rest]
    two = (size1 > 0) & (size2 > 0) & (size1 + size2 <= t)
    size = np.where(two, size1 + size2, size1)
    gap2 = np.where(two, gap1[rest], 0)
    sym2 = np.where(two, sym1[rest], sym1)
    table = (sym1 | gap1 << K.G1 | (gap1 + gap2) << K.G12 | size << K.L_AT | size1 << K.L1_AT
             | sym2 << K.SYM2)
    table = np.where(size1 > 0, table, 0).astype(np.uint64)
    return table, ((table >> np.uint64(K.L_AT)) & np.uint64(63)).astype(np.uint8), signed


def _framing(payload: bytes, numel: int, d: int, grid: Grid):
    """The checked framing of a payload, shared by both decoders: (scales float32 [B], section
    bit lengths int64 [B], code body uint8). Checks the length fields, the exact payload
    length and both padding runs."""
    scales = read_scales(payload, numel, d)
    nb, w = scales.size, length_bits(d, grid)
    off = header_nbytes(numel) + 4 * nb
    lb = -(-nb * w // 8)
    if len(payload) < off + lb:
        raise ValueError(f"truncated elias payload: {len(payload)} bytes, framing needs {off + lb}")
    buf = np.frombuffer(payload, np.uint8)
    if jit.enabled():
        bits = np.empty(nb, np.int64)
        K.read_fixed(buf[off:off + lb], nb, w, bits)
    else:
        bits = BitReader(buf[off:off + lb]).read(np.arange(nb) * w, w).astype(np.int64)
    if nb * w % 8 and int(buf[off + lb - 1]) & ((1 << (8 - nb * w % 8)) - 1):
        raise ValueError("corrupt payload: nonzero padding bits after the bucket lengths")
    total = int(bits.sum())
    expect = off + lb + -(-total // 8)
    if len(payload) != expect:
        raise ValueError(f"elias payload has {len(payload)} bytes, its framing says {expect}")
    body = buf[off + lb:]
    if total % 8 and int(body[-1]) & ((1 << (8 - total % 8)) - 1):
        raise ValueError("corrupt payload: nonzero padding bits after the last code")
    return scales, bits, body


def _decode_kernel(payload: bytes, numel: int, d: int, grid: Grid, scaled: bool):
    """`decode` by the kernels: the same checks in the same order, the same messages. With
    `scaled`, the coefficients come times their scales (`scaled_by_decoder`)."""
    scales, bits, body = _framing(payload, numel, d, grid)
    nb = scales.size
    starts = _section_starts(bits)
    table, lengths, signed = _dec_tables(d, grid)

    ranges = _ranges(nb, d)

    def times(multipliers: np.ndarray) -> torch.Tensor:
        coeff = np.empty(numel, np.float32)
        if threads.team_ready(len(ranges)):
            results = np.zeros((len(ranges), 2), np.int64)
            K.decode_ranges(body, starts, threads.bounds(ranges), d, numel, table, lengths,
                            signed, multipliers, coeff, results)
        else:
            results = _run(lambda b0, b1: K.decode_sections(
                body, starts, b0, b1, d, numel, table, lengths, signed, multipliers, coeff),
                ranges)
        for err, _ in results:
            if err == K.ERR_PAST:
                raise ValueError("corrupt payload: a code runs past its bucket's section")
            if err == K.ERR_RANGE:
                raise ValueError(f"corrupt payload: a gap exceeds {d} or a level index "
                                 f"exceeds {grid.size - 1}")
            if err == K.ERR_BEYOND:
                raise ValueError("corrupt payload: a nonzero lies beyond its bucket")
            if err:
                raise RuntimeError(f"elias kernel: unknown error {err}")
        return torch.from_numpy(coeff)

    if scaled:
        return scales, scaled_by_decoder(scales, times, d)
    return scales, times(np.ones(nb, np.float32))  # x 1.0: the levels, exactly


# -- vectorised path ------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _table() -> tuple[np.ndarray, np.ndarray]:
    """18-bit prefix -> (value, code length) as uint64; length 0: the code is > 18 bits."""
    v = np.arange(1, 2048)
    code, length = omega_encode(v)
    span = 1 << (_TB - length)
    first = code.astype(np.int64) << (_TB - length)
    rep = np.repeat(np.arange(v.size), span)
    at = first[rep] + np.arange(rep.size) - np.repeat(np.cumsum(span) - span, span)
    val, ln = np.zeros(1 << _TB, _U), np.zeros(1 << _TB, _U)
    val[at], ln[at] = v[rep], length[rep]
    return val, ln


def _step(reader: BitReader, pos, end, dmax: int, lmax: int):
    """Decode one (gap, sign, level) triple per lane (uint64 arrays throughout, so no casts);
    returns (gap, sign, level, new pos)."""
    val, ln = _table()
    w = reader.window_u64(pos)
    t = w >> _U(64 - _TB)
    gap, lg = val[t], ln[t]
    sign = (w >> (_U(63) - lg)) & _U(1)
    lvl_at = (w << (lg + _U(1))) >> _U(64 - _TB)
    lvl, ll = val[lvl_at], ln[lvl_at]
    new = pos + lg + _U(1) + ll
    slow = np.flatnonzero((lg == 0) | (ll == 0))
    if slow.size:  # codes longer than 18 bits: the general decoder, on those lanes only
        g, p = omega_read(reader, pos[slow].astype(np.int64), end[slow].astype(np.int64), dmax)
        s = reader.read(p, 1)
        lv, p = omega_read(reader, p + 1, end[slow].astype(np.int64), lmax)
        gap[slow], sign[slow], lvl[slow], new[slow] = g, s, lv, p
    if (new > end).any():
        raise ValueError("corrupt payload: a code runs past its bucket's section")
    if gap.max() > dmax or lvl.max() > lmax:
        raise ValueError(f"corrupt payload: a gap exceeds {dmax} or a level index exceeds {lmax}")
    return gap, sign, lvl, new


def decode(payload: bytes, numel: int, d: int, grid: Grid):
    """-> (scales float32 [B], signed levels float32 tensor [numel]); ValueError if malformed."""
    if jit.enabled():
        return _decode_kernel(payload, numel, d, grid, scaled=False)
    scales, bits, body = _framing(payload, numel, d, grid)
    reader = BitReader(body)
    ends = np.cumsum(bits).astype(_U)
    lanes = np.flatnonzero(bits)
    pos, end = ends[lanes] - bits[lanes].astype(_U), ends[lanes]
    room = np.minimum(d, numel - lanes * d).astype(_U)  # coordinates in each lane's bucket
    seen = np.zeros(lanes.size, _U)
    out_at, out_lvl, out_neg = [], [], []
    lv = grid.tensor().numpy()
    for _ in range(d + 1):  # each triple advances a lane by >= 1 coordinate: <= d steps
        if not lanes.size:
            break
        gap, sign, lvl, pos = _step(reader, pos, end, d, grid.size - 1)
        seen += gap
        if (seen > room).any():
            raise ValueError("corrupt payload: a nonzero lies beyond its bucket")
        out_at.append(lanes * d + seen.astype(np.int64) - 1)
        out_lvl.append(lvl)
        out_neg.append(sign.astype(bool))
        done = pos >= end
        if done.any():
            keep = ~done
            lanes, pos, end, room, seen = lanes[keep], pos[keep], end[keep], room[keep], seen[keep]
    if lanes.size:
        raise ValueError("corrupt payload: a bucket has more codes than coordinates")
    coeff = np.zeros(numel, np.float32)
    if out_at:
        at, lvl = np.concatenate(out_at), np.concatenate(out_lvl)
        coeff[at] = np.where(np.concatenate(out_neg), -lv[lvl], lv[lvl])
    return scales, torch.from_numpy(coeff)


def decode_scaled(payload: bytes, numel: int, d: int, grid: Grid) -> torch.Tensor:
    """The gradient, float32 [numel]: `decode`'s levels times their scales, the kernels
    scaling as they decode."""
    if jit.enabled():
        return _decode_kernel(payload, numel, d, grid, scaled=True)[1]
    return scale_coefficients(*decode(payload, numel, d, grid), d)

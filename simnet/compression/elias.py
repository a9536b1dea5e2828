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
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .coding import OMEGA_MAX, BitReader, omega_encode, omega_length, omega_read, write_fields
from .quantize import Grid
from .wire import Quantized, header, header_nbytes, read_scales, scales_bytes

__all__ = ["encode", "decode", "Prepared", "length_bits"]

_U = np.uint64
_TB = 18  # fast-path table: every omega code of <= 18 bits (values 1..2047)


def length_bits(d: int, grid: Grid) -> int:
    """W, the width of a bucket's bit-length field."""
    top = int(omega_length(np.array([d]))[0] + 1 + omega_length(np.array([grid.size - 1]))[0])
    return (d * top).bit_length()


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


def _triples(q: Quantized, grid: Grid, d: int):
    """Per nonzero in order: (bucket, triple code, triple length), codes as fields of <= 64
    bits (a triple that would be longer is written as two fields; its bucket repeats)."""
    if d > OMEGA_MAX:
        raise ValueError(f"elias: bucket_size must be <= {OMEGA_MAX}")
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
    """Codes of one gradient, computed once: `nbytes` is exact, `payload()` writes them."""

    def __init__(self, q: Quantized, grid: Grid, d: int):
        self.q, self.w = q, length_bits(d, grid)
        bucket, self.values, self.widths = _triples(q, grid, d)
        nb = q.scales.numel()
        self.bits = np.bincount(bucket, weights=self.widths, minlength=nb).astype(np.int64)
        self.nbytes = (header_nbytes(q.numel) + 4 * nb + -(-nb * self.w // 8)
                       + -(-int(self.bits.sum()) // 8))

    def payload(self) -> bytes:
        lengths, _ = write_fields(self.bits, np.full(self.bits.size, self.w))
        stream, _ = write_fields(self.values, self.widths)
        return b"".join([header("elias", self.q.numel), scales_bytes(self.q.scales), lengths.tobytes(),
                         stream.tobytes()])


def encode(q: Quantized, grid: Grid, d: int) -> bytes:
    return Prepared(q, grid, d).payload()


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
    scales = read_scales(payload, numel, d)
    nb, w = scales.size, length_bits(d, grid)
    off = header_nbytes(numel) + 4 * nb
    lb = -(-nb * w // 8)
    if len(payload) < off + lb:
        raise ValueError(f"truncated elias payload: {len(payload)} bytes, framing needs {off + lb}")
    head = BitReader(np.frombuffer(payload, np.uint8, count=lb, offset=off))
    bits = head.read(np.arange(nb) * w, w).astype(np.int64)
    if nb * w % 8 and head.read(np.array([nb * w]), 8 - nb * w % 8)[0]:
        raise ValueError("corrupt payload: nonzero padding bits after the bucket lengths")
    total = int(bits.sum())
    expect = off + lb + -(-total // 8)
    if len(payload) != expect:
        raise ValueError(f"elias payload has {len(payload)} bytes, its framing says {expect}")
    body = np.frombuffer(payload, np.uint8, offset=off + lb)
    reader = BitReader(body)
    if total % 8 and reader.read(np.array([total]), 8 - total % 8)[0]:
        raise ValueError("corrupt payload: nonzero padding bits after the last code")
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

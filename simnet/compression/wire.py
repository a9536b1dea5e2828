"""Wire formats of the grid quantizers (qsgd, qsgdinf, nuqsgd): header, `fixed`, dispatch.

Every payload starts with a header of H = 1 + V(n) bytes: one format byte (0x01 `fixed`,
0x02 `elias`, 0x03 `entropy`; `auto` writes whichever of the three is smallest, so its flag is
this same byte), then numel n as an unsigned LEB128 varint of V(n) = max(1, ceil(bitlen(n)/7))
bytes, so that a decoder given the wrong numel always says so. A payload for n = 0 is the
header alone (2 bytes). Then, with B = ceil(n / d) buckets:

`fixed` (this module), with w = ceil(log2(grid size)) and k = w + 1 bits per coordinate:
    [header][B × float32 scale, big-endian][n fields of k bits: sign bit (1 = negative),
    then the w-bit level index; MSB first, zero-padded to a byte]
    len = H + 4B + ceil(n·k / 8) bytes.
`elias`: see `elias.py`; `entropy`: see `entropy.py`.

Decoders validate everything they can: exact length, finite non-negative scales, level indices
inside the grid, no sign on a zero level, zero padding bits, zero buckets that stay zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from . import grid_kernels, jit, threads
from .coding import pack_fixed, unpack_fixed
from .quantize import Grid
from .threads import parallel_map

__all__ = ["Quantized", "TAGS", "encode", "decode", "header", "header_nbytes", "read_scales",
           "check_scales", "fixed_nbytes"]

TAGS = {"fixed": 0x01, "elias": 0x02, "entropy": 0x03}
_NAMES = {v: k for k, v in TAGS.items()}


@dataclass
class Quantized:
    """One quantized gradient, as the wire layer receives it."""

    scales: torch.Tensor  # float32 [B], units of the gradient
    idx: torch.Tensor  # level indices [B, d] (padding coordinates are 0)
    neg: torch.Tensor  # bool [B, d], True = negative
    numel: int


def header_nbytes(numel: int) -> int:
    """H = 1 format byte + the LEB128 length of numel."""
    return 1 + max(1, -(-numel.bit_length() // 7))


def header(fmt: str, numel: int) -> bytes:
    out = [TAGS[fmt]]
    while True:
        out.append((numel & 0x7F) | (0x80 if numel >= 0x80 else 0))
        numel >>= 7
        if not numel:
            return bytes(out)


def parse_header(payload: bytes, numel: int) -> tuple[str, int]:
    """(format name, header length); checks the format byte and the numel it carries."""
    if not payload:
        raise ValueError("empty payload: even numel=0 carries a 2-byte header")
    fmt = _NAMES.get(payload[0])
    if fmt is None:
        raise ValueError(f"corrupt payload: unknown format byte 0x{payload[0]:02x}")
    value, shift = 0, 0
    for i in range(1, min(len(payload), 11)):  # numel < 2^70: at most 10 varint bytes
        value |= (payload[i] & 0x7F) << shift
        shift += 7
        if not payload[i] & 0x80:
            if value != numel:
                raise ValueError(f"payload holds numel={value}, but the decoder was given "
                                 f"numel={numel}")
            if i + 1 != header_nbytes(numel):
                raise ValueError("corrupt payload header: non-canonical numel varint")
            return fmt, i + 1
    raise ValueError("truncated or corrupt payload header (numel varint)")


def fixed_nbytes(numel: int, d: int, grid: Grid) -> int:
    """Exact length of a `fixed` payload."""
    h = header_nbytes(numel)
    return h if numel == 0 else h + 4 * -(-numel // d) + -(-numel * (grid.index_bits + 1) // 8)


def scales_bytes(scales: torch.Tensor) -> bytes:
    """float32 scales, big-endian."""
    return scales.detach().cpu().numpy().astype(">f4").tobytes()


def pack_fields(idx: torch.Tensor, neg: torch.Tensor, grid: Grid, count: int) -> np.ndarray:
    """The first `count` (sign, level index) fields of idx/neg, k bits each, packed MSB first
    (uint8 numpy); a whole number of bytes when count·k is a multiple of 8. A zero level's
    sign is dropped (-0 is 0; the format has no signed zero)."""
    w = grid.index_bits
    wide = torch.uint8 if w + 1 <= 8 else torch.int64
    fields = idx.to(wide) | ((neg & (idx != 0)).to(wide) << w)
    return pack_fixed(fields.reshape(-1)[:count], w + 1).cpu().numpy()


def chunk_rows(d: int, coords: int) -> int:
    """Buckets per chunk of about `coords` coordinates such that a chunk holds a multiple of 8
    coordinates: its fields then fill whole bytes and its uniforms start at an even draw."""
    step = 8 // np.gcd(d, 8)
    return max(step, coords // d // step * step)


def fixed_frame(scales: torch.Tensor, numel: int, d: int, grid: Grid) -> tuple[np.ndarray, int]:
    """A `fixed` payload buffer with header and scales written: (uint8 array, field offset)."""
    out = np.empty(fixed_nbytes(numel, d, grid), np.uint8)
    return out, write_fixed_head(out, scales, numel)


def fixed_fields_at(numel: int, nb: int) -> int:
    """The byte offset of a `fixed` payload's fields: after its header and nb float32 scales."""
    return header_nbytes(numel) + 4 * nb


def write_fixed_head(out: np.ndarray, scales: torch.Tensor, numel: int) -> int:
    """Write a `fixed` payload's header and scales at the start of out (uint8); returns the
    offset of its fields (`fixed_fields_at`)."""
    head = header("fixed", numel)
    out[:len(head)] = np.frombuffer(head, np.uint8)
    pos = fixed_fields_at(numel, scales.numel())
    out[len(head):pos] = np.frombuffer(scales_bytes(scales), np.uint8)
    return pos


def _encode_fixed(q: Quantized, grid: Grid, d: int) -> bytes:
    out, pos = fixed_frame(q.scales, q.numel, d, grid)
    out[pos:] = pack_fields(q.idx, q.neg, grid, q.numel)
    return out.tobytes()


def encode(q: Quantized, grid: Grid, d: int, fmt: str) -> bytes:
    """Encode in `fmt` ("fixed", "elias", "entropy" or "auto": the smallest of the three)."""
    from . import elias, entropy  # noqa: PLC0415 (they import this module)

    if q.numel == 0:
        return header("fixed" if fmt == "auto" else fmt, 0)
    if fmt == "fixed":
        return _encode_fixed(q, grid, d)
    if fmt == "elias":
        return elias.encode(q, grid, d)
    if fmt == "entropy":
        return entropy.encode(q, grid, d)
    if fmt == "auto" and jit.enabled():
        keys, counts = elias.keys_of(q, grid, d, counts=True,
                                     pairs=entropy.pairs_for(q.numel, d, grid.size))
        return encode_auto(keys, counts, q.scales, d, grid)[0]
    if fmt == "auto":  # sizes first, write only the winner; ties: fixed, then elias
        fixed_n = fixed_nbytes(q.numel, d, grid)
        el = elias.Prepared.of_quantized(q, grid, d)
        if entropy.supports(grid):
            alt = entropy.encode(q, grid, d, max_bytes=min(fixed_n, el.nbytes) - 1)
            if alt is not None:
                return alt
        return el.payload() if el.nbytes < fixed_n else _encode_fixed(q, grid, d)
    raise ValueError(f"unknown encoding {fmt!r}")


def encode_auto(keys: np.ndarray, counts: np.ndarray, scales: torch.Tensor, d: int,
                grid: Grid, gap_bits: int | None = None) -> tuple[bytes, bool]:
    """`auto` from the n coordinates' keys and the counts `entropy.encode_keys` takes
    (`level_keys`; compiled kernels): the decisions of `encode`'s (ties: fixed, then elias).
    entropy is coded first, given fixed's size as its budget; elias is sized exactly (from
    `gap_bits`, its gap codes' bits, when the caller counted them, else by
    `elias.nbytes_of_keys`, without coding it) only when `elias.nbytes_floor` does not
    already lose to entropy, and written only if it wins. Returns (payload, whether elias's
    exact size was needed)."""
    from . import elias, entropy, level_keys  # noqa: PLC0415 (they import this module)

    n = keys.size
    fixed_n = fixed_nbytes(n, d, grid)
    key_counts = level_keys.key_counts(counts, grid.size, entropy.pairs_for(n, d, grid.size))
    alt = None
    if entropy.supports(grid):
        alt = entropy.encode_keys(keys, counts, scales, grid, d, max_bytes=fixed_n - 1)
        if alt is not None and len(alt) < elias.nbytes_floor(n, key_counts, grid, d):
            return alt, False  # shorter than elias can be: its exact size is not needed
    elias_n = (elias.nbytes_of_keys(keys, key_counts, grid, d) if gap_bits is None
               else elias.nbytes_of_gaps(n, key_counts, grid, d, gap_bits))
    if alt is not None and len(alt) < elias_n:
        return alt, True
    if elias_n < fixed_n:
        return elias.Prepared.of_keys(keys, scales, grid, d).payload(), True
    idx = torch.from_numpy((keys >> 1).astype(np.int32)).to(grid.index_dtype)
    neg = torch.from_numpy((keys & 1).astype(np.bool_))
    return _encode_fixed(Quantized(scales, idx, neg, n), grid, d), True


def read_scales(payload: bytes, numel: int, d: int) -> np.ndarray:
    """The B float32 scales after the header, validated (finite, >= 0)."""
    nb = -(-numel // d)
    h = header_nbytes(numel)
    if len(payload) < h + 4 * nb:
        raise ValueError(f"truncated payload: {len(payload)} bytes, need at least {h + 4 * nb} "
                         f"for {nb} bucket scales (numel={numel}, bucket_size={d})")
    return check_scales(np.frombuffer(payload, ">f4", count=nb, offset=h).astype(np.float32))


SCALE_NOT_FINITE = "corrupt payload: a bucket scale is NaN or Inf"
SCALE_NEGATIVE = "corrupt payload: a bucket scale is negative"


def check_scales(scales: np.ndarray) -> np.ndarray:
    """scales, after checking every one is finite and >= 0."""
    if not np.isfinite(scales).all():
        raise ValueError(SCALE_NOT_FINITE)
    if (scales < 0).any():
        raise ValueError(SCALE_NEGATIVE)
    return scales


def signed_levels(grid: Grid, w: int) -> torch.Tensor:
    """Lookup table field -> sgn·level for a (sign, w-bit index) field; NaN marks invalid fields."""
    lut = torch.full((2 << w,), float("nan"))
    lv = grid.tensor()
    lut[: grid.size] = lv
    lut[(1 << w) + 1: (1 << w) + grid.size] = -lv[1:]  # no "negative zero" field
    return lut


@lru_cache(maxsize=32)
def signed_table(grid: Grid, w: int) -> np.ndarray:
    """`signed_levels` as a read-only float32 array, made once per grid (building it costs
    about 5% of decoding a 1 M-coordinate `fixed` payload)."""
    table = signed_levels(grid, w).numpy()
    table.flags.writeable = False
    return table


@lru_cache(maxsize=32)
def byte_table(grid: Grid, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For k in {1, 2, 4, 8}: byte -> its 8/k coefficients sgn·level (float32 [256, 8/k]),
    and byte -> whether any of its fields is invalid (bool [256])."""
    per = 8 // k
    fields = (np.arange(256)[:, None] >> (8 - k * (np.arange(per) + 1))) & ((1 << k) - 1)
    table = signed_table(grid, k - 1)[fields]
    return np.ascontiguousarray(table, np.float32), np.isnan(table).any(1)


DECODE_CHUNK = 1 << 18  # coordinates per task of the compiled decoders (a multiple of 8)

_KERNEL_ERRORS = {1: "corrupt payload: a level index is outside the grid "
                     "(or a zero level carries a sign)",
                  2: "corrupt payload: a bucket with zero scale has nonzero levels"}


def _run_chunks(call, starts) -> None:
    """call(start) -> error code, for every start, on the codec thread pool; raises the
    ValueError of the first nonzero code."""
    codes = []
    parallel_map(lambda start: codes.append(call(start)), starts)
    _check_codes(codes)


def _check_codes(codes) -> None:
    """The ValueError of the kernels' error codes (0: none), the lowest code's first: an
    invalid field before a zero-scale bucket's level, as the vectorised path checks."""
    bad = [int(c) for c in codes if c]
    if bad:
        raise ValueError(_KERNEL_ERRORS[min(bad)])


def scale_coefficients(scales: np.ndarray, coeff: torch.Tensor, d: int) -> torch.Tensor:
    """sgn·level coefficients [numel] (ours: scaled in place) times their bucket's scale;
    ValueError if a zero-scale bucket holds a nonzero level."""
    numel = coeff.numel()
    if jit.enabled():
        c, rows = coeff.numpy(), max(1, DECODE_CHUNK // d)  # whole buckets per task
        _run_chunks(lambda r0: grid_kernels.scale_rows(c[r0 * d:(r0 + rows) * d],
                                                       scales[r0:r0 + rows], d),
                    range(0, scales.size, rows))
        return coeff
    scales = torch.from_numpy(scales)
    nb = scales.numel()
    pad = nb * d - numel
    full = (torch.nn.functional.pad(coeff, (0, pad)) if pad else coeff).view(nb, d)
    if (scales == 0).any() and (full[scales == 0] != 0).any():
        raise ValueError(_KERNEL_ERRORS[2])
    return full.mul_(scales.unsqueeze(1)).reshape(-1)[:numel]


def scaled_by_decoder(scales: np.ndarray, decode_times, d: int) -> torch.Tensor:
    """The gradient (float32 [numel]) from a decoder that multiplies as it decodes:
    `decode_times(multipliers)` gives each coordinate's sgn·level times its bucket's
    multiplier (float32 [B]). The multipliers are the scales themselves, unless one is zero:
    a zero scale would hide a nonzero level, so then the levels are decoded (multipliers 1.0,
    exact) and `scale_coefficients` scales them, checking those buckets."""
    if scales.all():
        return decode_times(scales)
    return scale_coefficients(scales, decode_times(np.ones(scales.size, np.float32)), d)


def _decode_fixed(payload: bytes, numel: int, d: int, grid: Grid) -> torch.Tensor:
    expect = fixed_nbytes(numel, d, grid)
    if len(payload) != expect:
        raise ValueError(f"fixed payload has {len(payload)} bytes, expected {expect} for "
                         f"numel={numel}, bucket_size={d}, {grid.size} levels")
    scales = read_scales(payload, numel, d)
    k = grid.index_bits + 1
    body = np.frombuffer(payload, np.uint8, offset=header_nbytes(numel) + 4 * scales.size)
    pad = 8 * body.size - numel * k
    if pad and int(body[-1]) & ((1 << pad) - 1):
        raise ValueError("corrupt payload: nonzero padding bits after the last field")
    if jit.enabled():  # one pass: fields -> sgn·level·scale, validated on the way
        out = np.empty(numel, np.float32)
        signed = signed_table(grid, k - 1)
        codes = np.zeros(-(-numel // DECODE_CHUNK), np.int64)
        threads.run_chunks("simnet-fixed", grid_kernels.unpack_chunks, grid_kernels.unpack_chunk,
                           (body, scales, d, k - 1, signed, DECODE_CHUNK, out), codes)
        _check_codes(codes)
        return torch.from_numpy(out)
    if 8 % k == 0:  # whole fields per byte: one table lookup per byte gives its coefficients
        table, invalid = byte_table(grid, k)
        bad = np.take(invalid, body).any()
        # each row of the table is one uint64 for k = 4 (two float32): a 1-D take is fastest
        rows = table.view(np.dtype((np.void, table.shape[1] * 4))).reshape(-1)
        coeff = np.take(rows, body).view(np.float32)[:numel]
    else:
        fields = unpack_fixed(torch.from_numpy(body.copy()), numel, k).numpy()
        coeff = signed_table(grid, k - 1)[fields]  # numpy: uint8 indices, no int64 copy
        bad = np.isnan(coeff).any()  # the table marks invalid fields with NaN
    if bad:
        raise ValueError(_KERNEL_ERRORS[1])
    return scale_coefficients(scales, torch.from_numpy(coeff), d)


def decode(payload: bytes, numel: int, d: int, grid: Grid, fmt: str) -> torch.Tensor:
    """Validate and decode to a float32 tensor [numel]; `fmt` "auto" accepts any format."""
    from . import elias, entropy  # noqa: PLC0415

    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise ValueError(f"payload must be bytes, got {type(payload).__name__}")
    payload = bytes(payload)
    got, h = parse_header(payload, numel)
    if fmt != "auto" and got != fmt:
        raise ValueError(f"payload is in format {got!r}, this compressor decodes {fmt!r}")
    if numel == 0:
        if len(payload) != h:
            raise ValueError(f"payload has {len(payload)} bytes, expected {h} for numel=0")
        return torch.zeros(0)
    if got == "fixed":
        return _decode_fixed(payload, numel, d, grid)
    decoder = elias.decode_scaled if got == "elias" else entropy.decode_scaled
    return decoder(payload, numel, d, grid)

"""Compiled CPU kernels of the grid quantizers' `fixed` format: packing and decoding.

Each kernel does in one pass what `wire.pack_fields` / `wire._decode_fixed` do in several
vectorised torch/numpy passes with full-size temporaries, and gives bit for bit their result.
Only the uniform and exponential grids in float32 (levels <= 1024) run on the kernels (here
and in `round_kernels`, the stochastic rounding); the rest stays on the torch path.

Kernels take flat arrays of buckets (`d` coordinates each, row b's scale in scales[b]; the
last one may be cut short) and release the GIL, so callers run chunks of buckets on a thread
pool, or all chunks in one launch on numba's threads (`unpack_chunks`).
"""

from __future__ import annotations

import numpy as np

from .jit import inline, kernel, parallel_kernel, prange

__all__ = ["UNIFORM", "EXPONENTIAL", "grid_code", "pack_fields", "unpack_rows", "unpack_chunk",
           "unpack_chunks", "scale_rows"]

UNIFORM, EXPONENTIAL = 0, 1


def grid_code(grid, levels: int) -> int | None:
    """The kernels' code for `grid` (UNIFORM or EXPONENTIAL), None where only torch applies."""
    if levels > 1024:  # those round in float64 (GridQuantizer._precise)
        return None
    return {"uniform": UNIFORM, "exponential": EXPONENTIAL}.get(grid.kind)


@inline
def _field(idx, neg, i, w):
    """Field i, (sign, w-bit index), as uint32."""
    return np.uint32(idx[i]) | (np.uint32(neg[i]) << np.uint32(w))


@kernel
def pack_fields(idx, neg, count, w, out):
    """Pack the first `count` (sign, w-bit index) fields of idx/neg (as `quantize_rows` wrote
    them) as k = w + 1 bits each, MSB first, into `out` (uint8, ceil(count·k/8) bytes, the
    last one zero-padded). k = 2, 4, 8 put whole fields in a byte (one loop each, which LLVM
    vectorises); other k <= 8 make k whole bytes of one 64-bit word from 8 fields."""
    k = w + 1
    pos = 0
    start = 0
    if k == 4:
        for j in range(count // 2):
            out[j] = (_field(idx, neg, 2 * j, w) << np.uint32(4)) | _field(idx, neg, 2 * j + 1, w)
        pos, start = count // 2, count // 2 * 2
    elif k == 8:
        for j in range(count):
            out[j] = _field(idx, neg, j, w)
        pos, start = count, count
    elif k == 2:
        for j in range(count // 4):
            out[j] = ((_field(idx, neg, 4 * j, w) << np.uint32(6))
                      | (_field(idx, neg, 4 * j + 1, w) << np.uint32(4))
                      | (_field(idx, neg, 4 * j + 2, w) << np.uint32(2))
                      | _field(idx, neg, 4 * j + 3, w))
        pos, start = count // 4, count // 4 * 4
    elif k <= 8:
        for g in range(count // 8):
            acc = np.uint64(0)
            for i in range(8 * g, 8 * g + 8):
                acc = (acc << np.uint64(k)) | np.uint64(_field(idx, neg, i, w))
            for j in range(k):
                out[pos + j] = np.uint8((acc >> np.uint64(8 * (k - 1 - j))) & np.uint64(255))
            pos += k
        start = count // 8 * 8
    acc = np.uint64(0)  # the rest (all fields when k > 8): a bit accumulator
    nbits = 0
    for i in range(start, count):
        acc = (acc << np.uint64(k)) | np.uint64(_field(idx, neg, i, w))
        nbits += k
        while nbits >= 8:
            nbits -= 8
            out[pos] = np.uint8((acc >> np.uint64(nbits)) & np.uint64(255))
            pos += 1
    if nbits:
        out[pos] = np.uint8((acc << np.uint64(8 - nbits)) & np.uint64(255))


@inline
def _unpack_fields(body, first, k, signed, scale, out):
    """out[j] = signed[field first + j]·scale for k in {2, 4, 8} (no field straddles a byte;
    callers pass k as a literal, so LLVM folds the shifts); returns 1 if a field is invalid
    (NaN in `signed`), else 0 (an int flag: a bool one stops LLVM vectorising)."""
    mask = np.uint32((1 << k) - 1)
    invalid = np.int32(0)
    for j in range(out.size):
        bit = (first + j) * k
        c = signed[(np.uint32(body[bit >> 3]) >> np.uint32(8 - k - (bit & 7))) & mask]
        invalid |= np.int32(c != c)
        out[j] = c * scale
    return invalid


@inline
def _unpack_nibbles(body, byte0, signed, scale, out):
    """k = 4 from byte `byte0` on, two fields per byte (out.size even): as `_unpack_fields`,
    about 1.5x faster."""
    invalid = np.int32(0)
    for j in range(out.size // 2):
        byte = body[byte0 + j]
        c0, c1 = signed[byte >> 4], signed[byte & 15]
        invalid |= np.int32(c0 != c0) | np.int32(c1 != c1)
        out[2 * j] = c0 * scale
        out[2 * j + 1] = c1 * scale
    return invalid


@inline
def _any_nonzero_level(body, first, count, k, signed):
    """Whether fields first .. first + count - 1 hold a nonzero (or invalid) level: the check
    of a zero-scale bucket, whose decoded values are all zero whatever its fields say."""
    mask = np.uint32((1 << k) - 1)
    for j in range(count):
        bit = (first + j) * k
        if signed[(np.uint32(body[bit >> 3]) >> np.uint32(8 - k - (bit & 7))) & mask] != 0:
            return True
    return False


@kernel
def unpack_rows(body, first, scales, d, w, signed, out):
    """Decode `out.size` `fixed` fields starting at field `first` of `body` (uint8) into
    sgn·level·scale (float32 `out`); `signed` maps a (k = w + 1)-bit field to sgn·level (NaN:
    invalid field). out[0] belongs to bucket first // d, scales are all the payload's scales.

    Returns 0, or 1 for an invalid field, 2 for a nonzero level in a zero-scale bucket."""
    k = w + 1
    n = out.size
    if k in (2, 4, 8):  # bucket by bucket, fields read straight from their byte
        invalid = np.int32(0)  # an invalid field takes precedence over a zero-bucket error
        zero_bucket_bad = False
        i = 0
        while i < n:
            b = (first + i) // d
            end = min(n, (b + 1) * d - first)
            part, scale, at = out[i:end], scales[b], first + i
            if k == 4 and at % 2 == 0 and part.size % 2 == 0:
                invalid |= _unpack_nibbles(body, at // 2, signed, scale, part)
            elif k == 4:
                invalid |= _unpack_fields(body, at, 4, signed, scale, part)
            elif k == 2:
                invalid |= _unpack_fields(body, at, 2, signed, scale, part)
            else:
                invalid |= _unpack_fields(body, at, 8, signed, scale, part)
            if scale == 0 and not zero_bucket_bad:
                zero_bucket_bad = _any_nonzero_level(body, at, part.size, k, signed)
            i = end
        return 1 if invalid else (2 if zero_bucket_bad else 0)
    mask = np.uint64((1 << k) - 1)  # other k: a bit accumulator
    bit = np.int64(first) * k
    acc = np.uint64(0)
    have = 0  # valid bits in acc, right-aligned
    byte = bit // 8
    skip = bit % 8
    if skip:
        acc = np.uint64(body[byte]) & np.uint64((1 << (8 - skip)) - 1)
        have = 8 - skip
        byte += 1
    i = 0
    zero_bucket_bad = False
    while i < n:
        b = (first + i) // d
        end = min(n, (b + 1) * d - first)
        scale = scales[b]
        for j in range(i, end):
            while have < k:
                acc = (acc << np.uint64(8)) | np.uint64(body[byte])
                byte += 1
                have += 8
            have -= k
            c = signed[(acc >> np.uint64(have)) & mask]
            if c != c:
                return 1
            if scale == 0 and c != 0:
                zero_bucket_bad = True
            out[j] = c * scale
        i = end
    return 2 if zero_bucket_bad else 0


@kernel
def unpack_chunk(body, scales, d, w, signed, chunk, out, c):
    """`unpack_rows` of chunk c of out's chunks of `chunk` fields (a multiple of 8): fields
    [c·chunk, (c + 1)·chunk) into out[c·chunk:]. Returns its result."""
    lo = c * chunk
    return unpack_rows(body, lo, scales, d, w, signed, out[lo:lo + chunk])


@parallel_kernel
def unpack_chunks(body, scales, d, w, signed, chunk, out, codes):
    """`unpack_chunk` of every chunk c < len(codes) on numba's threads
    (`threads.team_ready`), its result into codes[c] (int64)."""
    for c in prange(codes.size):
        codes[c] = unpack_chunk(body, scales, d, w, signed, chunk, out, c)


@kernel
def scale_rows(coeff, scales, d):
    """coeff[i] *= scales[i // d] in place (float32); returns 2 if a zero-scale bucket holds a
    nonzero level, else 0."""
    for b in range(scales.size):
        scale = scales[b]
        for i in range(b * d, min((b + 1) * d, coeff.size)):
            if scale == 0 and coeff[i] != 0:
                return 2
            coeff[i] *= scale
    return 0

"""Level keys: each coordinate's (level index, sign) as one small integer key = 2·level +
sign, and their counts (or the counts of pairs of keys, the codes of `entropy`'s pair mode),
for the compiled coders (`entropy`, and `elias` outside its fused encoder). From the
quantizer's level indices and signs (`of_levels`), or rounded from the gradient on the way
(`of_rounding`: norms, stochastic rounding, keys and counts in one pass, a block at a time,
no full-size index or sign arrays). Keys lie in [0, 2G) for a grid of G points.
"""

from __future__ import annotations

import numpy as np
import torch

from . import jit, threads
from .elias_kernels import bucket_gap_bits
from .norm_kernels import ScaleNotFinite, scale_through
from .norm_kernels import scratch as norm_scratch
from .pair_vectors import FAST as _LIST_PAIRS
from .pair_vectors import PAIRS, list_pairs32
from .round_kernels import BLOCK, draw_scratch, round_from

__all__ = ["dtype_for", "of_levels", "of_rounding", "bucket_ranges", "code_space",
           "key_counts"]

U = np.uint64
_PAR_MIN = 1 << 16  # coordinates below which the kernels run on the calling thread only


def dtype_for(points: int):
    """The smallest unsigned dtype of the keys of a grid of `points` points."""
    return np.uint8 if 2 * points <= 1 << 8 else np.uint16 if 2 * points <= 1 << 16 else np.uint32


def of_levels(idx: torch.Tensor, neg: torch.Tensor, n: int, points: int, counts: bool,
              pairs: bool = False):
    """(keys [n], counts int64 or None) of the first n level indices and signs (any shape):
    with `counts`, of the keys or, with `pairs`, of the pair codes of coordinates 2i, 2i + 1
    (`code_space`); ValueError (naming the first bad coordinate) for a level
    outside the grid."""
    idx = idx.detach().reshape(-1).cpu().numpy()  # uint8 or int32
    neg = neg.detach().reshape(-1).cpu().numpy()
    if idx.size < n or neg.size < n:
        raise ValueError(f"{idx.size} level indices and {neg.size} signs for numel={n}")
    keys = np.empty(n, dtype_for(points))

    def job(lo, hi):
        bad = keys_of(idx, neg, points, lo, hi, keys)
        if bad >= 0:
            raise ValueError(f"coordinate {bad} has level index {int(idx[bad])} and sign "
                             f"{bool(neg[bad])}, outside the grid of {points} points")
        if not counts:
            return None
        shift, size = code_space(points, pairs)
        kc = np.empty(size, np.int64)
        histogram(keys, lo, hi, shift, kc)
        return kc

    parts = threads.split(-(-n // 2), 1 if n < _PAR_MIN else threads.THREADS)  # even starts
    parts = threads.run_ranges("simnet-keys", job, [(2 * a, min(2 * b, n)) for a, b in parts])
    return keys, (sum(parts) if counts else None)


def code_space(points: int, pairs: bool) -> tuple[int, int]:
    """(shift, number of codes) of what the counts count, for a grid of `points`: its keys
    (shift 0, 2G codes), or with `pairs` the pair codes key0 << shift | key1, shift being
    the bits of a key (2^(2·shift) codes)."""
    if not pairs:
        return 0, 2 * points
    shift = (2 * points - 1).bit_length()
    return shift, 1 << (2 * shift)


def key_counts(counts: np.ndarray, points: int, pairs: bool) -> np.ndarray:
    """The counts of the keys (int64 [2G]) from what `of_levels` / `of_rounding` counted: the
    keys themselves, or (pairs) the pair codes, whose two keys each count once (a lone last
    coordinate's zero partner counts as one more key 0)."""
    if not pairs:
        return counts
    shift = code_space(points, pairs)[0]
    table = counts.reshape(1 << shift, 1 << shift)  # [first key, second key]
    return (table.sum(axis=1) + table.sum(axis=0))[:2 * points]


def bucket_ranges(nb: int, d: int, parts: int) -> list[tuple[int, int]]:
    """`parts` contiguous bucket ranges, each starting at an even coordinate (the uniforms
    come in pairs): whole pairs of buckets when d is odd."""
    pair = 2 if d % 2 else 1
    return [(b0 * pair, min(b1 * pair, nb)) for b0, b1 in threads.split(-(-nb // pair), parts)]


def of_rounding(x: np.ndarray, norm: int, seed: int, d: int, fast: tuple[int, int],
                points: int, pairs: bool = False, keys: np.ndarray | None = None,
                off: int = 0, gap_lengths: np.ndarray | None = None):
    """(scales float32 [B], keys [n], counts int64) of the flat float32 gradient x, each
    bucket scaled by its `norm` (`norm_kernels` L2 or LINF, the same bits as
    `quantize.norms_flat`) and rounded with the uniforms of stream `seed`, coordinate i with
    draw off + i (`round_kernels.quantize_rows`' levels, bit for bit): counts of the keys
    ([2G]), or with `pairs` of the pair codes (as `of_levels`). `norm_kernels.ScaleNotFinite`
    when a scale is not finite. fast: the kernels' (grid code, s). keys: where to write them
    (`dtype_for(points)` [n], e.g. a `scratch` array), or None for a new array.

    With `gap_lengths` (`elias.gap_lengths(d)`), a fourth item: the bits of the `elias`
    format's gap codes (`elias_kernels.gap_bits` of the keys), counted a bucket at a time as
    its keys are written, while they are in L1 (`auto` sizes elias by it)."""
    if keys is None:
        keys = np.empty(x.size, dtype_for(points))
    scales = np.empty(-(-x.size // d), np.float32)
    shift, size = code_space(points, pairs)
    glen = np.zeros(0, np.int64) if gap_lengths is None else gap_lengths

    ranges = bucket_ranges(scales.size, d, 1 if x.size < _PAR_MIN else threads.THREADS)
    counts, gaps = np.empty((len(ranges), size), np.int64), np.zeros(len(ranges), np.int64)
    head = (x, scales, norm, seed, off, d, *fast)
    if threads.team_ready(len(ranges)):
        bad = np.empty(len(ranges), np.int64)
        round_keys_ranges(*head, threads.bounds(ranges), keys, shift, counts, glen, gaps, bad)
    else:
        bad = threads.run_ranges("simnet-keys", lambda i, b0, b1: round_keys(
            *head, b0, b1, keys, shift, counts[i], glen, gaps[i:i + 1]),
            [(i, b0, b1) for i, (b0, b1) in enumerate(ranges)])
    if any(b >= 0 for b in bad):
        raise ScaleNotFinite(scales)
    if gap_lengths is None:
        return scales, keys, counts.sum(0)
    return scales, keys, counts.sum(0), int(gaps.sum())


SUBS = 8  # sub-histograms (see `_tally_pairs`)
_PAD = 9  # int64s between them (see `_sub_histograms`)


@jit.inline
def _sub_histograms(size):
    """SUBS zeroed int64 histograms of `size` codes, for `_tally_codes`: one array, sub k at
    k·stride, and the stride. The stride is size + _PAD, not size: subs a multiple of 4 KiB
    apart make the CPU see false dependences between their counters (4K aliasing: qsgd's
    pair histogram 1.2x slower)."""
    stride = size + _PAD
    return np.zeros(SUBS * stride, np.int64), stride


@jit.inline
def _merge(counts, subs, stride):
    """counts = the sum of the sub-histograms."""
    for code in range(counts.size):
        total = 0
        for k in range(SUBS):
            total += subs[U(k * stride + code)]
        counts[U(code)] = total


@jit.inline
def _offsets(stride):
    """The SUBS = 8 sub-histograms' offsets, unsigned (a tuple: LLVM folds each into its
    statement)."""
    return (U(0), U(stride), U(2 * stride), U(3 * stride), U(4 * stride), U(5 * stride),
            U(6 * stride), U(7 * stride))


@jit.inline
def _tally(keys, lo, hi, subs, stride):
    """Add the keys [lo, hi) to the sub-histograms (`_sub_histograms` of 2G codes), SUBS keys
    an iteration, one to each: a run of one key would otherwise serialise on the store ->
    load of a single counter. Returns -1, or the first position whose key is outside [0, 2G)
    (nothing added from it)."""
    top = U(stride - _PAD)  # 2G
    offs = _offsets(stride)
    i = lo
    while i + SUBS <= hi:
        bad = False
        for k in range(SUBS):
            bad |= U(keys[U(i + k)]) >= top
        if bad:
            break  # the loop below finds which
        for k in range(SUBS):
            subs[offs[k] + U(keys[U(i + k)])] += 1
        i += SUBS
    while i < hi:
        k0 = U(keys[U(i)])
        if k0 >= top:
            return i
        subs[k0] += 1
        i += 1
    return -1


_LIST_KEYS = 1024  # keys listed (`pair_vectors`) before their codes are counted
_DENSE = PAIRS - PAIRS // 8  # nonzero pairs of a span's first 32 past which it is not listed


@jit.inline
def _listing():
    """`_tally_pairs`' buffer of listed pair codes."""
    return np.empty(_LIST_KEYS // 2 + PAIRS, np.uint16)


@jit.inline
def _count(codes, m, subs, offs):
    """Add codes[:m] to the sub-histograms (offsets offs), SUBS codes an iteration."""
    j = 0
    while j + SUBS <= m:
        for k in range(SUBS):
            subs[offs[k] + U(codes[U(j + k)])] += 1
        j += SUBS
    while j < m:
        subs[U(codes[U(j)])] += 1
        j += 1


@jit.inline
def _tally_pairs(keys, lo, hi, shift, subs, stride, listed):
    """Add the pair codes keys[i] << shift | keys[i + 1] of i = lo, lo + 2, ... < hi (lo
    even; a lone last key pairs with 0) to the sub-histograms, SUBS pairs an iteration; keys
    valid. (Most pairs share a few codes, and each increment of a counter waits for the last
    one's store: 1 M qsgd keys at 4 bits took 0.25 ms with two counters a code, 0.17 with
    four, 0.14 with eight.) With uint8 keys on `pair_vectors.FAST` hosts, the codes of the
    pairs other than (0, 0) are listed first (`listed`: `_listing()`), 64 keys a call, and
    only those counted; the zero pairs go to code 0 at once (`pair_vectors` has figures).
    A span of _LIST_KEYS whose first 32 pairs have fewer than 1/8 zero pairs (qsgdinf,
    nuqsgd) is counted directly, as listing would not pay."""
    sh = U(shift)
    offs = _offsets(stride)
    i = lo
    if _LIST_PAIRS and keys.itemsize == 1:
        at, out = keys.ctypes.data, listed.ctypes.data
        while i + 2 * PAIRS <= hi:
            span = min(hi - i, _LIST_KEYS) // (2 * PAIRS) * (2 * PAIRS)
            m = list_pairs32(at + i, shift, out)
            if m > _DENSE:  # few zero pairs (a dense grid): listing would not pay
                break
            for a in range(i + 2 * PAIRS, i + span, 2 * PAIRS):
                m += list_pairs32(at + a, shift, out + 2 * m)
            _count(listed, m, subs, offs)
            subs[0] += span // 2 - m
            i += span
    while i + 2 * SUBS <= hi:
        for k in range(SUBS):
            subs[offs[k] + ((U(keys[U(i + 2 * k)]) << sh) | U(keys[U(i + 2 * k + 1)]))] += 1
        i += 2 * SUBS
    while i + 2 <= hi:
        subs[(U(keys[U(i)]) << sh) | U(keys[U(i + 1)])] += 1
        i += 2
    if i < hi:
        subs[U(keys[U(i)]) << sh] += 1


@jit.inline
def _tally_codes(keys, lo, hi, shift, subs, stride, listed):
    """`_tally` the keys [lo, hi) (shift = 0; its return value), or `_tally_pairs` their
    pair codes (shift > 0; -1)."""
    if shift == 0:
        return _tally(keys, lo, hi, subs, stride)
    _tally_pairs(keys, lo, hi, shift, subs, stride, listed)
    return -1


@jit.kernel
def histogram(keys, lo, hi, shift, counts):
    """Counts of coordinates [lo, hi) into counts (int64, overwritten): of the keys ([2G])
    with shift = 0, else of the pair codes ([2^(2·shift)]; lo even; keys valid). Returns -1,
    or the first position whose key is outside [0, 2G) (shift = 0)."""
    subs, stride = _sub_histograms(counts.size)
    bad = _tally_codes(keys, lo, hi, shift, subs, stride, _listing())
    _merge(counts, subs, stride)
    return bad


@jit.kernel
def keys_of(idx, neg, points, lo, hi, keys):
    """keys[i] = 2·idx[i] + neg[i] for i in [lo, hi) (idx: uint8 or int32 level indices; neg:
    bool, dropped where idx[i] = 0; keys: `dtype_for(points)`). Returns -1, or the first
    position whose level index lies outside the grid of `points` (its key is not written)."""
    for i in range(lo, hi):
        v = U(np.int64(idx[U(i)]))  # a negative index wraps to huge
        if v >= U(points):
            return i
        keys[U(i)] = 2 * v + (U(neg[U(i)]) & U(v != 0))  # a zero level has no sign
    return -1


@jit.kernel
def round_keys(x, scales, norm, seed, off, d, kind, s, b0, b1, keys, shift, counts, glen,
               gaps):
    """Scale and round buckets [b0, b1) of the flat gradient x (float32 [n]; the last bucket
    may be cut short; b0·d even) as `norm_kernels` and `round_kernels.quantize_rows` do
    (coordinate i with draw off + i of the stream `seed`), writing each bucket's scale to
    scales[b] (float32), each coordinate's key 2·level + sign to keys (`dtype_for`, [n]) and
    counts (int64, overwritten): of the keys ([2G]) with shift = 0, else of the pair codes
    ([2^(2·shift)]). Norms + rounding + keys + histogram in one pass, a block at a time (a
    bucket's norm just before its rounding reads it from L1). With glen (int64, non-empty:
    `elias_kernels.gap_bits`' table), gaps[0] = the buckets' elias gap bits, each bucket's
    counted once its last key is written. Returns -1, or the first bucket whose scale is not
    finite (nothing rounded from it)."""
    n = min(x.size, b1 * d)
    first = b0 * d
    u, pairs = draw_scratch()
    buf = norm_scratch(d)
    subs, stride = _sub_histograms(counts.size)
    listed = _listing()
    scaled = b0  # buckets [b0, scaled) have their scales
    gapped = b0  # buckets [b0, gapped) have their gap bits counted
    gap_total = 0
    for start in range(first, n, BLOCK):  # (BLOCK even: pairs never straddle blocks)
        m = min(BLOCK, n - start)
        scaled, bad = scale_through(x, d, norm, scaled, (start + m - 1) // d + 1, buf, scales)
        if bad >= 0:
            return bad
        round_from(x, scales, seed, d, kind, s, start, m, off, u, pairs, keys[start:], None)
        _tally_codes(keys, start, start + m, shift, subs, stride, listed)  # (levels in the grid)
        if glen.size:
            whole = b1 if start + m == n else (start + m) // d  # buckets keyed to the end
            for b in range(gapped, whole):
                gap_total += bucket_gap_bits(keys, b * d, min(b * d + d, n), glen)
            gapped = max(gapped, whole)
    _merge(counts, subs, stride)
    gaps[0] = gap_total
    return -1


@jit.parallel_kernel
def round_keys_ranges(x, scales, norm, seed, off, d, kind, s, bounds, keys, shift, counts, glen,
                      gaps, bad):
    """`round_keys` of the bucket ranges [bounds[i], bounds[i + 1]) on numba's threads, one a
    thread (`threads.team_ready`): range i's counts into counts[i] (int64 [R, codes]), its
    gap bits into gaps[i] and its result into bad[i] (int64 [R] each)."""
    for i in jit.prange(bounds.size - 1):
        bad[i] = round_keys(x, scales, norm, seed, off, d, kind, s, bounds[i], bounds[i + 1],
                            keys, shift, counts[i], glen, gaps[i:i + 1])

"""Compiled (numba) kernel of the bucket L2 norms, in the fixed summation order of
`quantize.l2_norms` (whose docstring is the definition), so the bits are the same.

Per bucket: the float64 squares of its d float32 coordinates (exact), zero-padded to the next
power of two P >= d, then halved P/2, P/4, ..., 1 times by adding element i + h to element i;
the norm is the correctly rounded float64 square root of the one sum left (LLVM's sqrt
instruction), rounded to float32. Every step is one IEEE operation (numba compiles without
fast-math: no reassociation, no fused multiply-add), as in the torch code.
"""

from __future__ import annotations

import numpy as np

from . import jit

U = np.uint64


L2, LINF = 0, 1  # the kernels' codes of the two norms
_ABS = np.uint32(0x7FFFFFFF)
_INF = np.uint32(0x7F800000)
_NAN = np.uint32(0x7FC00000)


class ScaleNotFinite(Exception):
    """What the fused encoders (`scale_through` inside) raise when a bucket's scale is not
    finite: a NaN or infinite coordinate, or an L2 norm past float32. `scales` (float32 [B])
    holds it, for the caller's ValueError naming the cause (`Quantizer._finite`)."""

    def __init__(self, scales: np.ndarray):
        super().__init__("a bucket's scale is not finite")
        self.scales = scales


@jit.inline
def scratch(d):
    """The float64 buffer of `norms_into` for buckets of d coordinates: P >= d elements, P the
    next power of two."""
    width = 1
    while width < d:
        width *= 2
    return np.empty(width, np.float64)


@jit.inline
def _squares_halved_thrice(x, base, e, buf):
    """buf[:e] = the whole bucket x[base:base + 8e] (8e a power of two) squared and halved
    three times, in the tree's order, straight from its coordinates (three passes over buf
    fewer: with `_sum16`, 500 K coordinates' norms at d = 512 took 0.028 ms, not 0.045).
    Returns e, the halving's next width."""
    for i in range(e):
        p = base + i
        s0, s1 = np.float64(x[U(p)]), np.float64(x[U(p + e)])
        s2, s3 = np.float64(x[U(p + 2 * e)]), np.float64(x[U(p + 3 * e)])
        s4, s5 = np.float64(x[U(p + 4 * e)]), np.float64(x[U(p + 5 * e)])
        s6, s7 = np.float64(x[U(p + 6 * e)]), np.float64(x[U(p + 7 * e)])
        # halving 1 adds element i + 4e to i, halving 2 i + 2e, halving 3 i + e
        buf[U(i)] = ((s0 * s0 + s4 * s4) + (s2 * s2 + s6 * s6)) \
            + ((s1 * s1 + s5 * s5) + (s3 * s3 + s7 * s7))
    return e


@jit.inline
def _sum16(buf):
    """The last four halvings of buf[:16], in the tree's order, in registers (four short
    loops cost more than their adds)."""
    a0, a1, a2, a3 = buf[0] + buf[8], buf[1] + buf[9], buf[2] + buf[10], buf[3] + buf[11]
    a4, a5, a6, a7 = buf[4] + buf[12], buf[5] + buf[13], buf[6] + buf[14], buf[7] + buf[15]
    a0, a1, a2, a3 = a0 + a4, a1 + a5, a2 + a6, a3 + a7
    return (a0 + a2) + (a1 + a3)


@jit.inline
def norms_into(x, d, norm, b0, b1, buf, out):
    """out[b] (float32) = the scale of bucket b of the flat float32 x, for b in [b0, b1): its
    L2 norm (norm = L2; buf from `scratch`) or its max magnitude (LINF; NaN for a bucket
    holding a NaN or an infinity). A range a call: an inlined helper costs reference-count
    updates per call, ~10% of a bucket's norm."""
    n = x.size
    if norm == L2:
        width = buf.size
        half = width >> 1
        for b in range(b0, b1):
            base = b * d
            if width == d and width >= 16 and base + d <= n:
                h = _squares_halved_thrice(x, base, width >> 3, buf)
            elif width > 1 and base + d <= n:
                # a whole bucket: squares and the first halving in one loop (element i + half
                # exists for i < d - half; the rest of the first half adds a zero: no-op)
                for i in range(d - half):
                    v = np.float64(x[U(base + i)])
                    w = np.float64(x[U(base + i + half)])
                    buf[U(i)] = v * v + w * w
                for i in range(d - half, half):
                    v = np.float64(x[U(base + i)])
                    buf[U(i)] = v * v
                h = half
            else:  # one coordinate per bucket, or the short last bucket: squares, zero-padded
                m = min(d, n - base)
                for i in range(m):
                    v = np.float64(x[U(base + i)])
                    buf[U(i)] = v * v
                for i in range(m, width):
                    buf[U(i)] = 0.0
                h = width
            while h > 16:
                h >>= 1
                for i in range(h):
                    buf[U(i)] = buf[U(i)] + buf[U(i + h)]
            if h == 16:
                total = _sum16(buf)
            else:
                while h > 1:
                    h >>= 1
                    for i in range(h):
                        buf[U(i)] = buf[U(i)] + buf[U(i + h)]
                total = buf[0]
            out[U(b)] = np.float32(np.sqrt(total))
    else:  # on the bit patterns: for finite non-negative floats the unsigned order is the
        # float order, so the max is an integer max (which LLVM vectorises)
        bits = x.view(np.uint32)
        out_bits = out.view(np.uint32)
        for b in range(b0, b1):
            top = np.uint32(0)
            for i in range(b * d, min((b + 1) * d, n)):
                top = max(top, bits[U(i)] & _ABS)
            out_bits[U(b)] = top if top < _INF else _NAN


@jit.inline
def scale_through(x, d, norm, scaled, upto, buf, scales):
    """For a fused encoder about to round up to bucket `upto` (exclusive), the buckets of its
    range before `scaled` having their scales: the scales of buckets [scaled, upto) into
    scales (as `norms_into`). Returns (the new `scaled`, -1), or (scaled, b) for the first
    bucket b whose scale is not finite (NaN or infinite: nothing may be rounded with it)."""
    if upto <= scaled:
        return scaled, -1
    norms_into(x, d, norm, scaled, upto, buf, scales)
    for b in range(scaled, upto):
        if not scales[U(b)] < np.inf:
            return scaled, b
    return upto, -1


@jit.kernel
def l2_norms(x, d, b0, b1, out):
    """Norms of the buckets [b0, b1) of the flat float32 x (bucket b = x[b·d:(b+1)·d], the
    last one zero-padded where x ends mid-bucket) into out[b0:b1] (float32)."""
    norms_into(x, d, L2, b0, b1, scratch(d), out)


@jit.kernel
def linf_norms(x, d, b0, b1, out):
    """max |x_i| of the buckets [b0, b1) of the flat float32 x (as `l2_norms`; the padding of
    a short last bucket is zero) into out[b0:b1] (float32), exact; NaN for a bucket holding a
    NaN or an infinity."""
    norms_into(x, d, LINF, b0, b1, scratch(d), out)

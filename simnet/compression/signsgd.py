"""`signsgd` and `efsignsgd`: one sign bit per coordinate plus a float32 scale per bucket.

Scale of a bucket = mean |x_i| over its coordinates (the l1 norm over d, as in
Karimireddy et al. 2019, "Error Feedback Fixes SignSGD", Alg. 1). Decoded value:
scale · sgn(x_i), with sgn(0) = +1. `signsgd` runs without error feedback by default,
`efsignsgd` (same payload) with it.

Wire format (little-endian), B = ⌈numel / bucket_size⌉:
    uint32 numel | B × float32 scale | ⌈numel / 8⌉ bytes of sign bits (1 = negative,
    MSB first, zero padding bits)
    total = 4 + 4·B + ⌈numel/8⌉ bytes.
The 4-byte numel header lets the decoder reject a payload decoded with the wrong numel.

This module also holds the small wire helpers (header, buckets, bit packing) the other
baselines share.
"""

from __future__ import annotations

import struct
from typing import Callable

import numpy as np
import torch

from .coding import pack_fixed, unpack_fixed
from .base import check_numel, register
from .error_feedback import FeedbackCompressor

_HEADER = struct.Struct("<I")  # numel, uint32 little-endian
HEADER_BYTES = _HEADER.size


# --- wire helpers shared by onebit, terngrad, topk, powersgd ---------------------------------

def check_bucket_size(name: str, bucket_size: int) -> int:
    if isinstance(bucket_size, bool) or not isinstance(bucket_size, int) or bucket_size < 1:
        raise ValueError(f"{name}: bucket_size must be a positive int, got {bucket_size!r}")
    return bucket_size


def num_buckets(numel: int, bucket_size: int) -> int:
    return -(-numel // bucket_size)


def write_header(numel: int) -> bytes:
    if numel >= 2**32:
        raise ValueError(f"numel={numel} does not fit the uint32 header")
    return _HEADER.pack(numel)


def open_payload(
    name: str, payload: bytes, numel: int, payload_bytes: Callable[[int], int]
) -> memoryview:
    """Check numel, the header and the total length (`payload_bytes(numel)`, header
    included); return the body."""
    numel = check_numel(numel)
    expected = payload_bytes(numel)
    if len(payload) < HEADER_BYTES:
        raise ValueError(f"{name}: payload has {len(payload)} bytes, too short for its header")
    (sent,) = _HEADER.unpack_from(payload)
    if sent != numel:
        raise ValueError(f"{name}: payload was encoded for numel={sent}, decoder got {numel}")
    if len(payload) != expected:
        raise ValueError(
            f"{name}: payload has {len(payload)} bytes, expected {expected} for numel={numel}"
        )
    return memoryview(payload)[HEADER_BYTES:]


def to_buckets(x: torch.Tensor, bucket_size: int) -> torch.Tensor:
    """[B, bucket_size] view of x, zero-padded at the end."""
    b = num_buckets(x.numel(), bucket_size)
    padded = x.new_zeros(b * bucket_size)
    padded[: x.numel()] = x
    return padded.view(b, bucket_size)


def bucket_counts(numel: int, bucket_size: int, device: torch.device) -> torch.Tensor:
    """Real (unpadded) coordinates per bucket, float32."""
    starts = torch.arange(num_buckets(numel, bucket_size), device=device) * bucket_size
    return (numel - starts).clamp(max=bucket_size).float()


def f32_bytes(t: torch.Tensor) -> bytes:
    return t.detach().float().cpu().numpy().astype("<f4", copy=False).tobytes()


def read_f32(name: str, buf: memoryview, what: str) -> torch.Tensor:
    values = np.frombuffer(buf, dtype="<f4").astype(np.float32)
    if not np.isfinite(values).all():
        raise ValueError(f"{name}: payload holds a non-finite {what}")
    return torch.from_numpy(values)


def pack_codes(codes: torch.Tensor, bits: int) -> bytes:
    """Pack unsigned codes < 2**bits, `bits` per code, MSB first, zero padding at the end
    (the bit layout of the quantizers' `fixed` format: coding.pack_fixed)."""
    return pack_fixed(codes.reshape(-1).cpu(), bits).numpy().tobytes()


def unpack_codes(name: str, buf: memoryview, count: int, bits: int) -> torch.Tensor:
    """Inverse of pack_codes (int64 codes); nonzero padding bits mean corruption."""
    raw = torch.frombuffer(bytearray(buf), dtype=torch.uint8) if len(buf) else torch.zeros(0, dtype=torch.uint8)
    if raw.numel() != packed_len(count, bits):
        raise ValueError(f"{name}: expected {packed_len(count, bits)} bytes of codes, got {raw.numel()}")
    spare = 8 * raw.numel() - count * bits
    if spare and int(raw[-1]) & ((1 << spare) - 1):
        raise ValueError(f"{name}: payload has nonzero padding bits")
    return unpack_fixed(raw, count, bits).to(torch.int64)


def packed_len(count: int, bits: int) -> int:
    return -(-count * bits // 8)


def read_scales_and_codes(name: str, body: memoryview, numel: int, bucket_size: int,
                          bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The body of a [float32 scale per bucket][numel codes of `bits`] payload: (scales, which
    must be >= 0; int64 codes)."""
    b = num_buckets(numel, bucket_size)
    scale = read_f32(name, body[: 4 * b], "scale")
    if (scale < 0).any():
        raise ValueError(f"{name}: payload holds a negative scale")
    return scale, unpack_codes(name, body[4 * b :], numel, bits)


# --- the method ------------------------------------------------------------------------------

@register("signsgd")
class SignSGD(FeedbackCompressor):
    """Scaled sign: 1 bit/coordinate + float32 mean|x| per bucket (default 512 coordinates).

    Params: bucket_size (coordinates per scale, default 512), error_feedback (default False).
    Deterministic (the generator is unused).
    """

    def __init__(self, bucket_size: int = 512, error_feedback: bool = False) -> None:
        self.bucket_size = check_bucket_size(self.name, bucket_size)
        self.error_feedback = bool(error_feedback)
        self.memory = None

    def payload_bytes(self, numel: int) -> int:
        return HEADER_BYTES + 4 * num_buckets(numel, self.bucket_size) + packed_len(numel, 1)

    def _encode(self, x: torch.Tensor, generator: torch.Generator | None) -> bytes:
        n = x.numel()
        counts = bucket_counts(n, self.bucket_size, x.device)
        scale = to_buckets(x.abs(), self.bucket_size).sum(dim=1) / counts
        return write_header(n) + f32_bytes(scale) + pack_codes(x < 0, 1)

    def decode(self, payload: bytes, numel: int) -> torch.Tensor:
        body = open_payload(self.name, payload, numel, self.payload_bytes)
        scale, negative = read_scales_and_codes(self.name, body, numel, self.bucket_size, 1)
        magnitude = scale.repeat_interleave(self.bucket_size)[:numel]
        return torch.where(negative.bool(), -magnitude, magnitude)


@register("efsignsgd")
class EFSignSGD(SignSGD):
    """EF-signSGD (Karimireddy et al. 2019): `signsgd` with error feedback on by default."""

    def __init__(self, bucket_size: int = 512, error_feedback: bool = True) -> None:
        super().__init__(bucket_size=bucket_size, error_feedback=error_feedback)

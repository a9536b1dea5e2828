"""`onebit`: 1-bit SGD (Seide et al., Interspeech 2014) with error feedback.

Per bucket (the paper's "column"; `bucket_size` consecutive coordinates, default 512) each
coordinate is quantized to one bit, x_i < 0 or not, and reconstructed as the bucket's mean
of its non-negative values (bit 0) or of its negative values (bit 1): the two values that
minimise the squared error for a threshold at 0. A side with no coordinate sends 0.
The quantization error goes into error feedback, on by default as in the paper.

Wire format (little-endian), B = ⌈numel / bucket_size⌉:
    uint32 numel | B × (float32 mean_nonneg, float32 mean_neg) | ⌈numel / 8⌉ bytes of bits
    (1 = negative, MSB first, zero padding bits)
    total = 4 + 8·B + ⌈numel/8⌉ bytes.
"""

from __future__ import annotations

import torch

from .base import register
from .error_feedback import FeedbackCompressor
from .signsgd import (
    HEADER_BYTES,
    check_bucket_size,
    f32_bytes,
    num_buckets,
    open_payload,
    pack_codes,
    packed_len,
    read_f32,
    to_buckets,
    unpack_codes,
    write_header,
)


@register("onebit")
class OneBit(FeedbackCompressor):
    """1 bit/coordinate + two float32 reconstruction values per bucket.

    Params: bucket_size (coordinates, default 512), error_feedback (default True).
    Deterministic (the generator is unused).
    """

    def __init__(self, bucket_size: int = 512, error_feedback: bool = True) -> None:
        self.bucket_size = check_bucket_size(self.name, bucket_size)
        self.error_feedback = bool(error_feedback)
        self.memory = None

    def payload_bytes(self, numel: int) -> int:
        return HEADER_BYTES + 8 * num_buckets(numel, self.bucket_size) + packed_len(numel, 1)

    def _encode(self, x: torch.Tensor, generator: torch.Generator | None) -> bytes:
        n, d = x.numel(), self.bucket_size
        values = to_buckets(x, d)
        valid = to_buckets(torch.ones_like(x, dtype=torch.bool), d)  # padding is not data
        neg = values < 0
        nonneg = valid & ~neg
        mean_nonneg = (values * nonneg).sum(1) / nonneg.sum(1).clamp(min=1)
        mean_neg = (values * neg).sum(1) / neg.sum(1).clamp(min=1)
        means = torch.stack([mean_nonneg, mean_neg], dim=1)
        return b"".join([write_header(n), f32_bytes(means), pack_codes(x < 0, 1)])

    def decode(self, payload: bytes, numel: int) -> torch.Tensor:
        body = open_payload(self.name, payload, numel, self.payload_bytes)
        b = num_buckets(numel, self.bucket_size)
        means = read_f32(self.name, body[: 8 * b], "reconstruction value").view(b, 2)
        if (means[:, 0] < 0).any() or (means[:, 1] > 0).any():
            raise ValueError(f"{self.name}: payload has a reconstruction value of the wrong sign")
        negative = unpack_codes(self.name, body[8 * b :], numel, 1).bool()
        d = self.bucket_size
        pos = means[:, 0].repeat_interleave(d)[:numel]
        neg = means[:, 1].repeat_interleave(d)[:numel]
        return torch.where(negative, neg, pos)

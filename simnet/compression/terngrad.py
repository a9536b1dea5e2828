"""`terngrad`: stochastic ternary gradients (Wen et al., NeurIPS 2017).

Per bucket (default 512 coordinates) the scale is s = max |x_i|; each coordinate becomes
s · sgn(x_i) · b_i with b_i ~ Bernoulli(|x_i| / s), so Q(x) ∈ {-s, 0, +s} and E[Q(x)] = x.
Per coordinate Var = s·|x_i| − x_i² (a two-point distribution). A zero bucket encodes as
zeros. The paper's per-layer scale is a bucket here; its gradient clipping is not applied
(clip before encoding if you want it).

Wire format (little-endian), B = ⌈numel / bucket_size⌉:
    uint32 numel | B × float32 scale | ⌈2·numel / 8⌉ bytes of 2-bit codes
    (0 = zero, 1 = +s, 2 = −s; 3 is invalid; MSB first, zero padding bits)
    total = 4 + 4·B + ⌈numel/4⌉ bytes.

Randomness: one uniform draw per coordinate from `generator`, which must live on the
gradient's device.
"""

from __future__ import annotations

import torch

from .base import register
from .error_feedback import FeedbackCompressor
from .uniforms import uniforms
from .signsgd import (
    HEADER_BYTES,
    check_bucket_size,
    f32_bytes,
    num_buckets,
    open_payload,
    pack_codes,
    packed_len,
    read_scales_and_codes,
    to_buckets,
    write_header,
)


@register("terngrad")
class TernGrad(FeedbackCompressor):
    """Unbiased ternary quantizer: 2 bits/coordinate + float32 max|x| per bucket.

    Params: bucket_size (coordinates, default 512), error_feedback (default False, as in
    the paper: the quantizer is unbiased).
    """

    def __init__(self, bucket_size: int = 512, error_feedback: bool = False) -> None:
        self.bucket_size = check_bucket_size(self.name, bucket_size)
        self.error_feedback = bool(error_feedback)
        self.memory = None

    def payload_bytes(self, numel: int) -> int:
        return HEADER_BYTES + 4 * num_buckets(numel, self.bucket_size) + packed_len(numel, 2)

    def _encode(self, x: torch.Tensor, generator: torch.Generator | None) -> bytes:
        n, d = x.numel(), self.bucket_size
        magnitude = to_buckets(x.abs(), d)
        scale = magnitude.amax(dim=1) if n else magnitude.new_zeros(0)
        # |x_i| / max|x| <= 1 exactly in IEEE division; a zero bucket keeps probability 0.
        safe = torch.where(scale > 0, scale, torch.ones_like(scale))
        prob = (magnitude / safe[:, None]).flatten()[:n]
        keep = uniforms(n, generator, x.device) < prob
        codes = keep.to(torch.uint8) * (1 + (x < 0).to(torch.uint8))
        return write_header(n) + f32_bytes(scale) + pack_codes(codes, 2)

    def decode(self, payload: bytes, numel: int) -> torch.Tensor:
        body = open_payload(self.name, payload, numel, self.payload_bytes)
        scale, codes = read_scales_and_codes(self.name, body, numel, self.bucket_size, 2)
        if (codes == 3).any():
            raise ValueError(f"{self.name}: payload holds the invalid ternary code 3")
        s = scale.repeat_interleave(self.bucket_size)[:numel]
        sign = (codes == 1).float() - (codes == 2).float()
        return s * sign

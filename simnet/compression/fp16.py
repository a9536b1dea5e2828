"""`fp16`: IEEE-754 half precision, 2 bytes per coordinate, all-reduce compatible.

Wire format: numel little-endian binary16 values, no header (length = 2·numel bytes).

Values beyond the half range are clamped to ±65504 (the largest finite half) rather than
overflowing to ±inf, which would poison every sum it enters. Magnitudes below ~6e-8 flush to
zero and below ~6.1e-5 lose precision (subnormals): that is what real fp16 training sends.
"""

from __future__ import annotations

import numpy as np
import torch

from .base import Compressor, check_gradient, read_dense, register

FP16_MAX = 65504.0  # largest finite IEEE binary16 value


@register("fp16")
class FP16(Compressor):
    """Half-precision cast with clamping to ±65504; 2·numel bytes, deterministic."""

    allreduce_compatible = True

    def __init__(self) -> None:
        pass

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> bytes:
        x = check_gradient(x).detach()
        half = x.clamp(-FP16_MAX, FP16_MAX).half()
        return half.cpu().numpy().astype("<f2", copy=False).tobytes()

    def decode(self, payload: bytes, numel: int) -> torch.Tensor:
        values = read_dense("fp16", payload, numel, "<f2")
        # The encoder clamps, so inf/NaN can only come from a corrupted payload.
        if not np.isfinite(values).all():
            raise ValueError("fp16: payload holds inf or NaN, which the encoder never writes")
        return torch.from_numpy(values)

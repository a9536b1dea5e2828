"""`none`: uncompressed fp32, the baseline every speedup is measured against."""

from __future__ import annotations

import numpy as np
import torch

from .base import Compressor, check_gradient, check_numel, register


@register("none")
class NoCompression(Compressor):
    """Sends the gradient as little-endian float32: 4 bytes per coordinate, no header."""

    allreduce_compatible = True

    def __init__(self) -> None:
        pass

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> bytes:
        x = check_gradient(x)
        return x.detach().cpu().numpy().astype("<f4", copy=False).tobytes()

    def decode(self, payload: bytes, numel: int) -> torch.Tensor:
        numel = check_numel(numel)
        if len(payload) != 4 * numel:
            raise ValueError(
                f"none: payload has {len(payload)} bytes, expected {4 * numel} for numel={numel}"
            )
        values = np.frombuffer(payload, dtype="<f4").astype(np.float32)
        return torch.from_numpy(values.copy())

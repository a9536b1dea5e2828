"""`none`: uncompressed fp32, the baseline every speedup is measured against."""

from __future__ import annotations

import torch

from .base import Compressor, check_gradient, read_dense, register


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
        return torch.from_numpy(read_dense("none", payload, numel, "<f4"))

"""`topk`: keep the k largest-magnitude coordinates, with error feedback by default.

k = ⌈ratio · numel⌉ (at least 1 for a non-empty gradient), or the fixed `k` (at most numel);
give one of the two. Ties in magnitude are broken by torch.topk, deterministically for a
device. Error feedback is on by default (Stich et al. 2018, "Sparsified SGD with Memory";
top-k without memory stalls).

Wire format (little-endian):
    uint32 numel | k × uint32 index (strictly increasing) | k × float32 value
    total = 4 + 8·k bytes.
The decoder recomputes k from numel and rejects unsorted, repeated or out-of-range indices.
Not all-reduce compatible (workers keep different coordinates).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .base import register
from .error_feedback import FeedbackCompressor
from .signsgd import HEADER_BYTES, f32_bytes, open_payload, read_f32, write_header


@register("topk")
class TopK(FeedbackCompressor):
    """Top-k sparsification. Params: ratio (fraction kept, default 0.01 when k is not given),
    k (fixed count, default None), error_feedback (default True). Deterministic."""

    def __init__(
        self, ratio: float | None = None, k: int | None = None, error_feedback: bool = True
    ) -> None:
        if ratio is not None and k is not None:
            raise ValueError("topk: give either ratio or k, not both")
        if k is not None:
            if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                raise ValueError(f"topk: k must be a positive int, got {k!r}")
        else:
            ratio = 0.01 if ratio is None else ratio
            if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
                raise ValueError(f"topk: ratio must be a number in (0, 1], got {ratio!r}")
            if not 0 < ratio <= 1:
                raise ValueError(f"topk: ratio must be in (0, 1], got {ratio!r}")
            ratio = float(ratio)
        self.ratio = ratio
        self.k = k
        self.error_feedback = bool(error_feedback)
        self.memory = None

    def kept(self, numel: int) -> int:
        """How many coordinates a gradient of `numel` keeps."""
        if numel == 0:
            return 0
        if self.k is not None:
            return min(self.k, numel)
        # Rounding guards 0.07·100 = 7.000000000000001 from becoming 8.
        return min(numel, max(1, math.ceil(round(self.ratio * numel, 6))))

    def payload_bytes(self, numel: int) -> int:
        return HEADER_BYTES + 8 * self.kept(numel)

    def _encode(self, x: torch.Tensor, generator: torch.Generator | None) -> bytes:
        n = x.numel()
        k = self.kept(n)
        index = x.abs().topk(k, sorted=False).indices.sort().values
        index_bytes = index.cpu().numpy().astype("<u4").tobytes()
        return write_header(n) + index_bytes + f32_bytes(x[index])

    def decode(self, payload: bytes, numel: int) -> torch.Tensor:
        body = open_payload(self.name, payload, numel, self.payload_bytes)
        k = self.kept(numel)
        index = np.frombuffer(body[: 4 * k], dtype="<u4").astype(np.int64)
        if k and (index[-1] >= numel or (np.diff(index) <= 0).any()):
            raise ValueError(
                f"{self.name}: payload indices must be strictly increasing and < numel={numel}"
            )
        values = read_f32(self.name, body[4 * k :], "value")
        out = torch.zeros(numel, dtype=torch.float32)
        out[torch.from_numpy(index)] = values
        return out

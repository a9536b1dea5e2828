"""`powersgd`: rank-r PowerSGD (Vogels et al., NeurIPS 2019, Alg. 1) with error feedback.

The flat gradient (plus the error-feedback memory) is laid out row-major as an m × n
matrix M: by default near-square, m = ⌈√numel⌉ and n = ⌈numel / m⌉, zero-padded at the end
to m·n; or `shape=(m, n)` with m·n ≥ numel. One power iteration with a warm start:
    P = M Q_prev;  P = orthonormal basis of P (torch.linalg.qr);  Q = M^T P
and the worker sends P (m × r) and Q (n × r); decode is P Q^T, cropped to numel. Q is kept
in the instance as the next step's warm start; the first Q_prev is standard normal, drawn
from `generator` (which must live on the gradient's device). r = min(rank, m, n).

Real PowerSGD all-reduces in two rounds: P = M Q_prev (linear in M, so summable), then,
after every worker orthogonalises the same summed P, Q = M^T P (linear again). Hence
`allreduce_compatible = True`. Here each worker orthogonalises its own P, so the decoded
estimate is the single-worker one; the payload holds both factors, so the simulator charges
the bytes of both rounds.

Wire format (little-endian):
    uint32 numel | m·r float32 P (row-major) | n·r float32 Q (row-major)
    total = 4 + 4·r·(m + n) bytes.
"""

from __future__ import annotations

import math

import torch

from .base import register
from .error_feedback import FeedbackCompressor
from .signsgd import HEADER_BYTES, f32_bytes, open_payload, read_f32, write_header


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"powersgd: {name} must be a positive int, got {value!r}")
    return value


@register("powersgd")
class PowerSGD(FeedbackCompressor):
    """Low-rank compression. Params: rank (default 2), shape ((m, n) or None for
    near-square), error_feedback (default True). Keeps the warm-start Q per instance."""

    allreduce_compatible = True

    def __init__(
        self,
        rank: int = 2,
        shape: tuple[int, int] | None = None,
        error_feedback: bool = True,
    ) -> None:
        self.rank = _positive_int("rank", rank)
        if shape is not None:
            if not isinstance(shape, (tuple, list)) or len(shape) != 2:
                raise ValueError(f"powersgd: shape must be (m, n), got {shape!r}")
            shape = (_positive_int("shape[0]", shape[0]), _positive_int("shape[1]", shape[1]))
        self.shape = shape
        self.error_feedback = bool(error_feedback)
        self.memory = None
        self.q: torch.Tensor | None = None  # warm start, n × r

    def dims(self, numel: int) -> tuple[int, int, int]:
        """(m, n, r) used for a gradient of `numel` coordinates."""
        if self.shape is not None:
            m, n = self.shape
            if m * n < numel:
                raise ValueError(f"powersgd: shape {self.shape} holds fewer than {numel} values")
        elif numel == 0:
            m = n = 0
        else:
            m = math.isqrt(numel - 1) + 1  # ⌈√numel⌉
            n = -(-numel // m)
        return m, n, min(self.rank, m, n)

    def payload_bytes(self, numel: int) -> int:
        m, n, r = self.dims(numel)
        return HEADER_BYTES + 4 * r * (m + n)

    def _encode(self, x: torch.Tensor, generator: torch.Generator | None) -> bytes:
        numel = x.numel()
        m, n, r = self.dims(numel)
        matrix = x.new_zeros(m * n)
        matrix[:numel] = x
        matrix = matrix.view(m, n)
        q = self.q
        if q is None:
            q = torch.randn(n, r, generator=generator, device=x.device)
        elif q.shape != (n, r):
            raise ValueError(
                f"powersgd: warm-start Q is {tuple(q.shape)} but this gradient needs {(n, r)}; "
                "one instance serves one gradient (call reset())"
            )
        p, _ = torch.linalg.qr(matrix @ q.to(x.device))  # reduced: m × r, orthonormal
        q = matrix.T @ p
        self.q = q  # only after success: a failed encode keeps the old state
        return write_header(numel) + f32_bytes(p) + f32_bytes(q)

    def decode(self, payload: bytes, numel: int) -> torch.Tensor:
        body = open_payload(self.name, payload, numel, self.payload_bytes)
        m, n, r = self.dims(numel)
        p = read_f32(self.name, body[: 4 * m * r], "P entry").view(m, r)
        q = read_f32(self.name, body[4 * m * r :], "Q entry").view(n, r)
        return (p @ q.T).flatten()[:numel]

    def encode_batch(
        self, xs: torch.Tensor, generator: torch.Generator | None = None
    ) -> list[bytes]:
        raise ValueError(
            "powersgd: encode_batch would chain one worker's warm start through K gradients; "
            "make one instance per worker and call encode"
        )

    def reset(self) -> None:
        """Forget the error-feedback memory and the warm-start Q."""
        self.memory = None
        self.q = None

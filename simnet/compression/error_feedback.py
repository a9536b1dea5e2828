"""Error feedback (memory): send the compression error of step t along with step t+1.

Each step a worker compresses `x + memory` instead of `x`, and keeps what the compressor
dropped: `memory <- (x + memory) - decode(payload)`. Summed over T steps the decoded outputs
telescope: sum(decoded) + memory_T == sum(x) (up to float32 rounding), so nothing is lost,
only delayed (Seide et al. 2014; Karimireddy et al. 2019, "EF-SGD"; Vogels et al. 2019).

Two ways to get it:
* `ErrorFeedback(inner)`: wrap any compressor instance;
* `FeedbackCompressor`: a base class for methods whose paper uses error feedback; they take an
  `error_feedback: bool` constructor parameter, so
  `compression.get("topk", ratio=0.01, error_feedback=False)` turns it off.

The memory is per instance (one instance = one worker); `reset()` clears it. It lives on the
gradient's device, in float32, with the gradient's numel; a gradient of another numel raises
ValueError (call `reset()` first if that is really meant).
"""

from __future__ import annotations

from typing import Callable

import torch

from .base import Compressor, check_gradient

__all__ = ["ErrorFeedback", "FeedbackCompressor"]

Encode = Callable[[torch.Tensor, "torch.Generator | None"], bytes]
Decode = Callable[[bytes, int], torch.Tensor]


def feedback_step(
    memory: torch.Tensor | None,
    x: torch.Tensor,
    encode: Encode,
    decode: Decode,
    generator: torch.Generator | None,
) -> tuple[bytes, torch.Tensor]:
    """One error-feedback step on a validated float32 gradient: (payload, new memory).

    Raises before touching any state, so a failed encode leaves the memory as it was.
    """
    if memory is None:
        corrected = x
    else:
        if memory.numel() != x.numel():
            raise ValueError(
                f"error feedback memory holds {memory.numel()} coordinates but the gradient has "
                f"{x.numel()}; one compressor instance serves one gradient (call reset())"
            )
        corrected = x + memory.to(x.device)
    payload = encode(corrected, generator)
    decoded = decode(payload, x.numel()).to(corrected.device)
    return payload, corrected - decoded


class FeedbackCompressor(Compressor):
    """Base for methods with an `error_feedback` switch.

    Subclasses set `self.error_feedback` in `__init__`, implement `_encode(x, generator)` on a
    validated, detached float32 tensor, and `decode`. `encode` adds the memory when the
    switch is on.
    """

    error_feedback: bool = False
    memory: torch.Tensor | None = None

    def _encode(self, x: torch.Tensor, generator: torch.Generator | None) -> bytes:
        raise NotImplementedError

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> bytes:
        x = check_gradient(x).detach()
        if not self.error_feedback:
            return self._encode(x, generator)
        payload, self.memory = feedback_step(self.memory, x, self._encode, self.decode, generator)
        return payload

    def encode_batch(
        self, xs: torch.Tensor, generator: torch.Generator | None = None
    ) -> list[bytes]:
        # The rows would share (and chain through) one worker's memory: refuse, do not guess.
        if self.error_feedback:
            raise ValueError(
                f"{self.name}: encode_batch on a compressor with error feedback would mix the "
                "memory of K gradients; make one instance per worker and call encode"
            )
        return super().encode_batch(xs, generator=generator)

    def reset(self) -> None:
        """Forget the error-feedback memory (and any other per-worker state)."""
        self.memory = None


class ErrorFeedback(Compressor):
    """Wrap `inner` with error feedback. The payload is exactly the inner one (same bytes).

    `allreduce_compatible` follows the inner compressor.
    """

    name = "error_feedback"

    def __init__(self, inner: Compressor) -> None:
        if not isinstance(inner, Compressor):
            raise ValueError(f"ErrorFeedback wraps a Compressor, got {type(inner).__name__}")
        if getattr(inner, "error_feedback", False):
            raise ValueError(
                f"{inner.name} already runs error feedback; build it with "
                "error_feedback=False before wrapping it"
            )
        self.inner = inner
        self.allreduce_compatible = inner.allreduce_compatible
        self.memory: torch.Tensor | None = None

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> bytes:
        x = check_gradient(x).detach()
        payload, self.memory = feedback_step(
            self.memory, x, self.inner.encode, self.inner.decode, generator
        )
        return payload

    def decode(self, payload: bytes, numel: int) -> torch.Tensor:
        return self.inner.decode(payload, numel)

    def encode_batch(
        self, xs: torch.Tensor, generator: torch.Generator | None = None
    ) -> list[bytes]:
        raise ValueError(
            "ErrorFeedback.encode_batch would mix the memory of K gradients; "
            "make one instance per worker and call encode"
        )

    def reset(self) -> None:
        """Forget the memory, and the inner compressor's state if it has any."""
        self.memory = None
        if hasattr(self.inner, "reset"):
            self.inner.reset()

    def config(self) -> dict:
        return {"name": self.name, "inner": self.inner.config()}

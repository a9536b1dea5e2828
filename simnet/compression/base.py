"""The compressor protocol and the registry behind `compression.get(...)`.

A compressor turns a 1-D float32 gradient into real bytes (`encode`) and back into an
estimate (`decode`). The simulator charges exactly `len(payload)` bytes on the wire.

One instance belongs to one worker: stateful methods (error feedback, PowerSGD's warm
start) keep their per-worker state inside the instance, so the engine makes one per worker.
"""

from __future__ import annotations

import inspect
from typing import Callable, ClassVar

import numpy as np
import torch

__all__ = ["Compressor", "register", "get", "names", "check_gradient", "check_numel"]

_REGISTRY: dict[str, type["Compressor"]] = {}


class Compressor:
    """Base class. Subclasses set `name`, implement `encode` and `decode`.

    Class attributes:
        name: the registry key used in scenario files.
        allreduce_compatible: payloads of several workers can be summed element-wise in a
            ring/tree all-reduce (fp32, fp16, PowerSGD factors). Otherwise the collective must
            move encoded payloads (all-gather or parameter server).
    """

    name: ClassVar[str] = ""
    allreduce_compatible: ClassVar[bool] = False

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> bytes:
        raise NotImplementedError

    def decode(self, payload: bytes, numel: int) -> torch.Tensor:
        raise NotImplementedError

    def encode_batch(
        self, xs: torch.Tensor, generator: torch.Generator | None = None
    ) -> list[bytes]:
        """Encode K gradients given as a [K, n] tensor; subclasses may vectorise across K."""
        if xs.dim() != 2:
            raise ValueError(f"encode_batch expects a [K, n] tensor, got shape {tuple(xs.shape)}")
        return [self.encode(x, generator=generator) for x in xs]

    def config(self) -> dict:
        """The parameters that define this compressor (for provenance and cache keys)."""
        params = {}
        for key in inspect.signature(type(self).__init__).parameters:
            if key != "self" and hasattr(self, key):
                params[key] = getattr(self, key)
        return {"name": self.name, **params}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


def register(name: str) -> Callable[[type[Compressor]], type[Compressor]]:
    """Class decorator: make a compressor available as `compression.get(name, ...)`."""

    def wrap(cls: type[Compressor]) -> type[Compressor]:
        if name in _REGISTRY:
            raise ValueError(f"compressor {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def get(name: str, **params) -> Compressor:
    """Build a compressor by name; unknown names or parameters raise ValueError."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown compressor {name!r}; known: {', '.join(names())}")
    cls = _REGISTRY[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(
            f"compressor {name!r} has no parameter {unknown[0]!r}; it takes: "
            f"{', '.join(accepted) or 'no parameters'}"
        )
    return cls(**params)


def names() -> list[str]:
    """Every registered compressor name, sorted."""
    return sorted(_REGISTRY)


def check_gradient(x: torch.Tensor) -> torch.Tensor:
    """Validate an encoder input: a 1-D floating tensor with only finite values."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 1:
        raise ValueError(f"expected a 1-D tensor, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"expected a floating-point tensor, got {x.dtype}")
    if x.numel() and not bool(torch.isfinite(x).all()):
        raise ValueError("gradient contains NaN or Inf; refusing to encode it")
    return x.float()


def check_numel(numel: int) -> int:
    """Validate the `numel` a decoder was given."""
    if isinstance(numel, bool) or not isinstance(numel, int) or numel < 0:
        raise ValueError(f"numel must be a non-negative int, got {numel!r}")
    return numel


def read_dense(name: str, payload: bytes, numel: int, dtype: str) -> np.ndarray:
    """A headerless payload of `numel` little-endian values (`dtype` "<f4" or "<f2"), length
    checked; returns a float32 copy the caller may own."""
    numel = check_numel(numel)
    width = np.dtype(dtype).itemsize
    if len(payload) != width * numel:
        raise ValueError(f"{name}: payload has {len(payload)} bytes, expected {width * numel} "
                         f"for numel={numel}")
    return np.frombuffer(payload, dtype=dtype).astype(np.float32)

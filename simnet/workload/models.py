"""The model zoo. Models are built from a seeded generator so every run starts identically."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["build_model", "ModelError"]


class ModelError(ValueError):
    """An unknown model name or an invalid architecture parameter."""


def _mlp(num_features: int, num_classes: int, hidden: list[int]) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    width = num_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


_BUILDERS = {"mlp": _mlp}


def build_model(name: str, num_features: int, num_classes: int, hidden: list[int], seed: int) -> nn.Module:
    """Build `name` with parameters initialised from `seed` (the global RNG is left untouched)."""
    if name not in _BUILDERS:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(sorted(_BUILDERS))}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _BUILDERS[name](num_features, num_classes, hidden)

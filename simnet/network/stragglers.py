"""Per-iteration, per-worker multiplicative slowdowns (>= 1) for compute times.

Each worker draws from its own stream, ``SeedSequence(seed).spawn(workers)[i]``, so adding
workers leaves the existing workers' draws unchanged.
"""

from __future__ import annotations

import numpy as np

__all__ = ["straggler_factors", "KINDS"]

KINDS = ("none", "persistent", "lognormal", "exponential", "shifted_exponential", "pareto")


def _num(spec: dict, key: str, default=None, positive=True) -> float:
    value = spec.get(key, default)
    if value is None:
        raise ValueError(f"stragglers.{key}: required for kind {spec.get('kind')!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ValueError(f"stragglers.{key}: expected a number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"stragglers.{key}: must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def _keys(spec: dict, allowed: set) -> None:
    extra = sorted(set(spec) - allowed - {"kind"})
    if extra:
        raise ValueError(f"stragglers.{extra[0]}: unknown key for kind {spec['kind']!r}")


def straggler_factors(spec, workers: int, iterations: int, seed: int) -> np.ndarray:
    """Slowdowns [iterations, workers], each >= 1.

    Kinds: none (all 1); persistent {workers: [ranks], slowdown >= 1} (every iteration);
    lognormal {sigma} (factor = exp(sigma |Z|), Z standard normal: a half-log-normal, never
    below 1); exponential / shifted_exponential {mean} (factor = 1 + Exp(mean));
    pareto {alpha, scale=1} (factor = max(1, scale * Pareto-I(alpha)), mean alpha/(alpha-1)
    at scale 1).
    """
    if spec is None:
        spec = {"kind": "none"}
    if not isinstance(spec, dict):
        raise ValueError(f"stragglers: expected a dict or None, got {type(spec).__name__}")
    kind = spec.get("kind", "none")
    if kind not in KINDS:
        raise ValueError(f"stragglers.kind: unknown {kind!r} (known: {list(KINDS)})")
    shape = (int(iterations), int(workers))
    if kind == "none":
        _keys(spec, set())
        return np.ones(shape)
    if kind == "persistent":
        _keys(spec, {"workers", "slowdown"})
        slow = _num(spec, "slowdown")
        if slow < 1:
            raise ValueError(f"stragglers.slowdown: must be >= 1, got {slow!r}")
        out = np.ones(shape)
        ranks = spec.get("workers", [])
        for r in ranks:
            if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r < workers:
                raise ValueError(f"stragglers.workers: rank {r!r} not in [0, {workers})")
        out[:, list(ranks)] = slow
        return out
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(shape[1])]
    if kind == "lognormal":
        _keys(spec, {"sigma"})
        sigma = _num(spec, "sigma", positive=False)
        # exp(sigma |Z|): a half-log-normal, so a worker is never faster than its model.
        draw = [np.exp(sigma * np.abs(r.standard_normal(shape[0]))) for r in streams]
    elif kind in ("exponential", "shifted_exponential"):
        _keys(spec, {"mean"})
        mean = _num(spec, "mean", positive=False)
        draw = [1.0 + r.exponential(mean, shape[0]) if mean else np.ones(shape[0]) for r in streams]
    else:  # pareto
        _keys(spec, {"alpha", "scale"})
        alpha = _num(spec, "alpha")
        scale = _num(spec, "scale", 1.0)
        draw = [np.maximum(scale * (1.0 + r.pareto(alpha, shape[0])), 1.0) for r in streams]
    return np.stack(draw, axis=1) if shape[1] else np.ones(shape)

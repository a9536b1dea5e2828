"""One stochastic-rounding kernel over a level grid, and its exact variance oracle.

A flattened gradient is cut into buckets of `d` consecutive coordinates (the last bucket is
zero-padded to `d`); each bucket is divided by its own scale (‖v‖₂ or ‖v‖∞, in the gradient's
units) and every r = |v_i| / scale in [a, b] (two adjacent levels of a grid in [0, 1]) rounds
up to b with probability (r - a)/(b - a), else down to a. The output per coordinate is a level
index into the grid and a sign bit; Q(v_i) = scale · sgn(v_i) · level, with sgn(0) = +1, and a
zero bucket (scale 0) gives all-zero indices.

Per coordinate Var[Q(v_i)] = scale² (b - r)(r - a): `exact_variance` sums to the exact
E‖Q(v) - v‖², the oracle that Monte-Carlo tests compare against.

Randomness: one draw of uniforms per call (`uniforms.py`: float32 multiples of 2^-24), so a
seeded generator gives bit-identical indices on every run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import jit, norm_kernels, threads
from .uniforms import uniforms

__all__ = [
    "Grid", "uniform_grid", "exponential_grid", "to_buckets", "bucket_scales", "l2_norms",
    "norms_flat",
    "stochastic_round", "round_with", "dequantize", "exact_variance", "nonzero_probability",
]


@dataclass(frozen=True)
class Grid:
    """An ascending level grid in [0, 1] with levels[0] == 0 and levels[-1] == 1."""

    levels: tuple[float, ...]
    kind: str = "general"  # "uniform" {0, 1/s, ..., 1} or "exponential" {0, 2^-s, ..., 1}:
    # closed-form brackets (fast paths); "general": binary search, the definition itself

    @property
    def size(self) -> int:
        return len(self.levels)

    @property
    def index_bits(self) -> int:
        """Bits of a level index in the `fixed` format: ceil(log2(grid size))."""
        return max(1, math.ceil(math.log2(self.size)))

    @property
    def index_dtype(self) -> torch.dtype:
        """dtype of level indices: uint8 for grids of <= 256 points, else int32."""
        return torch.uint8 if self.size <= 256 else torch.int32

    def tensor(self, device=None, dtype=torch.float32) -> torch.Tensor:
        return torch.tensor(self.levels, dtype=dtype, device=device)


def uniform_grid(s: int) -> Grid:
    """{0, 1/s, ..., 1}: s + 1 points (QSGD, QSGDinf)."""
    return Grid(tuple(i / s for i in range(s + 1)), "uniform")


def exponential_grid(s: int) -> Grid:
    """{0, 2^-s, 2^-(s-1), ..., 1/2, 1}: s + 2 points (NUQSGD)."""
    return Grid((0.0,) + tuple(2.0 ** -(s - j) for j in range(s + 1)), "exponential")


def to_buckets(x: torch.Tensor, d: int) -> torch.Tensor:
    """[..., n] -> [..., B, d], B = ceil(n / d); the tail is zero-padded (a view if d divides n)."""
    n = x.shape[-1]
    pad = (-n) % d
    if pad:
        x = torch.nn.functional.pad(x, (0, pad))
    return x.reshape(*x.shape[:-1], (n + pad) // d, d)


def bucket_scales(xb: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-bucket scale [..., B]: the L2 norm ("l2", `l2_norms`) or the max magnitude ("linf",
    exact, so the same on every device)."""
    if norm == "l2":
        return l2_norms(xb)
    if norm == "linf":
        if _kernel_applies(xb):
            return _bucket_norms_compiled(xb, norm_kernels.linf_norms)
        return xb.abs().amax(dim=-1) if xb.shape[-1] else xb.sum(-1)
    raise ValueError(f"unknown norm {norm!r}")


_NORMS_PAR_MIN = 1 << 16  # coordinates below which the norm kernel runs on this thread only


def l2_norms(xb: torch.Tensor) -> torch.Tensor:
    """‖v‖₂ of every bucket of [..., B, d] ([..., B], xb's dtype), the same bits on every device,
    thread count and batch shape: the squares in float64 (exact for float32 input: no underflow
    of tiny coordinates, no overflow), summed in one fixed order, a pairwise tree (zero-padded
    to a power of two P >= d, then element i + h added to element i for h = P/2, P/4, ..., 1),
    then the correctly rounded float64 square root, rounded to xb's dtype.

    Why not `torch.linalg.vector_norm`: a device's reduction sums in an order of its own, so a
    CUDA scale could differ from the CPU's in the last bit, and with it the payload's bytes.
    Why numpy's sqrt on CPU: torch's CPU sqrt is not correctly rounded (1.4% of random float64
    inputs, 20% of float32 ones came out 1 ulp off), CUDA's and numpy's are.
    """
    if _kernel_applies(xb):
        return _bucket_norms_compiled(xb, norm_kernels.l2_norms)
    d = xb.shape[-1]
    width = 1 << max(0, (d - 1).bit_length())  # P
    v = xb.double()
    sq = v * v
    if width > d:
        sq = torch.nn.functional.pad(sq, (0, width - d))
    while width > 1:
        width //= 2
        sq = sq[..., :width] + sq[..., width:2 * width]
    total = sq[..., 0]
    if total.device.type == "cpu":
        root = torch.from_numpy(np.sqrt(total.contiguous().numpy()))
    else:
        root = total.sqrt()
    return root.to(xb.dtype)


def norms_flat(x: torch.Tensor, d: int, norm: str) -> torch.Tensor:
    """`bucket_scales(to_buckets(x, d), norm)` of a 1-D x ([ceil(n / d)]); the compiled path
    reads x in place, the short last bucket included, without a padded copy."""
    if _kernel_applies(x):
        kernel = norm_kernels.l2_norms if norm == "l2" else norm_kernels.linf_norms
        return _kernel_norms(x.contiguous().numpy(), d, -(-x.numel() // d), kernel)
    return bucket_scales(to_buckets(x, d), norm)


def _kernel_applies(x: torch.Tensor) -> bool:
    """Whether `norm_kernels` computes the norms of x: a non-empty float32 CPU tensor, kernels on."""
    return jit.enabled() and x.device.type == "cpu" and x.dtype == torch.float32 and x.numel() > 0


def _bucket_norms_compiled(xb: torch.Tensor, kernel) -> torch.Tensor:
    """The norms ([..., B]) of the [..., B, d] buckets of a non-empty float32 CPU tensor by a
    `norm_kernels` kernel (the same bits as the torch code)."""
    d = xb.shape[-1]
    flat = xb.reshape(-1, d).contiguous().reshape(-1).numpy()
    return _kernel_norms(flat, d, flat.size // d, kernel).view(xb.shape[:-1])


def _kernel_norms(flat: np.ndarray, d: int, nb: int, kernel) -> torch.Tensor:
    """The norms (`kernel` of `norm_kernels`) of the nb buckets of d coordinates of flat
    float32 (the last may be short), on threads when there are many."""
    out = np.empty(nb, np.float32)
    parts = 1 if flat.size < _NORMS_PAR_MIN else threads.THREADS
    threads.run_ranges("simnet-norms", lambda b0, b1: kernel(flat, d, b0, b1, out),
                       threads.split(nb, parts))
    return torch.from_numpy(out)


def stochastic_round(
    xb: torch.Tensor, scales: torch.Tensor, grid: Grid, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Round [..., B, d] buckets onto `grid`; returns (level index, negative-sign mask).

    The index dtype is uint8 when the grid has <= 256 points, else int32.
    """
    return round_with(xb, scales, grid, uniforms(xb.shape, generator, xb.device))


def round_with(xb: torch.Tensor, scales: torch.Tensor, grid: Grid, u: torch.Tensor):
    """`stochastic_round` given its uniforms `u` (shape of xb): round up iff u < P(round up)."""
    safe = torch.where(scales > 0, scales, torch.ones_like(scales)).unsqueeze(-1)
    dtype = grid.index_dtype
    if grid.kind == "uniform":
        s = grid.size - 1
        mult = s / safe
        t = xb.abs().mul_(mult)  # r·s >= 0
        subnormal = torch.isinf(mult)  # 1/scale overflows float32: divide those buckets
        if bool(subnormal.any()):
            t = torch.where(subnormal, xb.abs().div_(safe).mul_(s), t)
        lo = t.to(dtype)  # truncation = floor
        # P(up) = frac(r·s), exact in float; r·s >= s (r = 1, or a norm rounded low) gives
        # lo = s, and the clamp keeps it there
        idx = lo.add_(u < t.frac_()).clamp_(max=s)
    elif grid.kind == "exponential":
        s = grid.size - 2
        r = xb.abs().div_(safe).clamp_(max=1.0)
        m, e = torch.frexp(r)  # r = m·2^e, m in [0.5, 1): bracket [2^(e-1), 2^e], index s + e
        lo = (e + s).clamp_(0, s + 1).masked_fill_(m == 0, 0).to(dtype)  # r = 0: index 0
        # P(up) = (r - a)/(b - a) = 2m - 1 exactly; below 2^-s the bracket is [0, 2^-s];
        # at r = 1 the index is already s + 1 and 2m - 1 = 0
        idx = lo.add_(u < torch.where(lo > 0, m.mul_(2).sub_(1), r.mul_(2.0**s)))
    else:
        levels = grid.tensor(xb.device)
        r = xb.abs().div_(safe).clamp_(max=1.0)
        lo = (torch.searchsorted(levels, r, right=True) - 1).clamp_(0, grid.size - 2)
        a, b = levels[lo], levels[lo + 1]
        idx = lo.add_(u < (r - a).div_(b - a)).to(dtype)
    return idx, (xb < 0).logical_and_(idx > 0)  # canonical: a zero level carries no sign


def dequantize(
    idx: torch.Tensor, neg: torch.Tensor, scales: torch.Tensor, grid: Grid
) -> torch.Tensor:
    """scale · sgn · level for [..., B, d] indices; float32."""
    levels = grid.tensor(idx.device)[idx.long()]
    return torch.where(neg, -levels, levels) * scales.unsqueeze(-1)


def _r_and_bracket(x: torch.Tensor, grid: Grid, norm: str, d: int):
    """float64 r, scale and adjacent levels (a, b) per coordinate, [B, d]."""
    xb = to_buckets(x.detach().double().flatten(), d)
    scale = bucket_scales(xb, norm).unsqueeze(-1)
    r = (xb.abs() / torch.where(scale > 0, scale, torch.ones_like(scale))).clamp(max=1.0)
    levels = grid.tensor(dtype=torch.float64)
    lo = (torch.searchsorted(levels, r, right=True) - 1).clamp(0, grid.size - 2)
    return r, scale, levels[lo], levels[lo + 1]


def exact_variance(x: torch.Tensor, grid: Grid, norm: str, d: int) -> torch.Tensor:
    """Per-coordinate Var[Q(x)_i] = scale² (b - r)(r - a) in float64, shape [n] (units: x²)."""
    r, scale, a, b = _r_and_bracket(x, grid, norm, d)
    return (scale**2 * (b - r) * (r - a)).flatten()[: x.numel()]


def nonzero_probability(x: torch.Tensor, grid: Grid, norm: str, d: int) -> torch.Tensor:
    """Per-coordinate P(Q(x)_i != 0) in float64 (QSGD: min(1, s·r_i)), shape [n]."""
    r, _, a, b = _r_and_bracket(x, grid, norm, d)
    p = torch.where(a > 0, torch.ones_like(r), r / b)
    return p.flatten()[: x.numel()]

"""`nuqsgd`: NUQSGD, *non-uniform* quantization (Ramezani-Kebrya et al., JMLR 2021).

Each bucket is scaled by ‖v‖₂ and rounded stochastically and unbiasedly onto the exponential
grid {0, 2^-s, 2^-(s-1), ..., 1/2, 1} (s + 2 points). Variance bound per bucket:
E‖Q - v‖² <= (1/8 + min(d/2^(2s+2), √d/2^s))‖v‖².
`bits` sugar: s = 2^(bits-1) - 2 (grid of 2^(bits-1) points; e.g. 4 bits -> s = 6).
Wire formats: see `wire.py`.
"""

from __future__ import annotations

from .base import register
from .quantize import Grid, exponential_grid
from .quantized import GridQuantizer


@register("nuqsgd")
class NUQSGD(GridQuantizer):
    norm = "l2"
    max_levels = 120  # 2^-120 is still a normal float32

    @classmethod
    def make_grid(cls, s: int) -> Grid:
        return exponential_grid(s)

    @classmethod
    def levels_for_bits(cls, bits: int) -> int:
        return 2 ** (bits - 1) - 2

    @classmethod
    def min_bits(cls) -> int:
        return 3

    @classmethod
    def max_bits(cls) -> int:
        return 7  # s = 62

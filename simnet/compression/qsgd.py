"""`qsgd`: QSGD (Alistarh et al., NeurIPS 2017, eq. 4).

Each bucket of d coordinates is scaled by its L2 norm ‖v‖₂ and rounded stochastically and
unbiasedly onto the uniform grid {0, 1/s, ..., 1} (s + 1 points). Known bounds per bucket:
E‖Q - v‖² <= min(d/s², √d/s)‖v‖², E‖Q‖₀ <= s(s + √d).
`bits` sugar: s = 2^(bits-1) - 1 (e.g. 4 bits -> s = 7). Wire formats: see `wire.py`.
"""

from __future__ import annotations

from .base import register
from .quantize import Grid, uniform_grid
from .quantized import GridQuantizer


@register("qsgd")
class QSGD(GridQuantizer):
    norm = "l2"

    @classmethod
    def make_grid(cls, s: int) -> Grid:
        return uniform_grid(s)

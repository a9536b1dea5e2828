"""`qsgdinf`: QSGD with max-norm scaling (QSGD §4 heuristic; named QSGDinf by NUQSGD's authors).

Each bucket is scaled by ‖v‖∞ = max |v_i| and rounded stochastically and unbiasedly onto the
uniform grid {0, 1/s, ..., 1}. Unbiased; no sparsity guarantee (the largest coordinate always
lands on level 1). `bits` sugar: s = 2^(bits-1) - 1. Wire formats: see `wire.py`.
"""

from __future__ import annotations

from .base import register
from .quantize import Grid, uniform_grid
from .quantized import GridQuantizer


@register("qsgdinf")
class QSGDInf(GridQuantizer):
    norm = "linf"

    @classmethod
    def make_grid(cls, s: int) -> Grid:
        return uniform_grid(s)

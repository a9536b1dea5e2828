"""Shared look of every figure: a colour-blind-safe palette, one colour per compressor
everywhere in a report, and PNG export."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display: the report is rendered to PNG bytes
import matplotlib.pyplot as plt  # noqa: E402

import math  # noqa: E402

from matplotlib.ticker import Formatter, FuncFormatter  # noqa: E402

__all__ = ["plt", "PALETTE", "PHASE_COLOURS", "png", "Colours", "LINESTYLES", "plain_log"]

# Okabe & Ito (2008): distinguishable under the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
# Line styles repeat the distinction for greyscale prints and more than 8 series.
LINESTYLES = ["-", "--", "-.", ":"]
# Phases of an iteration, same colours in the breakdown bars and the timeline.
PHASE_COLOURS = {"compute": "#0072B2", "encode/decode": "#E69F00", "communication": "#009E73",
                 "waiting for stragglers": "#CC79A7"}

plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9,
                     "legend.fontsize": 8, "axes.spines.top": False, "axes.spines.right": False})


class Colours:
    """Stable (colour, line style) per series name, in first-seen order."""

    def __init__(self, names):
        self.index = {n: i for i, n in enumerate(dict.fromkeys(names))}

    def colour(self, name) -> str:
        return PALETTE[self.index.get(name, 0) % len(PALETTE)]

    def style(self, name) -> str:
        return LINESTYLES[(self.index.get(name, 0) // len(PALETTE)) % len(LINESTYLES)]


class _MinorLog(Formatter):
    """Minor log ticks labelled (2, 3, 5 × 10^k) only when the axis spans under a decade
    and a half, where major ticks alone would leave it unlabelled."""

    def __call__(self, x, pos=None):
        lo, hi = sorted(self.axis.get_view_interval())
        if x <= 0 or lo <= 0 or hi / lo > 30:
            return ""
        mantissa = x / 10 ** math.floor(math.log10(x) + 1e-9)
        return f"{x:g}" if round(mantissa) in (2, 3, 5) else ""


def plain_log(axis) -> None:
    """Log-axis tick labels as plain numbers (0.01, 0.1, 1): readable, and several times
    faster to draw than the default mathtext labels (10⁻²)."""
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(_MinorLog())


def png(fig, dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes and free it (figures are many in a sweep).

    Figures lay themselves out (tight_layout), so no bbox_inches="tight": that draws twice."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()

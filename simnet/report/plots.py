"""Matplotlib figures of a run, returned as PNG bytes (embedded in the HTML report)."""

from __future__ import annotations

import io
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Okabe-Ito: a colour-blind-safe palette.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _series(records: list[dict], variant: str):
    by_comp = defaultdict(list)
    for r in records:
        if r["variant"] == variant:
            by_comp[r["compressor"]].append(r)
    return by_comp


def convergence(records: list[dict], variant: str, target: float | None) -> bytes:
    """Training loss and test accuracy against simulated wall-clock time."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (comp, recs) in enumerate(_series(records, variant).items()):
        colour = PALETTE[i % len(PALETTE)]
        ax_loss.plot([r["sim_time_s"] for r in recs], [r["loss"] for r in recs],
                     color=colour, label=comp, linewidth=1.2)
        ev = [r for r in recs if r.get("accuracy") is not None]
        ax_acc.plot([r["sim_time_s"] for r in ev], [r["accuracy"] for r in ev], marker="o",
                    markersize=3, color=colour, label=comp)
    if target is not None:
        ax_acc.axhline(target, color="grey", linestyle="--", linewidth=1, label="target")
    ax_loss.set(xlabel="simulated wall-clock time (s)", ylabel="training loss", yscale="log",
                title="Loss vs time")
    ax_acc.set(xlabel="simulated wall-clock time (s)", ylabel="test accuracy",
               title="Accuracy vs time")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _png(fig)


def breakdown(summary_rows: list[dict], records: list[dict], variant: str) -> bytes:
    """Mean iteration time split into compute, encode/decode, communication and waiting."""
    series = _series(records, variant)
    names = list(series)
    parts = ["compute_s", "encode_s", "communication_s", "wait_s"]
    labels = ["compute", "encode/decode", "communication", "waiting for stragglers"]
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(names) + 1.5))
    left = [0.0] * len(names)
    for j, (part, label) in enumerate(zip(parts, labels)):
        widths = [1e3 * sum(r[part] for r in series[n]) / len(series[n]) for n in names]
        ax.barh(names, widths, left=left, color=PALETTE[j], label=label)
        left = [a + b for a, b in zip(left, widths)]
    ax.set(xlabel="mean iteration time (ms)", title="Where an iteration's time goes")
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)

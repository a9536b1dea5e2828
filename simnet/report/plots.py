"""Matplotlib figures of convergence, throughput, the time split and sweeps (PNG bytes).

Every figure reads a `RunData` (the results files) only. Times on axes are simulated
wall-clock seconds or milliseconds per iteration, as labelled.
"""

from __future__ import annotations

from .data import RunData, short_label
from .style import PHASE_COLOURS, Colours, plain_log, plt, png
from .sweep_axis import axis_positions

__all__ = ["convergence", "per_compressor", "throughput_bits", "breakdown", "speedup_sweep"]

SPLIT = [("compute_s", "compute"), ("encode_s", "encode/decode"),
         ("communication_s", "communication"), ("wait_s", "waiting for stragglers")]


def _evaluated(recs):
    return [r for r in recs if r.get("accuracy") is not None]


def convergence(data: RunData, variant: str) -> bytes:
    """2×2: training loss and test accuracy against simulated time and against iterations."""
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.4), sharey="row")
    colours = Colours(data.compressors)
    for comp in data.compressors:
        recs = data.series(variant, comp)
        if not recs:
            continue
        kw = dict(color=colours.colour(comp), linestyle=colours.style(comp), label=short_label(comp))
        ev = _evaluated(recs)
        for col, x in enumerate(("sim_time_s", "iteration")):
            axes[0, col].plot([r[x] for r in recs], [r["loss"] for r in recs], linewidth=1, **kw)
            axes[1, col].plot([r[x] for r in ev], [r["accuracy"] for r in ev], marker="o",
                              markersize=3, linewidth=1.3, **kw)
    for col, xlabel in enumerate(("simulated wall-clock time (s)", "iteration")):
        axes[0, col].set(yscale="log", xlabel=xlabel, title=f"Training loss vs {xlabel.split(' (')[0]}")
        axes[1, col].set(xlabel=xlabel, title=f"Test accuracy vs {xlabel.split(' (')[0]}")
        if data.target is not None:
            axes[1, col].axhline(data.target, color="grey", linestyle="--", linewidth=1,
                                 label=f"target {data.target:g}")
    plain_log(axes[0, 0].yaxis)
    axes[0, 0].set_ylabel("training loss (log scale)")
    axes[1, 0].set_ylabel("test accuracy (fraction)")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    axes[1, 1].legend(loc="lower right")
    fig.suptitle(f"Convergence — {variant}", fontsize=11)
    fig.tight_layout()
    return png(fig)


def per_compressor(data: RunData, comp: str) -> bytes:
    """One compressor: accuracy vs time on each variant, and its iteration time per iteration
    (split into phases when there is one variant, one line per variant in a sweep)."""
    fig, (ax_acc, ax_it) = plt.subplots(1, 2, figsize=(10, 3.4))
    variants = data.variants
    shades = Colours(variants)
    own = Colours(data.compressors).colour(comp)  # one variant: the compressor's own colour
    for v in variants:
        ev = _evaluated(data.series(v, comp))
        ax_acc.plot([r["sim_time_s"] for r in ev], [r["accuracy"] for r in ev], marker="o",
                    markersize=3, color=shades.colour(v) if len(variants) > 1 else own,
                    linestyle=shades.style(v), label=v)
    if data.target is not None:
        ax_acc.axhline(data.target, color="grey", linestyle="--", linewidth=1, label="target")
    ax_acc.set(xlabel="simulated wall-clock time (s)", ylabel="test accuracy (fraction)",
               title="Accuracy vs time" + (" per variant" if len(variants) > 1 else ""))
    if len(variants) == 1:
        recs = data.series(variants[0], comp)
        its = [r["iteration"] for r in recs]
        stacks = [[1e3 * r[key] for r in recs] for key, _ in SPLIT]
        ax_it.stackplot(its, stacks, labels=[lab for _, lab in SPLIT],
                        colors=[PHASE_COLOURS[lab] for _, lab in SPLIT], alpha=0.85)
        ax_it.set(title="Iteration time, split")
        ax_it.legend(loc="upper right", fontsize=7)
    else:
        for v in variants:
            recs = data.series(v, comp)
            ax_it.plot([r["iteration"] for r in recs], [1e3 * r["iteration_time_s"] for r in recs],
                       color=shades.colour(v), linestyle=shades.style(v), linewidth=1, label=v)
        ax_it.set(yscale="log", title="Iteration time per variant")
        plain_log(ax_it.yaxis)
        ax_acc.legend(fontsize=7)
    ax_it.set(xlabel="iteration", ylabel="iteration time (ms)")
    for ax in (ax_acc, ax_it):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return png(fig)


def _grouped_bars(ax, data: RunData, key: str, scale: float = 1.0) -> None:
    comps, variants = data.compressors, data.variants
    shades = Colours(variants)
    width = 0.8 / len(variants)
    by = {(r["variant"], r["compressor"]): r for r in data.summary}
    for j, v in enumerate(variants):
        xs = [i + (j - (len(variants) - 1) / 2) * width for i in range(len(comps))]
        ys = [scale * (by.get((v, c), {}).get(key) or 0.0) for c in comps]
        ax.bar(xs, ys, width=width, color=shades.colour(v), label=v if len(variants) > 1 else None)
    ax.set_xticks(range(len(comps)), [short_label(c) for c in comps], rotation=20, ha="right")
    ax.grid(axis="y", alpha=0.3)


def throughput_bits(data: RunData) -> bytes:
    """Throughput (samples/s) and bits per coordinate, per compressor (bars per variant)."""
    fig, (ax_t, ax_b) = plt.subplots(1, 2, figsize=(10, 3.6))
    _grouped_bars(ax_t, data, "throughput_samples_per_s")
    ax_t.set(ylabel="throughput (samples/s, all workers)", title="Throughput")
    _grouped_bars(ax_b, data, "bits_per_coordinate")
    ax_b.axhline(32, color="grey", linestyle="--", linewidth=1, label="fp32 (32 bits)")
    ax_b.set(ylabel="bits per coordinate (per worker)", title="Bits sent per gradient coordinate")
    ax_b.legend(fontsize=7)
    if len(data.variants) > 1:
        ax_t.legend(fontsize=7)
    fig.tight_layout()
    return png(fig)


def breakdown(data: RunData) -> bytes:
    """Mean iteration time split into compute, encode/decode, communication, waiting; one
    panel per variant (x axes differ: a slow link dwarfs everything else)."""
    variants, comps = data.variants, data.compressors
    fig, axes = plt.subplots(len(variants), 1, figsize=(9, (0.38 * len(comps) + 1.1) * len(variants)),
                             squeeze=False)
    for ax, v in zip(axes[:, 0], variants):
        names = [c for c in comps if data.series(v, c)]
        left = [0.0] * len(names)
        for key, label in SPLIT:
            widths = [1e3 * sum(r[key] for r in data.series(v, c)) / len(data.series(v, c)) for c in names]
            ax.barh([short_label(c) for c in names], widths, left=left, color=PHASE_COLOURS[label],
                    label=label)
            left = [a + b for a, b in zip(left, widths)]
        for y, total in enumerate(left):
            ax.text(total, y, f" {total:,.2f} ms", va="center", fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, 1.18 * max(left or [1]))
        ax.set(xlabel="mean iteration time (ms)", title=v if len(variants) > 1 else None)
        ax.grid(axis="x", alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=4, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / fig.get_figheight()))  # room for the legend
    return png(fig)


def speedup_sweep(data: RunData) -> bytes | None:
    """Speedup over `none` against the swept axis; None when the run is not a sweep."""
    if len(data.variants) < 2 or not data.sweep_axes():
        return None
    xs, ticks, xlabel, log = axis_positions(data)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    colours = Colours(data.compressors)
    by = {(r["variant"], r["compressor"]): r for r in data.summary}
    keys = [("speedup_vs_none", "time-to-target speedup" if data.target else "speedup"),
            ("throughput_speedup_vs_none", "throughput speedup")]
    for ax, (key, title) in zip(axes, keys):
        for c in data.compressors:
            pts = [(x, by[(v, c)].get(key)) for v, x in zip(data.variants, xs) if (v, c) in by]
            pts = [(x, y) for x, y in pts if y is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o", color=colours.colour(c),
                        linestyle=colours.style(c), label=short_label(c))
        ax.axhline(1.0, color="grey", linewidth=1, linestyle="--")
        ax.set(xlabel=xlabel, ylabel=f"{title} over none (×)", title=f"{title.capitalize()} vs {xlabel}")
        if log:
            ax.set_xscale("log")
        ax.set_xticks(xs, ticks, rotation=20 if len(ticks) > 4 else 0)
        ax.minorticks_off()
        ax.grid(alpha=0.3)
    labelled = [ax for ax in axes if ax.get_legend_handles_labels()[0]]
    if labelled:  # a panel is empty when no compressor reached the target
        labelled[0].legend(fontsize=7)
    fig.tight_layout()
    return png(fig)

"""The summary table, formatted once for HTML, Markdown and the terminal.

Two layouts of the same summary.json rows: `full` (HTML, summary.md) with every figure and
the compressor's full name, and `compact` (terminal) with short headers and short compressor
labels so that it fits 80 columns without truncating a cell.
"""

from __future__ import annotations

from .data import short_label

__all__ = ["summary_table", "markdown_table", "COLLECTIVE_SHORT"]

COLLECTIVE_SHORT = {"ring-allreduce": "ring-AR", "tree-allreduce": "tree-AR",
                    "hierarchical-allreduce": "hier-AR", "ring-allgather": "ring-AG"}


def _fmt(value, spec: str) -> str:
    """One cell; None (a target never reached, a missing baseline) shows as an em dash."""
    if value is None:
        return "—"
    if spec == "ms":
        return f"{1e3 * value:,.2f}"
    if spec == "MB":
        return f"{value / 1e6:,.3f}"
    if spec == "x":
        return f"{value:.2f}×"
    return format(value, spec)


# (summary key, full header, compact header, format)
COLUMNS = [
    ("time_to_target_s", "time to target (s)", "t→target\n(s)", ".3f"),
    ("speedup_vs_none", "speedup vs none", "speed-\nup", "x"),
    ("throughput_samples_per_s", "throughput (samples/s)", "samples\n/s", ",.0f"),
    ("throughput_speedup_vs_none", "throughput vs none", "thr. vs none", "x"),
    ("mean_iteration_time_s", "mean iteration (ms)", "ms /\niter", "ms"),
    ("bytes_per_iteration", "MB / iteration (all workers)", "MB /\niter", "MB"),
    ("bits_per_coordinate", "bits / coordinate", "bits /\ncoord", ".2f"),
    ("final_accuracy", "final accuracy", "accu-\nracy", ".3f"),
    ("final_loss", "final test loss", "loss", ".3f"),
]
COMPACT_SKIP = {"final_loss", "throughput_speedup_vs_none"}


def summary_table(rows: list[dict], compact: bool = False,
                  with_variant: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells of summary rows.

    compact: terminal layout (short headers and labels, fewer columns).
    with_variant: prepend a variant column (one table for a whole sweep).
    """
    cols = [c for c in COLUMNS if not (compact and c[0] in COMPACT_SKIP)]
    header = (["variant"] if with_variant else []) + ["compressor", "coll." if compact else "collective"]
    header += [c[2] if compact else c[1] for c in cols]
    body = []
    for row in rows:
        name = short_label(row["compressor"]) if compact else row["compressor"]
        coll = row.get("collective") or "—"
        cells = ([row["variant"]] if with_variant else []) + [
            name, COLLECTIVE_SHORT.get(coll, coll) if compact else coll]
        cells += [_fmt(row.get(key), spec) for key, _, _, spec in cols]
        body.append(cells)
    return header, body


def markdown_table(header: list[str], body: list[list[str]]) -> list[str]:
    """GitHub-flavoured Markdown lines; text columns left, numbers right-aligned."""
    align = ["---" if not body or not _numeric(body[0][i]) else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in body]
    return lines


def _numeric(cell: str) -> bool:
    return cell[:1].isdigit() or cell == "—"

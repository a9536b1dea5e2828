"""Render report.html, summary.md and trace.json from a run's results files alone."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import yaml

from ..results import atomic_write, read_json, read_records
from . import plots
from .chrome_trace import trace_events

__all__ = ["write_report", "summary_table"]

COLUMNS = [
    ("compressor", "compressor", "{}"),
    ("collective", "collective", "{}"),
    ("throughput_samples_per_s", "throughput (samples/s)", "{:,.0f}"),
    ("mean_iteration_time_s", "mean iteration (ms)", "ms"),
    ("bytes_per_iteration", "bytes / iteration", "{:,.0f}"),
    ("bits_per_coordinate", "bits / coord", "{:.2f}"),
    ("final_accuracy", "final accuracy", "{:.3f}"),
    ("time_to_target_s", "time to target (s)", "{:.3f}"),
    ("speedup_vs_none", "speedup vs none", "{:.2f}x"),
]


def _cell(value, fmt: str) -> str:
    if value is None:
        return "—"
    if fmt == "ms":
        return f"{1e3 * value:.2f}"
    return fmt.format(value)


def summary_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells of the summary (shared by the CLI, Markdown and HTML)."""
    header = [title for _, title, _ in COLUMNS]
    body = [[_cell(row.get(key), fmt) for key, _, fmt in COLUMNS] for row in rows]
    return header, body


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _html_table(header: list[str], body: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


CSS = """body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%}
pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:12px}.muted{color:#666;font-size:90%}"""


def write_report(out_dir: str | Path) -> Path:
    """Write report.html, summary.md and trace.json into out_dir; return the HTML path."""
    out = Path(out_dir)
    summary = read_json(out / "summary.json")
    records = read_records(out / "results.jsonl")
    scenario_text = (out / "scenario.resolved.yaml").read_text()
    scenario = yaml.safe_load(scenario_text)
    provenance = read_json(out / "provenance.json") if (out / "provenance.json").exists() else {}
    timelines = read_json(out / "timeline.json") if (out / "timeline.json").exists() else {}
    target = scenario.get("run", {}).get("target_accuracy")

    variants = list(dict.fromkeys(r["variant"] for r in summary))
    parts = [f"<h1>simnet report: {html.escape(str(scenario.get('name')))}</h1>"]
    cluster = scenario.get("cluster", {})
    topo = cluster.get("topology", {})
    parts.append(
        f"<p>{cluster.get('workers')} workers, {html.escape(str(topo.get('kind')))} topology at "
        f"{html.escape(str(topo.get('bandwidth')))} / {html.escape(str(topo.get('latency')))}, "
        f"model {html.escape(str(scenario.get('workload', {}).get('model')))} on "
        f"{html.escape(str(scenario.get('workload', {}).get('dataset')))}, "
        f"{scenario.get('run', {}).get('iterations')} iterations"
        + (f", target accuracy {target}" if target else "") + ".</p>")
    md = [f"# simnet: {scenario.get('name')}", ""]
    for variant in variants:
        rows = [r for r in summary if r["variant"] == variant]
        header, body = summary_table(rows)
        parts.append(f"<h2>Variant: {html.escape(variant)}</h2>")
        parts.append(_html_table(header, body))
        parts.append(_img(plots.convergence(records, variant, target), f"convergence {variant}"))
        parts.append(_img(plots.breakdown(rows, records, variant), f"breakdown {variant}"))
        md += [f"## {variant}", "", "| " + " | ".join(header) + " |",
               "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in body] + [""]
    if timelines:
        parts.append("<h2>Timeline</h2><p>The first iteration of every (variant, compressor) "
                     "is in <code>trace.json</code>: open it in "
                     "<a href='https://ui.perfetto.dev'>Perfetto</a>.</p>")
        atomic_write(out / "trace.json", json.dumps(trace_events(timelines)))
    parts.append(f"<h2>Scenario (resolved)</h2><pre>{html.escape(scenario_text)}</pre>")
    if provenance:
        parts.append(f"<p class='muted'>{html.escape(json.dumps(provenance))}</p>")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>simnet: "
            f"{html.escape(str(scenario.get('name')))}</title><style>{CSS}</style></head>"
            f"<body>{''.join(parts)}</body></html>")
    atomic_write(out / "report.html", page)
    atomic_write(out / "summary.md", "\n".join(md) + "\n")
    return out / "report.html"

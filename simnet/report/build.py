"""Render report.html, summary.md and trace.json from a run's results files alone.

    from simnet.report import write_report
    write_report("reports/quickstart")      # -> reports/quickstart/report.html

Reads summary.json, results.jsonl, scenario.resolved.yaml and, when present,
provenance.json, timeline.json and links.json. Never re-runs training or simulation.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..results import atomic_write
from . import figures_net, plots
from .chrome_trace import trace_events
from .data import RunData, load_run, short_label
from .page import HOW_TO_READ, brief, esc, findings, img, page, section, table
from .tables import markdown_table, summary_table

__all__ = ["write_report", "summary_table", "render"]

SECTIONS = [("brief", "Scenario"), ("how-to-read", "How to read"), ("summary", "Summary"),
            ("sweep", "Sweep"), ("convergence", "Convergence"), ("per-compressor", "Per compressor"),
            ("throughput", "Throughput and bits"), ("breakdown", "Iteration time split"),
            ("topology", "Topology"), ("timeline", "One iteration"),
            ("validation", "Predicted vs measured"), ("scenario", "Resolved scenario")]


def _summary_section(data: RunData) -> str:
    sweep = len(data.variants) > 1
    header, body = summary_table(data.summary, with_variant=sweep)
    body = [[short_label(c) if i == int(sweep) else c for i, c in enumerate(r)] for r in body]
    out = "".join(f"<p class='finding'>{esc(f)}</p>" for f in findings(data))
    out += table(header, body, text_cols=2 + sweep, titles=[r["compressor"] for r in data.summary])
    return out + "<p class='muted'>Hover a row for the compressor's full name; — : not reached or no baseline.</p>"


def _sections(data: RunData) -> dict[str, str]:
    """Section id -> HTML body; a section that does not apply is left out."""
    s: dict[str, str] = {}
    s["brief"] = "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in brief(data)) + "</dl>"
    s["how-to-read"] = HOW_TO_READ
    s["summary"] = _summary_section(data)
    sweep_png = plots.speedup_sweep(data)
    if sweep_png:
        s["sweep"] = img(sweep_png, "speedup against the swept axis",
                         "Speedup over none at each point of the sweep; above the dashed line the "
                         "compressor wins.")
    s["convergence"] = "".join(
        img(plots.convergence(data, v), f"convergence: {v}",
            "Top: training loss (log scale); bottom: test accuracy. Left: against simulated "
            "time; right: against iterations.") for v in data.variants)
    s["per-compressor"] = "".join(
        f"<h3>{esc(short_label(c))}</h3>" + img(plots.per_compressor(data, c), f"per-compressor: {c}",
                                               c) for c in data.compressors)
    s["throughput"] = img(plots.throughput_bits(data), "throughput and bits per coordinate")
    s["breakdown"] = img(plots.breakdown(data), "iteration time split",
                         "Mean over the run's iterations; the label is the mean iteration time.")
    topo_variants = data.variants if data.links else data.variants[:1]
    s["topology"] = "".join(_topology(data, v, len(topo_variants) > 1) for v in topo_variants)
    tl = "".join(img(figures_net.timeline(data, v), f"timeline: {v}", f"First iteration — {v}")
                 for v in data.variants if any(data.timeline(v, c) for c in data.compressors))
    if tl:
        s["timeline"] = tl + ("<p>Every worker's phases of the first iteration are in "
                              "<code>trace.json</code>: open it in <a href='https://ui.perfetto.dev'>"
                              "Perfetto</a> (Open trace file).</p>")
    if data.validation:
        s["validation"] = _validation_section(data.validation)
    prov = "".join(f"<tr><td class='t'>{esc(str(k))}</td><td class='t'>{esc(str(v))}</td></tr>"
                   for k, v in data.provenance.items())
    s["scenario"] = ((f"<table>{prov}</table>" if prov else "")
                     + "<details><summary>scenario.resolved.yaml (run it again to reproduce "
                     f"this report bit for bit)</summary><pre>{esc(data.scenario_text)}</pre></details>")
    return s


def _validation_section(report: dict) -> str:
    """`simnet validate`'s validation.json: prediction beside a real gloo run."""
    header = ["compressor", "what", "collective", "bytes", "predicted (s)", "measured (s)", "error"]
    body = [[short_label(r["compressor"]), r["what"], r["collective"], f"{r['wire_bytes']:,}",
             f"{r['predicted_s']:.4f}", f"{r['measured_s']:.4f}", f"{100 * r['rel_error']:+.1f}%"]
            for r in report.get("rows", [])]
    intro = (f"<p>Real DDP runs with gloo on an emulated star of {report.get('workers')} ranks at "
             f"{report.get('rate_bps', 0) / 1e6:g} Mbit/s (network namespaces, tc tbf), beside the "
             f"calibrated prediction. Error = (predicted − measured) / measured.</p>")
    warnings = "".join(f"<p class='muted'>warning: {esc(w)}</p>" for w in report.get("warnings", []))
    return intro + table(header, body, text_cols=3) + warnings


def _topology(data: RunData, variant: str, titled: bool) -> str:
    png_bytes, caption = figures_net.topology(data, variant)
    return (f"<h3>{esc(variant)}</h3>" if titled else "") + img(png_bytes, f"topology: {variant}", caption)


def render(data: RunData) -> str:
    """The whole report.html text."""
    bodies = _sections(data)
    nav = [(sid, title) for sid, title in SECTIONS if sid in bodies]
    parts = [section(sid, title, bodies[sid]) for sid, title in nav]
    name = data.scenario.get("name") or data.out.name
    return page(f"simnet report: {name}", nav, parts)


def summary_md(data: RunData) -> str:
    """A short Markdown summary: the brief, the findings, the table, the files."""
    lines = [f"# simnet: {data.scenario.get('name') or data.out.name}", ""]
    lines += [f"- **{k}**: {v}" for k, v in brief(data)] + [""]
    lines += [f"- {f}" for f in findings(data)] + [""]
    header, body = summary_table(data.summary, with_variant=len(data.variants) > 1)
    lines += markdown_table(header, body) + [""]
    lines.append("Plots: `report.html`; one iteration per worker: `trace.json` (open in Perfetto).")
    return "\n".join(lines) + "\n"


def _access_links(data: RunData) -> dict:
    """Worker rank -> its first-hop link name, for derived link tracks in trace.json."""
    g = figures_net.graph_of(data, data.variants[0])
    if g is None:
        return {}
    out = {}
    for n, d in g.nodes(data=True):
        succ = list(g.successors(n))
        if d.get("role") == "worker" and len(succ) == 1:
            out[d.get("rank")] = f"{n}->{succ[0]}"
    return out


def write_report(out_dir: str | Path) -> Path:
    """Write report.html, summary.md and trace.json into out_dir; return the HTML path.

    Raises ReportInputError (a ValueError) naming the file when results files are missing.
    """
    data = load_run(out_dir)
    out = data.out
    if data.timelines:
        atomic_write(out / "trace.json", json.dumps(trace_events(data.timelines, _access_links(data))))
    atomic_write(out / "summary.md", summary_md(data))
    atomic_write(out / "report.html", render(data))
    return out / "report.html"

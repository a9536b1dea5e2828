"""HTML building blocks of report.html: one self-contained page (inline CSS, PNGs as data
URIs, no script, no external resource), so it can be mailed or archived as one file."""

from __future__ import annotations

import base64
import html

from .data import RunData, short_label

__all__ = ["esc", "img", "table", "section", "page", "brief", "HOW_TO_READ", "findings"]

esc = html.escape

CSS = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:1.5em auto;
padding:0 1em;color:#1d1d1d;line-height:1.45}h1{margin-bottom:.1em}h2{border-bottom:1px solid #ddd;
padding-bottom:.2em;margin-top:1.8em}nav{font-size:90%}nav a{margin-right:.9em}
table{border-collapse:collapse;margin:.8em 0;font-size:88%}th,td{border:1px solid #d0d0d0;
padding:3px 7px;text-align:right}th{background:#f2f2f2}td.t,th.t{text-align:left}td.t{white-space:nowrap}.wide{overflow-x:auto}
figure{margin:1em 0}img{max-width:100%;height:auto}figcaption,.muted{color:#555;font-size:88%}
pre{background:#f6f6f6;padding:.8em;overflow:auto;font-size:12px}dl{display:grid;
grid-template-columns:max-content auto;gap:.15em 1em}dt{font-weight:600}dd{margin:0}
.finding{background:#eef5fb;border-left:4px solid #0072B2;padding:.5em .9em}"""

HOW_TO_READ = """<p>Every number here is <em>simulated</em> for the cluster in the brief, from
<em>real</em> training: each compressor really trained the model, and the bytes each worker
really encoded were sent through a discrete-event model of the network. Time axes are simulated
wall-clock seconds on that cluster, not the time this run took.</p>
<ul><li><b>Time to target</b> is the simulated time of the first test evaluation at or above the
target accuracy (— if never reached); <b>speedup vs none</b> divides the fp32 baseline's time to
target by the compressor's (the throughput ratio when no target is set). Above 1× the compressor
wins.</li>
<li><b>Throughput</b> counts samples of all workers per simulated second; <b>bits / coordinate</b> is
what one worker sends per gradient coordinate (32 for fp32).</li>
<li>The <b>iteration-time split</b> adds up to the mean iteration: compute (forward + backward, mean
worker), encode/decode, communication (the collective on the network), and waiting for
stragglers (the slowest worker's lag behind the mean). A compressor pays off when the
communication it saves exceeds the encode/decode it adds, and only if accuracy does not suffer.</li>
<li>Accuracy against <em>iterations</em> shows what compression costs in convergence; against
<em>time</em>, whether it is worth it. <code>trace.json</code> opens in
<a href="https://ui.perfetto.dev">Perfetto</a> for one iteration in detail.</li></ul>"""


def img(png: bytes | None, alt: str, caption: str = "") -> str:
    """A figure with its PNG embedded as a data URI (no file beside the HTML)."""
    if not png:
        return f"<p class='muted'>{esc(caption or alt)}</p>"
    src = "data:image/png;base64," + base64.b64encode(png).decode()
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f"<figure><img alt='{esc(alt)}' src='{src}'>{cap}</figure>"


def table(header: list[str], body: list[list[str]], text_cols: int = 1, titles=None) -> str:
    """HTML table; the first text_cols columns are left-aligned text, the rest numbers.
    titles: optional hover text per row (the compressor's full name)."""
    cls = lambda i: " class='t'" if i < text_cols else ""  # noqa: E731
    head = "".join(f"<th{cls(i)}>{esc(h)}</th>" for i, h in enumerate(header))
    rows = []
    for n, r in enumerate(body):
        title = f" title='{esc(titles[n])}'" if titles else ""
        rows.append(f"<tr{title}>" + "".join(f"<td{cls(i)}>{esc(c)}</td>" for i, c in enumerate(r)) + "</tr>")
    return f"<div class='wide'><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"


def section(sid: str, title: str, body: str) -> str:
    return f"<section id='{sid}'><h2>{esc(title)}</h2>{body}</section>"


def page(title: str, nav: list[tuple[str, str]], parts: list[str]) -> str:
    links = "".join(f"<a href='#{sid}'>{esc(t)}</a>" for sid, t in nav)
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{esc(title)}</h1><nav>{links}</nav>{''.join(parts)}</body></html>")


def _fmt_section(d: dict | None, skip=()) -> str:
    if not d:
        return "—"
    return ", ".join(f"{k} {v}" for k, v in d.items() if k not in skip and v is not None)


def brief(data: RunData) -> list[tuple[str, str]]:
    """(term, text) pairs describing the scenario in a few lines."""
    s = data.scenario
    wl, cl, run = s.get("workload") or {}, s.get("cluster") or {}, s.get("run") or {}
    topo = cl.get("topology") or {}
    opt = wl.get("optimizer") or {}
    compute = cl.get("compute") or {}
    comp_txt = (f"{1e3 * compute['seconds']:.2f} ms per worker and iteration, before straggler "
                "slowdowns" if compute.get("kind") == "fixed"
                and compute.get("seconds") else _fmt_section(compute))
    items = [
        ("workload", f"{wl.get('model')} on {wl.get('dataset')}, batch {wl.get('batch_size')} per "
                     f"worker, {opt.get('name', 'sgd')} lr {opt.get('lr')}"),
        ("cluster", f"{cl.get('workers')} workers, {topo.get('kind')} topology, links "
                    f"{topo.get('bandwidth')} / {topo.get('latency')}"),
        ("compute", comp_txt),
        ("stragglers", _fmt_section(cl.get("stragglers"))),
        ("communication", _fmt_section(s.get("communication"))),
        ("run", f"{run.get('iterations')} iterations, evaluated every {run.get('eval_every')}"
                + (f", target accuracy {run['target_accuracy']}" if run.get("target_accuracy") else "")),
        ("compressors", "; ".join(f"{short_label(c)} = {c}" if short_label(c) != c else c
                                  for c in data.compressors)),
    ]
    swept = [a for a, _ in data.sweep_axes()]
    for i, (term, text) in enumerate(items):  # in a sweep the brief shows the base values only
        keys = [a.split(".")[-1] for a in swept if _term_of(a) == term]
        if keys:
            items[i] = (term, f"{text} (swept: {', '.join(keys)}, see below)")
    if swept:
        items.append(("sweep", "; ".join(f"{a}: {', '.join(map(str, v))}" for a, v in data.sweep_axes())))
    return items


def _term_of(axis: str) -> str:
    """The brief's line that shows a swept key: cluster.compute.seconds -> 'compute'."""
    parts = axis.split(".")
    if parts[0] == "cluster" and len(parts) > 2 and parts[1] in ("compute", "stragglers"):
        return parts[1]
    return parts[0]


def findings(data: RunData) -> list[str]:
    """One sentence per variant: which compressor wins and by how much."""
    out = []
    for v in data.variants:
        rows = data.rows(v)
        if data.target is not None:
            reached = [r for r in rows if r.get("time_to_target_s") is not None]
            if not reached:
                out.append(f"{v}: no compressor reached accuracy {data.target} in the run.")
                continue
            best = min(reached, key=lambda r: r["time_to_target_s"])
            what = f"reaches accuracy {data.target} first, in {best['time_to_target_s']:.3g} s"
        else:
            best = max(rows, key=lambda r: r["throughput_samples_per_s"])
            what = f"has the highest throughput, {best['throughput_samples_per_s']:,.0f} samples/s"
        sp = best.get("speedup_vs_none")
        line = f"{v}: {short_label(best['compressor'])} {what}"
        if best["compressor"] != "none":
            out.append(line + (f" ({sp:.2f}× over none)." if sp is not None else "."))
            continue
        others = [r for r in rows if r is not best and r.get("speedup_vs_none") is not None]
        runner = max(others, key=lambda r: r["speedup_vs_none"], default=None)
        out.append(line + (f"; compression does not pay here (best: {short_label(runner['compressor'])}"
                           f" at {runner['speedup_vs_none']:.2f}×)." if runner else "."))
    return out

"""Network figures: the topology (with link utilisation when the results carry per-link
bytes, links.json) and the timeline of one iteration per worker (timeline.json)."""

from __future__ import annotations

import networkx as nx

from ..units import format_bandwidth
from .data import RunData, short_label
from .style import PALETTE, PHASE_COLOURS, plt, png

__all__ = ["topology", "timeline", "PHASE_OF", "layout", "graph_of"]

ROLE_COLOURS = {"worker": PALETTE[0], "switch": "#999999", "server": PALETTE[1], "nic": PALETTE[2]}
# timeline.json phase -> the breakdown's phase (and colour)
PHASE_OF = {"compute": "compute", "encode": "encode/decode", "communicate": "communication",
            "decode": "encode/decode", "wait": "waiting for stragglers"}
MAX_ROWS = 16  # workers drawn in a timeline; more would be unreadable


def graph_of(data: RunData, variant: str | None = None) -> nx.DiGraph | None:
    """The variant's topology built from scenario.resolved.yaml; None if it cannot be built."""
    from ..network import build_topology  # networkx + numpy only; imported late to stay light

    try:
        return build_topology(data.topology_spec(variant))
    except (ValueError, TypeError, KeyError):
        return None


def layout(g: nx.DiGraph) -> dict:
    """Layered drawing: workers on the bottom row, each other node one row per hop above
    its nearest worker (star: switch above workers; leaf-spine: leaves, then spines)."""
    und = g.to_undirected(as_view=True)
    workers = [n for n, d in g.nodes(data=True) if d.get("role") == "worker"]
    hops = nx.multi_source_dijkstra_path_length(und, workers, weight=lambda u, v, d: 1)
    if max(hops.values(), default=0) == 0:  # rings and tori: workers only
        return nx.circular_layout(g)
    rows: dict[int, list] = {}
    for n in g.nodes:
        rows.setdefault(hops.get(n, 0), []).append(n)
    pos = {}
    for level, nodes in rows.items():
        for i, n in enumerate(nodes):
            pos[n] = ((i + 0.5) / len(nodes), float(level))
    return pos


def _draw(ax, g, pos, util: dict | None) -> object:
    labels = g.number_of_nodes() <= 40
    nx.draw_networkx_nodes(g, pos, ax=ax, node_size=260 if labels else 40,
                           node_color=[ROLE_COLOURS.get(d.get("role"), "#666") for _, d in g.nodes(data=True)])
    if labels:
        nx.draw_networkx_labels(g, pos, ax=ax, font_size=7, font_color="white")
    edges = list(g.edges)
    colours = [100 * util.get(f"{u}->{v}", 0.0) for u, v in edges] if util is not None else "#888888"
    drawn = nx.draw_networkx_edges(g, pos, ax=ax, edgelist=edges, edge_color=colours,
                                   edge_cmap=plt.get_cmap("cividis_r"), edge_vmin=0, edge_vmax=100,
                                   width=2.0, arrows=True, arrowsize=8, node_size=260 if labels else 40,
                                   connectionstyle="arc3,rad=0.12")  # full duplex: both directions visible
    ax.set_axis_off()
    return drawn


def topology(data: RunData, variant: str) -> tuple[bytes | None, str]:
    """(PNG or None, caption). With links.json: one panel per compressor, edges coloured by
    utilisation = bytes per iteration / (bandwidth × mean iteration time)."""
    g = graph_of(data, variant)
    if g is None:
        return None, "The topology could not be rebuilt from scenario.resolved.yaml."
    pos = layout(g)
    bw = sorted({d["bandwidth"] for _, _, d in g.edges(data=True)})
    links_txt = ", ".join(format_bandwidth(b) for b in bw)
    per_comp = {c: data.links.get(f"{variant} / {c}") for c in data.compressors}
    if not any(per_comp.values()):
        fig, ax = plt.subplots(figsize=(7, 3.2))
        _draw(ax, g, pos, None)
        ax.set_title(f"{g.graph.get('kind', 'topology')}: {len(g)} nodes, links {links_txt}")
        return png(fig), ("Per-link traffic is not in this run's results files (no links.json), "
                          "so the links are drawn without utilisation.")
    comps = [c for c, v in per_comp.items() if v]
    cols = min(2, len(comps))
    rows = -(-len(comps) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.2 * rows), squeeze=False)
    mean_it = {r["compressor"]: r["mean_iteration_time_s"] for r in data.rows(variant)}
    drawn = None
    for ax, c in zip(axes.flat, comps):
        util = {k: b / (g.edges[k.split("->")[0], k.split("->")[1]]["bandwidth"] * mean_it[c])
                for k, b in per_comp[c].items() if "->" in k and g.has_edge(*k.split("->", 1))}
        drawn = _draw(ax, g, pos, util)
        busiest = max(util.values(), default=0.0)
        ax.set_title(f"{short_label(c)} (busiest link {100 * busiest:.0f} %)")
    for ax in list(axes.flat)[len(comps):]:
        ax.set_axis_off()
    if drawn:
        sm = plt.cm.ScalarMappable(cmap=plt.get_cmap("cividis_r"), norm=plt.Normalize(0, 100))
        fig.colorbar(sm, ax=axes, shrink=0.8, label="link utilisation (% of capacity)")
    return png(fig), (f"Links {links_txt}; colour: share of each direction's capacity used over "
                      "a mean iteration (bytes per iteration ÷ (bandwidth × mean iteration time)).")


def timeline(data: RunData, variant: str) -> bytes | None:
    """Gantt chart of the first iteration: one row per worker, one panel per compressor,
    a shared time axis (ms) so that panels compare directly."""
    comps = [c for c in data.compressors if data.timeline(variant, c)]
    if not comps:
        return None
    rows = min(MAX_ROWS, max(len(data.timeline(variant, c)) for c in comps))
    fig, axes = plt.subplots(len(comps), 1, figsize=(10, (0.2 * rows + 0.9) * len(comps) + 0.4),
                             sharex=True, squeeze=False)
    for ax, c in zip(axes[:, 0], comps):
        workers = data.timeline(variant, c)[:MAX_ROWS]
        for w in workers:
            for phase, group in PHASE_OF.items():
                start, end = w.get(phase, (0.0, 0.0))
                if end > start:
                    ax.barh(int(w["worker"]), 1e3 * (end - start), left=1e3 * start, height=0.7,
                            color=PHASE_COLOURS[group])
        ax.set_yticks([int(w["worker"]) for w in workers], [f"w{w['worker']}" for w in workers],
                      fontsize=6 if rows > 8 else 8)
        ax.invert_yaxis()
        more = len(data.timeline(variant, c)) - len(workers)
        ax.set_title(short_label(c) + (f" (first {len(workers)} workers of {len(workers) + more})"
                                       if more else ""), fontsize=9, loc="left")
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("time since the iteration started (ms, simulated)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=col) for col in PHASE_COLOURS.values()]
    fig.legend(handles, list(PHASE_COLOURS), loc="upper center", ncol=4, frameon=False,
               bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 0.97 if len(comps) > 1 else 0.92))
    return png(fig)

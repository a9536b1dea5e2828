"""Topologies from files: GraphML or JSON node-link, with unit-string attributes.

Spec: {"kind": "graphml" | "json", "path": ..., optional "bandwidth"/"latency" defaults
for links that lack them, optional "workers": [node ids in rank order] and "servers":
[node ids] when the file has no ``role`` attributes}. Undirected files (and undirected
links) become full-duplex pairs of directed edges. Nodes keep their attributes; ids become
strings.

JSON format (networkx node-link): {"directed": false, "nodes": [{"id": "a", "role":
"worker", "rank": 0}, ...], "links": [{"source": "a", "target": "s", "bandwidth":
"10 Gbit/s", "latency": "2 us"}, ...]}.
"""

from __future__ import annotations

import json
import os

import networkx as nx

from ..units import parse_bandwidth, parse_time
from .topology import builder, check_keys

_KEYS = {"path", "bandwidth", "latency", "workers", "servers"}


def _read(spec: dict, kind: str) -> nx.Graph:
    path = spec.get("path")
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"topology.path: expected a file path, got {path!r}")
    try:
        if kind == "graphml":
            return nx.read_graphml(path)
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        edges = "links" if "links" in data else "edges"
        return nx.node_link_graph(data, directed=data.get("directed", False), edges=edges)
    except (OSError, ValueError, KeyError, TypeError, nx.NetworkXError) as exc:
        raise ValueError(f"topology.path: cannot read {kind} file {path!r}: {exc}") from exc


def _convert(src: nx.Graph, spec: dict) -> nx.DiGraph:
    g = nx.DiGraph(kind=spec["kind"], source=str(spec["path"]))
    for n, d in src.nodes(data=True):
        g.add_node(str(n), **d)
    d_bw, d_lat = spec.get("bandwidth"), spec.get("latency", 0.0)
    for u, v, d in src.edges(data=True):
        where = f"topology.links[{u}->{v}]"
        bw = d.get("bandwidth", d_bw)
        if bw is None:
            raise ValueError(f"{where}.bandwidth: missing (set topology.bandwidth as default)")
        attrs = dict(d)
        attrs["bandwidth"] = parse_bandwidth(bw, f"{where}.bandwidth")
        attrs["latency"] = parse_time(d.get("latency", d_lat), f"{where}.latency")
        g.add_edge(str(u), str(v), **attrs)
        if not src.is_directed():
            g.add_edge(str(v), str(u), **attrs)
    for role in ("workers", "servers"):
        ids = spec.get(role)
        if ids is None:
            continue
        if not isinstance(ids, list):
            raise ValueError(f"topology.{role}: expected a list of node ids")
        for rank, n in enumerate(ids):
            if str(n) not in g:
                raise ValueError(f"topology.{role}: node {n!r} is not in the file")
            g.nodes[str(n)].update(role=role[:-1], rank=rank)
    for n, d in g.nodes(data=True):
        d.setdefault("role", "switch")
        if d["role"] in ("worker", "server"):
            try:
                d["rank"] = int(d["rank"])
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"topology.nodes[{n}].rank: workers and servers need an "
                                 f"integer rank, got {d.get('rank')!r}") from None
    return g


@builder("graphml")
def _graphml(spec: dict) -> nx.DiGraph:
    check_keys(spec, _KEYS)
    return _convert(_read(spec, "graphml"), spec)


@builder("json")
def _json(spec: dict) -> nx.DiGraph:
    check_keys(spec, _KEYS)
    return _convert(_read(spec, "json"), spec)

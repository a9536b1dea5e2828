"""Topology builders: a spec dict -> networkx.DiGraph.

Every link is full duplex: two directed edges, each with ``bandwidth`` (bytes/s) and
``latency`` (s). Nodes carry ``role`` ("worker", "server", "switch", "nic") and workers and
servers carry ``rank`` (0-based). Node ids are strings: workers "w<i>", servers "ps<j>",
switches "sw<...>". Values in specs may be unit strings ("10 Gbit/s", "5 us") or SI numbers.
Errors are ValueError naming the field, e.g. "topology.bandwidth: ...".
"""

from __future__ import annotations

import networkx as nx

from ..units import parse_bandwidth, parse_time
from ._cache import graph_cache

__all__ = ["build_topology", "workers", "servers", "add_link", "check_keys", "get_int"]

_BUILDERS: dict = {}


def builder(kind: str):
    """Register a builder ``fn(spec) -> DiGraph`` under ``kind``."""

    def deco(fn):
        _BUILDERS[kind] = fn
        return fn

    return deco


def add_link(g: nx.DiGraph, u, v, bandwidth: float, latency: float) -> None:
    """Full-duplex link u<->v: two directed edges (bandwidth in B/s, latency in s)."""
    g.add_edge(u, v, bandwidth=float(bandwidth), latency=float(latency))
    g.add_edge(v, u, bandwidth=float(bandwidth), latency=float(latency))


def check_keys(spec: dict, allowed: set, field: str = "topology") -> None:
    """Reject unknown keys so that typos fail loudly."""
    unknown = sorted(set(spec) - allowed - {"kind"})
    if unknown:
        raise ValueError(f"{field}.{unknown[0]}: unknown key (allowed: {sorted(allowed)})")


def get_int(spec: dict, key: str, default=None, minimum: int = 1, field: str = "topology") -> int:
    """An integer spec value >= minimum; ValueError names the field."""
    value = spec.get(key, default)
    if value is None:
        raise ValueError(f"{field}.{key}: required")
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"{field}.{key}: expected an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{field}.{key}: must be >= {minimum}, got {value!r}")
    return value


def link_params(spec: dict, bw_key: str = "bandwidth", lat_key: str = "latency",
                default_bw=None, default_lat=None, field: str = "topology") -> tuple[float, float]:
    """(bandwidth B/s, latency s) from spec keys, with optional fallbacks."""
    bw = spec.get(bw_key, default_bw)
    if bw is None:
        raise ValueError(f"{field}.{bw_key}: required")
    lat = spec.get(lat_key, default_lat if default_lat is not None else 0.0)
    return (parse_bandwidth(bw, f"{field}.{bw_key}"), parse_time(lat, f"{field}.{lat_key}"))


def add_worker(g: nx.DiGraph, rank: int, **attrs) -> str:
    node = f"w{rank}"
    g.add_node(node, role="worker", rank=rank, **attrs)
    return node


def add_servers(g: nx.DiGraph, spec: dict, attach, bw: float, lat: float, default: int = 1) -> None:
    """Attach ``spec['servers']`` PS shards (default ``default``) to switch ``attach``."""
    count = get_int(spec, "servers", default, minimum=0)
    s_bw = spec.get("server_bandwidth")
    s_bw = bw if s_bw is None else parse_bandwidth(s_bw, "topology.server_bandwidth")
    s_lat = spec.get("server_latency")
    s_lat = lat if s_lat is None else parse_time(s_lat, "topology.server_latency")
    for j in range(count):
        node = f"ps{j}"
        g.add_node(node, role="server", rank=j)
        add_link(g, node, attach, s_bw, s_lat)


SERVER_KEYS = {"servers", "server_bandwidth", "server_latency"}


@builder("star")
def _star(spec: dict) -> nx.DiGraph:
    """p workers (and PS shards) on one switch; worker-to-worker path = 2 hops."""
    check_keys(spec, {"workers", "bandwidth", "latency"} | SERVER_KEYS)
    p = get_int(spec, "workers")
    bw, lat = link_params(spec)
    g = nx.DiGraph(kind="star")
    g.add_node("sw0", role="switch")
    for i in range(p):
        add_link(g, add_worker(g, i), "sw0", bw, lat)
    add_servers(g, spec, "sw0", bw, lat)
    return g


@builder("ps")
def _ps(spec: dict) -> nx.DiGraph:
    """Alias of star (PS shards on the same switch)."""
    return _star(spec)


def build_topology(spec) -> nx.DiGraph:
    """Build a topology from a spec dict (``kind`` picks the builder); a DiGraph passes through.

    Kinds: star, ps, ring, torus2d, leaf_spine, fat_tree, hierarchical, graphml, json.
    """
    if isinstance(spec, nx.DiGraph):
        return spec
    if isinstance(spec, nx.Graph):
        raise ValueError("topology: expected a directed graph (networkx.DiGraph)")
    if not isinstance(spec, dict):
        raise ValueError(f"topology: expected a dict or networkx.DiGraph, got {type(spec).__name__}")
    _load_builders()
    kind = spec.get("kind")
    if kind not in _BUILDERS:
        raise ValueError(f"topology.kind: unknown kind {kind!r} (known: {sorted(_BUILDERS)})")
    g = _BUILDERS[kind](spec)
    if not workers(g):
        raise ValueError("topology.workers: the topology has no workers")
    return g


def _load_builders() -> None:
    # Importing the modules registers their builders (kept out of this one for size).
    from . import datacenter, files  # noqa: F401


def _ranked(g: nx.DiGraph, role: str) -> list:
    cache = graph_cache(g)
    key = ("ranked", role)
    if key not in cache:
        nodes = [n for n, d in g.nodes(data=True) if d.get("role") == role]
        nodes.sort(key=lambda n: (g.nodes[n].get("rank", 0), str(n)))
        cache[key] = tuple(nodes)
    return list(cache[key])


def workers(g: nx.DiGraph) -> list:
    """Worker node ids in rank order."""
    return _ranked(g, "worker")


def servers(g: nx.DiGraph) -> list:
    """Parameter-server node ids in rank order."""
    return _ranked(g, "server")

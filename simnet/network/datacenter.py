"""Direct and data-centre topologies: ring, torus2d, leaf_spine, fat_tree, hierarchical.

Bandwidths in B/s (or unit strings), latencies in s (or unit strings). Oversubscription
o >= 1 divides the bandwidth of the links above the first switch layer, so a leaf/edge
switch has o times more host bandwidth than uplink bandwidth.
"""

from __future__ import annotations

import math

import networkx as nx

from ..units import parse_bandwidth, parse_time
from .topology import (SERVER_KEYS, add_link, add_servers, add_worker, builder, check_keys,
                       get_int, link_params)

LINK = {"bandwidth", "latency"}


def _oversub(spec: dict) -> float:
    o = spec.get("oversubscription", 1.0)
    if isinstance(o, bool) or not isinstance(o, (int, float)) or not o >= 1:
        raise ValueError(f"topology.oversubscription: expected a number >= 1, got {o!r}")
    return float(o)


def _uplink(spec: dict, bw: float, lat: float, per_switch_hosts: float, uplinks: int):
    """Uplink (bandwidth, latency): explicit ``uplink_bandwidth`` or sized so that the
    switch's host bandwidth / uplink bandwidth = oversubscription."""
    if "uplink_bandwidth" in spec:
        ubw = parse_bandwidth(spec["uplink_bandwidth"], "topology.uplink_bandwidth")
    else:
        ubw = bw * per_switch_hosts / (uplinks * _oversub(spec))
    ulat = spec.get("uplink_latency")
    return ubw, (lat if ulat is None else parse_time(ulat, "topology.uplink_latency"))


@builder("ring")
def _ring(spec: dict) -> nx.DiGraph:
    """Workers linked in a cycle, no switches (neighbours 1 hop apart)."""
    check_keys(spec, {"workers"} | LINK)
    p = get_int(spec, "workers")
    bw, lat = link_params(spec)
    g = nx.DiGraph(kind="ring")
    nodes = [add_worker(g, i) for i in range(p)]
    for i in range(p if p > 2 else p - 1):
        add_link(g, nodes[i], nodes[(i + 1) % p], bw, lat)
    return g


@builder("torus2d")
def _torus(spec: dict) -> nx.DiGraph:
    """rows x cols workers, each linked to its right and lower neighbour (wrapping).
    Rank = row * cols + col. ``workers`` may replace one of rows/cols."""
    check_keys(spec, {"rows", "cols", "workers"} | LINK)
    if "rows" in spec and "cols" in spec:
        r, c = get_int(spec, "rows"), get_int(spec, "cols")
    else:
        p = get_int(spec, "workers")
        r = get_int(spec, "rows") if "rows" in spec else max(
            d for d in range(1, math.isqrt(p) + 1) if p % d == 0)
        if p % r:
            raise ValueError(f"topology.rows: {r} does not divide workers={p}")
        c = p // r
    bw, lat = link_params(spec)
    g = nx.DiGraph(kind="torus2d")
    for i in range(r * c):
        add_worker(g, i, row=i // c, col=i % c)
    for i in range(r):
        for j in range(c):
            if c > 1:
                add_link(g, f"w{i * c + j}", f"w{i * c + (j + 1) % c}", bw, lat)
            if r > 1:
                add_link(g, f"w{i * c + j}", f"w{((i + 1) % r) * c + j}", bw, lat)
    return g


@builder("leaf_spine")
def _leaf_spine(spec: dict) -> nx.DiGraph:
    """``workers`` hosts, ``workers_per_leaf`` per leaf switch (default 16), ``spines``
    spine switches (default 4), every leaf linked to every spine. PS shards sit on an
    extra leaf."""
    check_keys(spec, {"workers", "workers_per_leaf", "spines", "oversubscription",
                      "uplink_bandwidth", "uplink_latency"} | LINK | SERVER_KEYS)
    p = get_int(spec, "workers")
    per = get_int(spec, "workers_per_leaf", 16)
    spines = get_int(spec, "spines", 4)
    bw, lat = link_params(spec)
    ubw, ulat = _uplink(spec, bw, lat, per, spines)
    g = nx.DiGraph(kind="leaf_spine")
    n_leaves = -(-p // per)
    for s in range(spines):
        g.add_node(f"spine{s}", role="switch")
    for leaf in range(n_leaves + 1):
        name = f"leaf{leaf}" if leaf < n_leaves else "leaf_ps"
        g.add_node(name, role="switch")
        for s in range(spines):
            add_link(g, name, f"spine{s}", ubw, ulat)
    for i in range(p):
        add_link(g, add_worker(g, i, leaf=i // per), f"leaf{i // per}", bw, lat)
    add_servers(g, spec, "leaf_ps", bw, lat, default=0)
    if g.degree("leaf_ps") == 2 * spines:
        g.remove_node("leaf_ps")
    return g


@builder("fat_tree")
def _fat_tree(spec: dict) -> nx.DiGraph:
    """k-ary fat tree (Al-Fares et al. 2008): k pods of k/2 edge and k/2 aggregation
    switches, (k/2)^2 cores, k/2 hosts per edge switch, k^3/4 host slots. ``workers``
    fill the first slots; without ``k`` the smallest even k that fits is used.
    Oversubscription divides edge-aggregation and aggregation-core bandwidth."""
    check_keys(spec, {"workers", "k", "oversubscription", "uplink_bandwidth",
                      "uplink_latency"} | LINK | SERVER_KEYS)
    if "k" in spec:
        k = get_int(spec, "k", minimum=2)
        if k % 2:
            raise ValueError(f"topology.k: must be even, got {k}")
        p = get_int(spec, "workers", k ** 3 // 4)
        if p > k ** 3 // 4:
            raise ValueError(f"topology.workers: {p} exceed the {k ** 3 // 4} hosts of k={k}")
    else:
        p = get_int(spec, "workers")
        k = 2
        while k ** 3 // 4 < p:
            k += 2
    bw, lat = link_params(spec)
    h = k // 2
    ubw, ulat = _uplink(spec, bw, lat, h, h)
    g = nx.DiGraph(kind="fat_tree", k=k)
    for c in range(h * h):
        g.add_node(f"core{c}", role="switch")
    for pod in range(k):
        for a in range(h):
            agg = f"agg{pod}_{a}"
            g.add_node(agg, role="switch")
            for c in range(h):  # aggregation a reaches cores a*h .. a*h + h - 1
                add_link(g, agg, f"core{a * h + c}", ubw, ulat)
        for e in range(h):
            edge = f"edge{pod}_{e}"
            g.add_node(edge, role="switch")
            for a in range(h):
                add_link(g, edge, f"agg{pod}_{a}", ubw, ulat)
    for i in range(p):
        pod, e = divmod(i // h, h)
        add_link(g, add_worker(g, i, pod=pod), f"edge{pod}_{e}", bw, lat)
    add_servers(g, spec, "core0", bw, lat, default=0)
    return g


@builder("hierarchical")
def _hierarchical(spec: dict) -> nx.DiGraph:
    """``hosts`` x ``gpus_per_host`` GPUs. In a host the GPUs hang off an intra-host switch
    (NVLink/PCIe: ``intra_bandwidth``, ``intra_latency``), which reaches ``nics_per_host``
    NICs (``pcie_bandwidth``, default intra_bandwidth); NICs link to one top switch at
    ``bandwidth``/``latency``. Workers carry ``host``; rank = host * gpus_per_host + gpu."""
    check_keys(spec, {"hosts", "gpus_per_host", "intra_bandwidth", "intra_latency",
                      "nics_per_host", "pcie_bandwidth"} | LINK | SERVER_KEYS)
    hosts = get_int(spec, "hosts")
    gph = get_int(spec, "gpus_per_host")
    nics = get_int(spec, "nics_per_host", 1)
    bw, lat = link_params(spec)
    ibw, ilat = link_params(spec, "intra_bandwidth", "intra_latency")
    pbw = parse_bandwidth(spec.get("pcie_bandwidth", ibw), "topology.pcie_bandwidth")
    g = nx.DiGraph(kind="hierarchical")
    g.add_node("sw0", role="switch")
    for hh in range(hosts):
        hsw = f"h{hh}_sw"
        g.add_node(hsw, role="switch")
        for m in range(nics):
            nic = f"h{hh}_nic{m}"
            g.add_node(nic, role="nic")
            add_link(g, hsw, nic, pbw, 0.0)
            add_link(g, nic, "sw0", bw, lat)
        for j in range(gph):
            add_link(g, add_worker(g, hh * gph + j, host=hh), hsw, ibw, ilat)
    add_servers(g, spec, "sw0", bw, lat, default=0)
    return g

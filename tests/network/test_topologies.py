"""Topology builders, files, max-min against a reference, hierarchical closed form."""

import json

import networkx as nx
import numpy as np
import pytest

from simnet import network
from simnet.network import cost
from simnet.network.maxmin import maxmin_rates


def reference_maxmin(n_flows, paths, cap):
    """Textbook progressive filling, one bottleneck level at a time, pure Python."""
    rate = [0.0] * n_flows
    frozen = [False] * n_flows
    residual = list(cap)
    while not all(frozen):
        share = {}
        for e in range(len(cap)):
            users = [f for f in range(n_flows) if not frozen[f] and e in paths[f]]
            if users:
                share[e] = residual[e] / len(users)
        level = min(share.values())
        for f in range(n_flows):
            if not frozen[f]:
                rate[f] += level
        for e in range(len(cap)):
            users = [f for f in range(n_flows) if not frozen[f] and e in paths[f]]
            residual[e] -= level * len(users)
        for e, s in share.items():
            if s <= level * (1 + 1e-12):
                for f in range(n_flows):
                    if e in paths[f]:
                        frozen[f] = True
    return rate


@pytest.mark.parametrize("seed", range(12))
def test_maxmin_matches_reference(seed):
    rng = np.random.default_rng(seed)
    n_links, n_flows = int(rng.integers(2, 8)), int(rng.integers(1, 12))
    cap = rng.uniform(0.5, 5.0, n_links)
    paths = [sorted(set(rng.choice(n_links, rng.integers(1, 4)).tolist())) for _ in range(n_flows)]
    pf = np.concatenate([[f] * len(p) for f, p in enumerate(paths)]).astype(int)
    pl = np.concatenate(paths).astype(int)
    got = maxmin_rates(n_flows, pf, pl, cap)
    assert got == pytest.approx(reference_maxmin(n_flows, paths, cap), rel=1e-9)
    # Feasible, and every flow has a saturated link where it is among the largest.
    load = np.bincount(pl, weights=got[pf], minlength=n_links)
    assert np.all(load <= cap * (1 + 1e-9))


def test_fat_tree_k4_shape():
    g = network.build_topology({"kind": "fat_tree", "k": 4, "bandwidth": "10 Gbit/s"})
    roles = nx.get_node_attributes(g, "role")
    assert sum(r == "worker" for r in roles.values()) == 16
    assert sum(r == "switch" for r in roles.values()) == 4 + 8 + 8
    assert g.number_of_edges() == 2 * (16 + 16 + 16)  # host, edge-agg, agg-core links
    # Hosts in different pods are 6 hops apart, same edge switch 2 hops.
    r = network.routing.router(g)
    assert len(r.path("w0", "w15")) == 6 and len(r.path("w0", "w1")) == 2


def test_fat_tree_oversubscription_slows_cross_pod_traffic():
    base = {"kind": "fat_tree", "k": 4, "bandwidth": 1e9, "latency": 0}
    t1 = network.collective_time(base, "allgather", 10**6)
    t4 = network.collective_time({**base, "oversubscription": 4}, "allgather", 10**6)
    assert t4 > 2 * t1


def test_ring_topology_matches_one_hop_closed_form():
    p, bw, lat = 9, 1e9, 3e-6
    t = network.collective_time({"kind": "ring", "workers": p, "bandwidth": bw, "latency": lat},
                                "ring-allreduce", 10**7)
    assert t == pytest.approx(cost.ring_allreduce(p, 10**7, lat, 1 / bw), rel=1e-9)


def test_torus_shape():
    g = network.build_topology({"kind": "torus2d", "rows": 3, "cols": 4, "bandwidth": 1e9})
    assert all(g.out_degree(w) == 4 for w in network.workers(g))


@pytest.mark.parametrize("hosts,gpus", [(2, 2), (3, 4), (4, 8)])
def test_hierarchical_allreduce_closed_form(hosts, gpus):
    spec = {"kind": "hierarchical", "hosts": hosts, "gpus_per_host": gpus,
            "intra_bandwidth": "300 GB/s", "intra_latency": "1 us",
            "bandwidth": "100 Gbit/s", "latency": "2 us"}
    n = 64_000_000
    want = cost.hierarchical_allreduce(gpus, hosts, n, 2e-6, 1 / 300e9,
                                       2 * 1e-6 + 2 * 2e-6, 8 / 100e9)
    assert network.collective_time(spec, "hierarchical-allreduce", n) == pytest.approx(want,
                                                                                      rel=1e-9)
    ana = network.collective_time(spec, "hierarchical-allreduce", n, fidelity="analytic")
    assert ana == pytest.approx(want, rel=1e-9)
    # Hierarchical beats a flat ring when NICs are the bottleneck.
    assert want < network.collective_time(spec, "ring-allreduce", n)


def test_json_file_with_units(tmp_path):
    data = {"directed": False, "nodes": [
        {"id": "a", "role": "worker", "rank": 1}, {"id": "b", "role": "worker", "rank": 0},
        {"id": "s"}], "links": [
        {"source": "a", "target": "s", "bandwidth": "8 Gbit/s", "latency": "1 us"},
        {"source": "b", "target": "s", "bandwidth": "8 Gbit/s", "latency": "1 us"}]}
    path = tmp_path / "dc.json"
    path.write_text(json.dumps(data))
    g = network.build_topology({"kind": "json", "path": str(path)})
    assert network.workers(g) == ["b", "a"] and g.edges["s", "a"]["bandwidth"] == 1e9
    t = network.collective_time(g, "allgather", 10**6)
    assert t == pytest.approx(2e-6 + 1e-3, rel=1e-9)


def test_graphml_file_roles_from_spec(tmp_path):
    u = nx.Graph()
    u.add_edge("x", "hub", bandwidth="1 GB/s")
    u.add_edge("y", "hub", bandwidth="1 GB/s")
    path = tmp_path / "dc.graphml"
    nx.write_graphml(u, path)
    g = network.build_topology({"kind": "graphml", "path": str(path), "latency": "5 us",
                                "workers": ["x", "y"]})
    assert network.workers(g) == ["x", "y"] and g.edges["hub", "x"]["latency"] == pytest.approx(5e-6)
    with pytest.raises(ValueError, match="topology.path"):
        network.build_topology({"kind": "graphml", "path": str(tmp_path / "nope.graphml")})
    with pytest.raises(ValueError, match=r"topology.links\[.*\].bandwidth"):
        bad = nx.Graph()
        bad.add_edge("x", "hub")
        nx.write_graphml(bad, tmp_path / "bad.graphml")
        network.build_topology({"kind": "graphml", "path": str(tmp_path / "bad.graphml"),
                                "workers": ["x"]})


def test_leaf_spine_servers_and_ps():
    g = network.build_topology({"kind": "leaf_spine", "workers": 8, "workers_per_leaf": 4,
                                "spines": 2, "bandwidth": 1e9, "servers": 2})
    assert network.servers(g) == ["ps0", "ps1"]
    assert network.collective_time(g, "ps", 10**6) > 0

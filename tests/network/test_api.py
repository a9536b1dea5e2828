"""Topology specs, errors, and the torch-free import guarantee."""

import subprocess
import sys

import networkx as nx
import pytest

from simnet import network


def test_star_shape_and_units():
    g = network.build_topology({"kind": "star", "workers": 8, "bandwidth": "1 Gbit/s",
                                "latency": "20 us"})
    assert isinstance(g, nx.DiGraph)
    assert network.workers(g) == [f"w{i}" for i in range(8)]
    assert network.servers(g) == ["ps0"]
    for u, v, d in g.edges(data=True):
        assert g.has_edge(v, u)  # full duplex
        assert d["bandwidth"] == pytest.approx(1.25e8) and d["latency"] == pytest.approx(20e-6)


def test_servers_and_server_bandwidth():
    g = network.build_topology({"kind": "star", "workers": 4, "bandwidth": 1e9, "latency": 0,
                                "servers": 3, "server_bandwidth": "100 Gbit/s"})
    assert network.servers(g) == ["ps0", "ps1", "ps2"]
    assert g.edges["sw0", "ps2"]["bandwidth"] == pytest.approx(12.5e9)


@pytest.mark.parametrize("spec,field", [
    ({"kind": "star", "workers": 4, "bandwidth": "fast"}, "topology.bandwidth"),
    ({"kind": "star", "workers": 4, "bandwidth": "1 Gbit/s", "latency": "3 parsecs"},
     "topology.latency"),
    ({"kind": "star", "workers": 0, "bandwidth": 1e9}, "topology.workers"),
    ({"kind": "star", "workers": 2.5, "bandwidth": 1e9}, "topology.workers"),
    ({"kind": "star", "workers": 4}, "topology.bandwidth"),
    ({"kind": "moebius", "workers": 4}, "topology.kind"),
    ({"kind": "star", "workers": 4, "bandwith": 1e9}, "topology.bandwith"),
])
def test_errors_name_the_field(spec, field):
    with pytest.raises(ValueError, match=field):
        network.build_topology(spec)


def test_collective_errors():
    g = network.build_topology({"kind": "star", "workers": 3, "bandwidth": 1e9, "servers": 0})
    with pytest.raises(ValueError, match="collective"):
        network.collective_time(g, "gossip", 10)
    with pytest.raises(ValueError, match="nbytes"):
        network.simulate_collective(g, "allgather", [1, 2])
    with pytest.raises(ValueError, match="servers"):
        network.collective_time(g, "ps", 10)


def test_single_worker_is_free():
    g = network.build_topology({"kind": "star", "workers": 1, "bandwidth": 1e9})
    res = network.simulate_collective(g, "ring-allreduce", [10], [0.5])
    assert res.finish_s == [0.5] and res.end_s == 0.5


def test_spec_dict_and_graph_agree():
    spec = {"kind": "star", "workers": 5, "bandwidth": "10 Gbit/s", "latency": "5 us"}
    a = network.collective_time(spec, "ring-allreduce", 10**6)
    b = network.collective_time(network.build_topology(spec), "ring-allreduce", 10**6)
    assert a == b


def test_import_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from simnet import network\n"
            "t = network.collective_time({'kind': 'star', 'workers': 4, 'bandwidth': 1e9},"
            " 'ring-allreduce', 1000)\n"
            "assert t > 0 and 'torch' not in [m for m in sys.modules if sys.modules[m]]\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr

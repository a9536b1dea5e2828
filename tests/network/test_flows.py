"""Max-min textbook cases and fluid-network timing oracles."""

import networkx as nx
import numpy as np
import pytest
import simpy

from simnet import network
from simnet.network.flows import FluidNetwork
from simnet.network.maxmin import maxmin_rates
from simnet.network.topology import add_link


def rates(cap, paths):
    pf = np.concatenate([[f] * len(p) for f, p in enumerate(paths)]).astype(int)
    pl = np.concatenate([p for p in paths]).astype(int)
    return maxmin_rates(len(paths), pf, pl, np.asarray(cap, float))


@pytest.mark.parametrize("k", [1, 2, 3, 7, 100])
def test_k_flows_share_one_link(k):
    assert rates([10.0], [[0]] * k) == pytest.approx([10.0 / k] * k, rel=1e-12)


def test_line_one_long_two_short():
    # Classic: long flow over links 0,1,2 (cap 1 each) plus one short flow per link
    # on links 0 and 1: every link is shared by two flows -> all get 1/2, and
    # the lone short flow on link 2... link 2 has only the long flow left -> stays 1/2.
    assert rates([1, 1, 1], [[0, 1, 2], [0], [1]]) == pytest.approx([0.5, 0.5, 0.5])


def test_two_bottlenecks_different_capacities():
    # Link 0 cap 1, link 1 cap 2; long flow over both, one short flow on each.
    # Link 0 bottleneck: long = short0 = 1/2; short1 takes the rest of link 1: 1.5.
    assert rates([1, 2], [[0, 1], [0], [1]]) == pytest.approx([0.5, 0.5, 1.5])


def test_three_levels():
    # Link 0 (cap 3) shared by 3 flows; flow 2 also crosses link 1 (cap 0.5) with flow 3.
    # Level 1: link 1 share 0.25 -> flows 2, 3 at 0.25; link 0: (3 - .25)/2 = 1.375.
    r = rates([3, 0.5], [[0], [0], [0, 1], [1]])
    assert r == pytest.approx([1.375, 1.375, 0.25, 0.25])


def line_graph(caps, lat=0.0):
    g = nx.DiGraph()
    for i in range(len(caps) + 1):
        g.add_node(f"w{i}", role="worker", rank=i)
    for i, c in enumerate(caps):
        add_link(g, f"w{i}", f"w{i + 1}", c, lat)
    return g


class Recorder:
    def __init__(self):
        self.t = {}
        self.calls = 0

    def on_delivered(self, ids, t):
        self.calls += 1
        for i in ids:
            self.t[int(i)] = t


def run_flows(g, flows, starts=None):
    """flows: list of (src, dst, size); returns {flow index: delivery time}."""
    env = simpy.Environment()
    net = FluidNetwork(env, g)
    rec = Recorder()
    r = net.router
    starts = starts or [0.0] * len(flows)
    for i, ((u, v, size), t0) in enumerate(zip(flows, starts)):
        def go(_e, i=i, u=u, v=v, size=size):
            links, lat = r.routes(np.array([r.index[u]]), np.array([r.index[v]]))
            net.submit(rec, [i], links, lat, [size])
        env.timeout(t0).callbacks.append(go)
    env.run()
    return rec, net


def test_processor_sharing_on_one_link():
    # Sizes 1, 2, 3 bytes on a 1 B/s link: rates 1/3 each until the first ends at t=3,
    # then 1/2 each: the second ends at 3 + 2 = 5, the third at 5 + 1 = 6.
    rec, _ = run_flows(line_graph([1.0]), [("w0", "w1", s) for s in (1, 2, 3)])
    assert [rec.t[i] for i in range(3)] == pytest.approx([3.0, 5.0, 6.0], rel=1e-12)


def test_long_flow_speeds_up_when_short_ones_end():
    # Line of two 1 B/s links. Long flow w0->w2 (2 B) with short flows w0->w1 (0.5 B) and
    # w1->w2 (1 B): all at 1/2 until t=1 (short0 done); long (1.5 B left) still shares
    # link 1 with short1 (0.5 B left) until t=2; then long runs alone at 1 B/s: 1 B -> t=3.
    rec, _ = run_flows(line_graph([1.0, 1.0]),
                       [("w0", "w2", 2.0), ("w0", "w1", 0.5), ("w1", "w2", 1.0)])
    assert [rec.t[i] for i in range(3)] == pytest.approx([3.0, 1.0, 2.0], rel=1e-12)


def test_flows_ending_at_same_instant_are_delivered_together():
    k = 17
    rec, net = run_flows(line_graph([3.0], lat=1e-3), [("w0", "w1", 5.0)] * k)
    assert len(set(rec.t.values())) == 1
    assert rec.t[0] == pytest.approx(k * 5.0 / 3.0 + 1e-3, rel=1e-12)
    assert rec.calls == 1  # one delivery batch
    assert net.recomputes == 1  # one rate computation for all k starts
    assert net.active == 0


def test_late_flow_joins_and_latency_is_added():
    # Flow A (4 B) at t=0, flow B (1 B) at t=1 on a 1 B/s link with 0.5 s latency.
    # A alone till 1 (1 B done), then 1/2 each: B drains at 3, A has 3-1=2 B left at t=3
    # minus 1 B shared -> A drains at 3 + 2 = 5. Deliveries +0.5 s.
    rec, _ = run_flows(line_graph([1.0], lat=0.5), [("w0", "w1", 4.0), ("w0", "w1", 1.0)],
                       starts=[0.0, 1.0])
    assert rec.t[0] == pytest.approx(5.5, rel=1e-12)
    assert rec.t[1] == pytest.approx(3.5, rel=1e-12)


def test_allgather_per_worker_sizes_and_starts():
    bw, lat = 1e6, 1e-4
    g = network.build_topology({"kind": "star", "workers": 2, "bandwidth": bw, "latency": lat})
    res = network.simulate_collective(g, "allgather", nbytes=[1000, 5000], start_s=[0.0, 0.01])
    # Each worker is done when it holds the other's payload (two-hop path, no contention).
    # Worker 1 has w0's payload at 1.2 ms but its own is ready only at 10 ms.
    assert res.finish_s == pytest.approx([0.01 + 2 * lat + 5000 / bw, 0.01])
    assert res.end_s == max(res.finish_s)
    assert res.link_bytes[("w0", "sw0")] == 1000 and res.link_bytes[("sw0", "w0")] == 5000


def test_ring_allgather_per_worker_sizes():
    # Every ring step forwards each payload once, so each step costs the largest one.
    p, bw, lat = 6, 1e9, 1e-6
    g = network.build_topology({"kind": "star", "workers": p, "bandwidth": bw, "latency": lat})
    n = [100, 7000, 300, 2500, 50, 900]
    t = network.collective_time(g, "ring-allgather", n)
    assert t == pytest.approx((p - 1) * (2 * lat + max(n) / bw), rel=1e-9)


def test_ps_per_worker_pushes_processor_sharing():
    # Server link 1 B/s, fast worker links: pushes 1, 2, 3 B share the server downlink:
    # last push lands at t=6 (see processor sharing), then compute 1 s, then replies of
    # 1 B each share the server uplink (3 flows): 3 s. Latency 0.
    g = network.build_topology({"kind": "star", "workers": 3, "bandwidth": 1e6,
                                "latency": 0, "server_bandwidth": 1.0})
    res = network.simulate_collective(g, "ps", [1, 2, 3], [0, 0, 0], reply_nbytes=1,
                                      server_compute_s=1.0)
    assert res.finish_s == pytest.approx([6.0 + 1.0 + 3.0] * 3, rel=1e-6)


def test_ecmp_routes_are_shortest_and_deterministic():
    g = nx.DiGraph()
    for i in range(2):
        g.add_node(f"w{i}", role="worker", rank=i)
    for s in range(4):  # four equal-cost middle switches
        add_link(g, "w0", f"s{s}", 1.0, 0.0)
        add_link(g, f"s{s}", "w1", 1.0, 0.0)
    r = network.routing.router(g)
    path = r.path("w0", "w1")
    assert len(path) == 2 and path[0][0] == "w0" and path[1][1] == "w1"
    assert network.routing.Router(g).path("w0", "w1") == path

"""Fluid model vs closed forms (cost.py) on contention-free stars, p = 2..64."""

import pytest

from simnet import network
from simnet.network import cost

P = [2, 3, 5, 6, 8, 13, 16, 31, 64]
BW, LAT = 1.25e9, 5e-6  # 10 Gbit/s, 5 us per link
ALPHA, BETA = 2 * LAT, 1 / BW  # worker-to-worker path on a star: two hops
N = 3_000_017  # bytes, deliberately not divisible by p


def star(p, **kw):
    return network.build_topology({"kind": "star", "workers": p, "bandwidth": BW,
                                   "latency": LAT, **kw})


def check(p, collective, expected, **kw):
    t = network.collective_time(star(p), collective, N, **kw)
    assert t == pytest.approx(expected, rel=1e-9)
    a = network.collective_time(star(p), collective, N, fidelity="analytic", **kw)
    assert a == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("p", P)
def test_ring_allreduce(p):
    check(p, "ring-allreduce", cost.ring_allreduce(p, N, ALPHA, BETA))


@pytest.mark.parametrize("p", P)
def test_ring_allgather(p):
    check(p, "ring-allgather", cost.ring_allgather(p, p * N, ALPHA, BETA))


@pytest.mark.parametrize("p", P)
def test_direct_allgather(p):
    check(p, "allgather", cost.direct_allgather_star(p, N, ALPHA, BETA))


@pytest.mark.parametrize("p", P)
def test_tree_allreduce(p):
    check(p, "tree-allreduce", cost.halving_doubling_allreduce(p, N, ALPHA, BETA))


@pytest.mark.parametrize("p", P)
def test_broadcast(p):
    check(p, "broadcast", cost.binomial_broadcast(p, N, ALPHA, BETA))


@pytest.mark.parametrize("p", [2, 5, 16, 64])
@pytest.mark.parametrize("shards,server_bw", [(1, BW), (1, 8 * BW), (3, BW), (4, 100 * BW)])
def test_ps(p, shards, server_bw):
    g = star(p, servers=shards, server_bandwidth=server_bw)
    reply = 1_000_003
    want = cost.ps_push_pull(p, N, reply, ALPHA, BETA, 1 / server_bw, shards, compute_s=1e-3)
    res = network.simulate_collective(g, "ps", [N] * p, [0.0] * p, reply_nbytes=reply,
                                      server_compute_s=1e-3)
    assert res.end_s == pytest.approx(want, rel=1e-9)
    assert res.finish_s == pytest.approx([want] * p, rel=1e-9)
    ana = network.simulate_collective(g, "ps", N, reply_nbytes=reply, server_compute_s=1e-3,
                                      fidelity="analytic")
    assert ana.end_s == pytest.approx(want, rel=1e-9)


def test_ring_allreduce_doubled_by_tree_at_power_of_two_sizes():
    # Cross-check two closed forms: for p a power of two both move 2(p-1)/p n bytes.
    p = 16
    ring = cost.ring_allreduce(p, N, 0.0, BETA)
    tree = cost.halving_doubling_allreduce(p, N, 0.0, BETA)
    assert ring == pytest.approx(tree, rel=1e-12)


def test_hierarchical_on_star_is_ring():
    p = 12
    assert network.collective_time(star(p), "hierarchical-allreduce", N) == pytest.approx(
        cost.ring_allreduce(p, N, ALPHA, BETA), rel=1e-9)


def test_link_bytes_ring_allreduce():
    p = 8
    res = network.simulate_collective(star(p), "ring-allreduce", [N] * p, [0.0] * p)
    # Each worker's uplink carries 2(p-1) chunks of N/p bytes.
    assert res.link_bytes[("w0", "sw0")] == pytest.approx(2 * (p - 1) * N / p)
    assert res.link_bytes[("sw0", "w1")] == pytest.approx(2 * (p - 1) * N / p)
    assert ("w0", "ps0") not in res.link_bytes

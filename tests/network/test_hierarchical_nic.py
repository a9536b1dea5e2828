"""Hierarchical all-reduce: g shard rings sharing one host NIC are slower by the predicted factor.

Setup: h hosts of g GPUs. Phase 1 (intra-host ring reduce-scatter) and phase 3 (intra-host ring
all-gather) each take (g-1) steps of n/g bytes over GPU -> host switch -> GPU:
    (g-1) (a_in + n/g / B_in),   a_in = 2 x intra latency.
Phase 2 runs g concurrent inter-host rings (one per local rank j), 2(h-1) steps of n/(g h) bytes,
all flows starting together by symmetry. Path GPU -> host switch -> NIC -> top switch -> NIC ->
host switch -> GPU, latency a_out = 2 x intra + 2 x NIC latency (PCIe links: 0 s).

* One shared NIC per host (``nics_per_host=1``): every NIC link carries the g rings' flows,
  max-min gives each B/g (PCIe and NVLink much faster), so a step takes
  a_out + (n/(g h)) / (B/g) = a_out + n/h / B.
* One NIC per GPU (rail-optimised: GPU j wired to its own NIC j, same latencies): ring j alone
  on its NIC links, a step takes a_out + n/(g h) / B.

So the inter-host phase is g times slower with a shared NIC (exactly g when latencies are 0).
"""

import networkx as nx
import pytest

from simnet import network
from simnet.network.topology import add_link, add_worker

N = 64_000_000
INTRA_BW, INTRA_LAT = 300e9, 1e-6  # B/s, s (NVLink)
NIC_BW, NIC_LAT = 12.5e9, 2e-6  # 100 Gbit/s


def shared_nic(h, g, intra_lat=INTRA_LAT, nic_lat=NIC_LAT):
    return network.build_topology({
        "kind": "hierarchical", "hosts": h, "gpus_per_host": g, "nics_per_host": 1,
        "intra_bandwidth": INTRA_BW, "intra_latency": intra_lat,
        "bandwidth": NIC_BW, "latency": nic_lat})


def nic_per_gpu(h, g, intra_lat=INTRA_LAT, nic_lat=NIC_LAT):
    """As ``hierarchical`` with g NICs per host, but GPU j reaches NIC j directly (a PCIe link
    with the intra-host latency, so that paths have the same latency as via the host switch):
    the unique shortest path between GPU j of two hosts uses NIC j of each."""
    gr = nx.DiGraph(kind="rail")
    gr.add_node("sw0", role="switch")
    for a in range(h):
        hsw = f"h{a}_sw"
        gr.add_node(hsw, role="switch")
        for j in range(g):
            w = add_worker(gr, a * g + j, host=a)
            add_link(gr, w, hsw, INTRA_BW, intra_lat)
            nic = f"h{a}_nic{j}"
            gr.add_node(nic, role="nic")
            add_link(gr, w, nic, INTRA_BW, intra_lat)
            add_link(gr, nic, "sw0", NIC_BW, nic_lat)
    return gr


def phases(h, g, nic_share, intra_lat=INTRA_LAT, nic_lat=NIC_LAT):
    """(intra phases 1 + 3, inter phase 2) in seconds; ``nic_share``: rings per NIC link."""
    a_in = 2 * intra_lat
    a_out = 2 * intra_lat + 2 * nic_lat
    intra = 2 * (g - 1) * (a_in + N / g / INTRA_BW)
    inter = 2 * (h - 1) * (a_out + N / (g * h) / (NIC_BW / nic_share))
    return intra, inter


@pytest.mark.parametrize("h,g", [(2, 2), (3, 4), (4, 8)])
def test_shared_nic_slower_by_predicted_factor(h, g):
    t_shared = network.collective_time(shared_nic(h, g), "hierarchical-allreduce", N)
    t_rail = network.collective_time(nic_per_gpu(h, g), "hierarchical-allreduce", N)
    intra, inter_shared = phases(h, g, nic_share=g)
    _, inter_rail = phases(h, g, nic_share=1)
    assert t_shared == pytest.approx(intra + inter_shared, rel=1e-9)
    assert t_rail == pytest.approx(intra + inter_rail, rel=1e-9)
    # The inter-host phase alone: per step a_out + g x vs a_out + x transfer time.
    a_out = 2 * INTRA_LAT + 2 * NIC_LAT
    x = N / (g * h) / NIC_BW
    assert (t_shared - intra) / (t_rail - intra) == pytest.approx((a_out + g * x) / (a_out + x),
                                                                  rel=1e-9)
    # The shared-NIC time is also what the closed form of cost.py (g flows per NIC) gives.
    want = network.cost.hierarchical_allreduce(g, h, N, 2 * INTRA_LAT, 1 / INTRA_BW, a_out,
                                               1 / NIC_BW)
    assert t_shared == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("h,g", [(2, 4), (4, 8)])
def test_shared_nic_inter_phase_exactly_g_times_without_latency(h, g):
    t_shared = network.collective_time(shared_nic(h, g, 0.0, 0.0), "hierarchical-allreduce", N)
    t_rail = network.collective_time(nic_per_gpu(h, g, 0.0, 0.0), "hierarchical-allreduce", N)
    intra, inter = phases(h, g, nic_share=g, intra_lat=0.0, nic_lat=0.0)
    assert t_shared == pytest.approx(intra + inter, rel=1e-9)
    assert (t_shared - intra) / (t_rail - intra) == pytest.approx(g, rel=1e-9)
    assert t_shared > t_rail


def test_shared_nic_links_carry_all_rings():
    """With one NIC, each NIC uplink carries the g rings' 2(h-1) steps of n/(g h) bytes."""
    h, g = 3, 4
    res = network.simulate_collective(shared_nic(h, g), "hierarchical-allreduce", N)
    for a in range(h):
        assert res.link_bytes[(f"h{a}_nic0", "sw0")] == pytest.approx(2 * (h - 1) * N / h,
                                                                       rel=1e-12)
    rail = network.simulate_collective(nic_per_gpu(h, g), "hierarchical-allreduce", N)
    for j in range(g):
        assert rail.link_bytes[(f"h0_nic{j}", "sw0")] == pytest.approx(
            2 * (h - 1) * N / (g * h), rel=1e-12)

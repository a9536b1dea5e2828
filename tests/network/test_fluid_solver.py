"""The SimPy-free fluid solver (schedule.py fast path + fluid.py) against the SimPy
reference (FluidNetwork + Executor), with contention, per-worker sizes and start times."""

import numpy as np
import pytest
import simpy

from simnet import network
from simnet.network.api import finish_times, start_collective
from simnet.network.flows import FluidNetwork

TOPOS = [
    {"kind": "star", "workers": 6, "bandwidth": 1e9, "latency": 2e-6, "servers": 2},
    {"kind": "fat_tree", "workers": 16, "bandwidth": 1e9, "latency": 1e-6,
     "oversubscription": 4, "servers": 1},
    {"kind": "leaf_spine", "workers": 12, "workers_per_leaf": 4, "spines": 2,
     "bandwidth": 1e9, "latency": 1e-6, "oversubscription": 2, "servers": 1},
    {"kind": "torus2d", "workers": 9, "bandwidth": 1e9, "latency": 1e-6},
]


def reference(g, coll, n, start):
    env = simpy.Environment()
    net = FluidNetwork(env, g)
    ex = start_collective(net, coll, n, start, server_compute_s=1e-4)
    env.run(until=ex.done)
    return finish_times(ex), net.link_bytes


@pytest.mark.parametrize("spec", TOPOS, ids=lambda s: s["kind"])
@pytest.mark.parametrize("coll", network.COLLECTIVES)
@pytest.mark.parametrize("staggered", [False, True])
def test_matches_simpy_reference(spec, coll, staggered):
    try:
        g = network.build_topology(spec)
    except ValueError:
        pytest.skip("topology kind not configurable this way")
    p = len(network.workers(g))
    if coll == "ps" and not network.servers(g):
        pytest.skip("no server")
    rng = np.random.default_rng(p)
    n = rng.integers(1, 10**6, p).tolist()
    start = rng.uniform(0, 2e-3, p).tolist() if staggered else [0.0] * p
    want, lb = reference(g, coll, n, start)
    res = network.simulate_collective(g, coll, n, start, server_compute_s=1e-4)
    assert res.finish_s == pytest.approx(want, rel=1e-9)
    r = network.routing.router(g)
    assert res.link_bytes == pytest.approx(
        {r.edges[i]: float(lb[i]) for i in np.flatnonzero(lb)}, rel=1e-12)


def test_fast_path_and_solver_agree_on_a_ring():
    # A ring is contention-free by structure; the event solver must give the same times.
    from simnet.network.fluid import solve
    from simnet.network.schedule import contention_free, structure
    from simnet.network import api

    g = network.build_topology({"kind": "fat_tree", "workers": 16, "bandwidth": 1e9,
                                "latency": 1e-6})
    r = network.routing.router(g)
    n, start, reply = api._inputs(g, 10**6, np.linspace(0, 1e-3, 16), None)
    plan = api._plan(g, r, "ring-allreduce", n, start, reply, 0.0)
    st = structure(g, r, "ring-allreduce", plan)
    assert st.chained
    np.testing.assert_allclose(contention_free(st, plan), solve(st, plan, r.cap), rtol=1e-12)

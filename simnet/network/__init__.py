"""Network model: topologies, fluid max-min flows, collectives, closed forms, stragglers.

Never imports torch (directly or not): only simpy, networkx, numpy, stdlib, simnet.units.

    g = build_topology({"kind": "star", "workers": 8, "bandwidth": "1 Gbit/s", "latency": "20 us"})
    res = simulate_collective(g, "allgather", nbytes=[...], start_s=[...])
    t = collective_time(topology=g, collective="ring-allreduce", nbytes=100_000_000)
"""

from . import cost  # noqa: F401
from .api import (COLLECTIVES, CollectiveResult, collective_time, finish_times,  # noqa: F401
                  simulate_collective, start_collective)
from .flows import FluidNetwork  # noqa: F401
from .stragglers import straggler_factors  # noqa: F401
from .topology import build_topology, servers, workers  # noqa: F401

__all__ = ["build_topology", "workers", "servers", "simulate_collective", "collective_time",
           "straggler_factors", "CollectiveResult", "FluidNetwork", "start_collective",
           "finish_times", "COLLECTIVES", "cost"]

"""Phase 2 of a run: replay a training trace on one cluster variant with the network model.

Per iteration and worker k (all in seconds):
    compute_k = base compute x straggler factor[t, k]
    ready_k   = compute_k + encode        (payload ready to send)
    finish_k  = when the collective delivers worker k's result (SimPy fluid model)
    end_k     = finish_k + decode cost    (all-gather decodes K payloads, else one)
and the iteration takes max_k end_k (a synchronous barrier). The split reported per
iteration adds up exactly: compute (mean worker) + encode/decode + wait (slowest ready minus
mean ready: stragglers) + communication (the rest).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import network
from .scenario import Scenario
from .training import SEED_STRAGGLERS, Trace
from .units import parse_bandwidth, parse_time

__all__ = ["IterationTiming", "replay", "topology_spec", "base_compute_s"]


@dataclass
class IterationTiming:
    iteration_time_s: float
    compute_s: float
    encode_s: float
    communication_s: float
    wait_s: float


def topology_spec(scenario: Scenario) -> dict:
    """The network package's topology dict for this scenario, in SI units."""
    topo = scenario.cluster.topology
    spec = {
        "kind": topo.kind,
        "workers": scenario.cluster.workers,
        "bandwidth": parse_bandwidth(topo.bandwidth, "cluster.topology.bandwidth"),
        "latency": parse_time(topo.latency, "cluster.topology.latency"),
        "servers": topo.servers,
    }
    if topo.server_bandwidth is not None:
        spec["server_bandwidth"] = parse_bandwidth(topo.server_bandwidth, "cluster.topology.server_bandwidth")
    return spec


def base_compute_s(scenario: Scenario) -> float:
    """Seconds of one worker's forward + backward before straggler slowdowns."""
    c = scenario.cluster.compute
    if c.kind == "fixed":
        return float(c.seconds)
    if c.kind == "throughput":
        return scenario.workload.batch_size / c.samples_per_s
    raise ValueError("cluster.compute: 'measured' must be pinned before replay (engine bug)")


def _straggler_spec(scenario: Scenario) -> dict | None:
    s = scenario.cluster.stragglers
    if s.kind == "none":
        return None
    return s.model_dump(exclude_none=True)


def replay(scenario: Scenario, trace: Trace, collective: str, encode_s: float,
           decode_s: float) -> tuple[list[IterationTiming], list[dict]]:
    """Simulate every iteration of `trace`; returns timings and the first iteration's
    per-worker timeline (for the Chrome trace)."""
    K = scenario.cluster.workers
    T = len(trace.payload_bytes)
    graph = network.build_topology(topology_spec(scenario))
    straggler_seed = int(np.random.SeedSequence(scenario.seed).spawn(4)[SEED_STRAGGLERS].generate_state(1)[0])
    factors = network.straggler_factors(_straggler_spec(scenario), K, T, straggler_seed)
    base = base_compute_s(scenario)
    decode_cost = K * decode_s if collective in ("allgather", "ring-allgather") else decode_s
    server_s = (K * decode_s + encode_s) if collective == "ps" else 0.0

    timings: list[IterationTiming] = []
    timeline: list[dict] = []
    memo: dict[tuple, list[float]] = {}  # identical inputs -> identical finish times
    for t in range(T):
        compute = [base * float(factors[t, k]) for k in range(K)]
        ready = [c + encode_s for c in compute]
        key = (tuple(ready), tuple(trace.payload_bytes[t]), trace.reply_bytes[t])
        if key not in memo:
            result = network.simulate_collective(
                graph, collective, nbytes=list(trace.payload_bytes[t]), start_s=ready,
                reply_nbytes=trace.reply_bytes[t] or None, server_compute_s=server_s)
            memo[key] = list(result.finish_s)
        finish = memo[key]
        end = [f + decode_cost for f in finish]
        total = max(end)
        mean_compute = sum(compute) / K
        wait = max(ready) - sum(ready) / K
        codec = encode_s + decode_cost
        timings.append(IterationTiming(total, mean_compute, codec, total - mean_compute - codec - wait, wait))
        if t == 0:
            timeline = [
                {"worker": k, "compute": (0.0, compute[k]), "encode": (compute[k], ready[k]),
                 "communicate": (ready[k], finish[k]), "decode": (finish[k], end[k]),
                 "wait": (end[k], total)}
                for k in range(K)
            ]
    return timings, timeline

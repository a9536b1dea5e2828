"""Phase 2 of a run: replay a training trace on one cluster variant with the network model.

Per iteration and worker k (all in seconds):
    compute_k = base compute x straggler factor[t, k]
    ready_k   = compute_k + encode        (payload ready to send)
    finish_k  = when the collective delivers worker k's result (SimPy fluid model)
    end_k     = finish_k + decode cost    (all-gather decodes K payloads, else one)
and the iteration takes max_k end_k (a synchronous barrier). The split reported per
iteration adds up exactly: compute (mean worker) + encode/decode + wait (slowest ready minus
mean ready: stragglers) + communication (the rest).

With `communication.overlap`, gradient buckets become ready during backward (forward takes
1/3 of compute, backward 2/3, spread over buckets in proportion to their coordinates) and
each bucket's collective starts once it is encoded and the worker's previous bucket is sent.
With backup workers, the iteration ends when the aggregated workers have their result;
dropped workers send nothing that iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from . import network, seeds
from .scenario import CompressorSpec, Scenario

__all__ = ["IterationTiming", "replay", "build_graph", "topology_spec", "base_compute_s", "ArrivalModel"]

FORWARD_FRACTION = 1.0 / 3.0  # forward ~ 1/3 of forward+backward (backward ~ 2x forward)


@dataclass
class IterationTiming:
    iteration_time_s: float
    compute_s: float
    encode_s: float
    communication_s: float
    wait_s: float


def topology_spec(scenario: Scenario) -> dict:
    """The dict simnet.network.build_topology takes for this scenario's cluster."""
    return scenario.cluster.topology.network_spec(scenario.cluster.workers)


def build_graph(scenario: Scenario) -> nx.DiGraph:
    """The cluster's topology, with a calibration block's link corrections applied."""
    graph = network.build_topology(topology_spec(scenario))
    cal = scenario.calibration
    if cal is None or (cal.bandwidth_factor == 1.0 and cal.alpha_s == 0.0):
        return graph
    graph = graph.copy()
    for _, _, attrs in graph.edges(data=True):
        attrs["bandwidth"] *= cal.bandwidth_factor
        attrs["latency"] += cal.alpha_s / 2.0  # a message crosses two links of a star
    return graph


def _collective_graph(scenario: Scenario, graph: nx.DiGraph, collective: str) -> nx.DiGraph:
    cal = scenario.calibration
    eff = cal.efficiency.get(collective, 1.0) if cal else 1.0
    if eff == 1.0:
        return graph
    graph = graph.copy()
    for _, _, attrs in graph.edges(data=True):
        attrs["bandwidth"] *= eff
    return graph


def base_compute_s(scenario: Scenario) -> float:
    """Seconds of one worker's forward + backward before straggler slowdowns."""
    c = scenario.cluster.compute
    if c.kind in ("fixed", "flops") and c.seconds is not None:
        return float(c.seconds)
    if c.kind == "throughput":
        return scenario.workload.batch_size / c.samples_per_s
    raise ValueError(f"cluster.compute: {c.kind!r} must be pinned before replay (engine bug)")


def _factors(scenario: Scenario, iterations: int) -> np.ndarray:
    s = scenario.cluster.stragglers
    spec = None if s.kind == "none" else s.model_dump(exclude_none=True)
    seed = seeds.component_int(scenario.seed, seeds.STRAGGLERS)
    return network.straggler_factors(spec, scenario.cluster.workers, iterations, seed)


class ArrivalModel:
    """Which gradients reach the aggregation in time (backup workers, coupled training).

    Worker k's gradient arrives at ready_k + first-hop latency + bytes_k / first-hop
    bandwidth; every gradient arriving no later than the (K-b)-th is aggregated, so ties
    (no stragglers, equal payloads) keep all K and reproduce plain synchronous SGD.
    """

    def __init__(self, scenario: Scenario, spec: CompressorSpec):
        graph = build_graph(scenario)
        self.hops = []
        for w in network.workers(graph):
            _, nxt, attrs = next(iter(graph.out_edges(w, data=True)))
            self.hops.append((attrs["latency"], attrs["bandwidth"]))
        self.factors = _factors(scenario, scenario.run.iterations)
        self.base = base_compute_s(scenario)
        self.encode = spec.encode_s or 0.0
        self.keep = scenario.cluster.workers - scenario.communication.backup_workers

    def included(self, t: int, nbytes: list[int]) -> list[bool]:
        arrive = [self.base * float(self.factors[t, k]) + self.encode + lat + n / bw
                  for k, ((lat, bw), n) in enumerate(zip(self.hops, nbytes))]
        cutoff = sorted(arrive)[self.keep - 1]
        return [a <= cutoff for a in arrive]


def replay(scenario: Scenario, trace, collective: str, encode_s: float,
           decode_s: float) -> tuple[list[IterationTiming], list[dict], dict[str, float]]:
    """Simulate every iteration of `trace`; returns timings, the first iteration's
    per-worker timeline (for the Chrome trace) and the mean bytes per iteration carried by
    each directed link ("u->v"; empty under the analytic fidelity)."""
    K = scenario.cluster.workers
    T = len(trace.payload_bytes)
    comm = scenario.communication
    graph = _collective_graph(scenario, build_graph(scenario), collective)
    factors = _factors(scenario, T)
    base = base_compute_s(scenario)
    overhead = scenario.calibration.overhead_s.get(collective, 0.0) if scenario.calibration else 0.0
    decode_cost = K * decode_s if collective in ("allgather", "ring-allgather") else decode_s
    server_s = (K * decode_s + encode_s) if collective == "ps" else 0.0
    fractions = np.cumsum(trace.bucket_numel) / trace.numel if trace.bucket_bytes else np.ones(1)

    def run_collective(nbytes, start, reply):
        key = (tuple(nbytes), tuple(start), reply)
        if key not in memo:  # identical inputs give identical finish times
            res = network.simulate_collective(
                graph, collective, nbytes=list(nbytes), start_s=list(start),
                reply_nbytes=reply or None, server_compute_s=server_s, fidelity=comm.fidelity)
            memo[key] = ([f + overhead for f in res.finish_s], res.link_bytes)
        finish, carried = memo[key]
        for (u, v), n in carried.items():
            link_bytes[f"{u}->{v}"] = link_bytes.get(f"{u}->{v}", 0.0) + n / T
        return finish

    timings: list[IterationTiming] = []
    timeline: list[dict] = []
    memo: dict[tuple, tuple] = {}
    link_bytes: dict[str, float] = {}  # "u->v" -> mean bytes per iteration
    for t in range(T):
        compute = [base * float(factors[t, k]) for k in range(K)]
        keep = trace.included[t] if trace.included else [True] * K
        buckets = trace.bucket_bytes[t] if trace.bucket_bytes else [[n] for n in trace.payload_bytes[t]]
        reply_share = [trace.reply_bytes[t] * f for f in np.diff(fractions, prepend=0.0)]
        sent = [0.0] * K  # when each worker's previous bucket was delivered
        for b in range(len(fractions)):
            ready = [compute[k] * (FORWARD_FRACTION + (1 - FORWARD_FRACTION) * fractions[b])
                     + encode_s * fractions[b] for k in range(K)]
            first = min(r for r, kept in zip(ready, keep) if kept)
            start = [max(ready[k], sent[k]) if keep[k] else first for k in range(K)]
            nbytes = [buckets[k][b] if keep[k] else 0 for k in range(K)]
            sent = run_collective(nbytes, start, int(round(reply_share[b])))
        ready_all = [compute[k] + encode_s for k in range(K)]
        end = [f + decode_cost for f in sent]
        total = max(e for e, kept in zip(end, keep) if kept)
        kept_ready = [r for r, kept in zip(ready_all, keep) if kept]
        mean_compute = sum(c for c, kept in zip(compute, keep) if kept) / len(kept_ready)
        wait = max(kept_ready) - sum(kept_ready) / len(kept_ready)
        codec = encode_s + decode_cost
        comm_s = total - mean_compute - codec - wait
        if comm_s < 0:  # overlap hid communication (and part of the wait) behind backward
            wait = max(0.0, wait + comm_s)
            comm_s = total - mean_compute - codec - wait
        timings.append(IterationTiming(total, mean_compute, codec, comm_s, wait))
        if t == 0:
            timeline = [
                {"worker": k, "compute": (0.0, compute[k]), "encode": (compute[k], ready_all[k]),
                 "communicate": (ready_all[k], max(sent[k], ready_all[k])),
                 "decode": (max(sent[k], ready_all[k]), max(end[k], ready_all[k] + decode_cost)),
                 "wait": (max(end[k], ready_all[k] + decode_cost), total)}
                for k in range(K)]
    return timings, timeline, link_bytes

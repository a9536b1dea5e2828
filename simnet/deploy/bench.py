"""Rank-side microbenchmarks (run inside `worker.py`); every time is in seconds, per rank.

Tasks (dicts from the job file):
  bench:    {collective: allgather | ring-allreduce, sizes: [bytes per rank],
             repeats: one count for every size, or a list of counts, one per size}
            synthetic payloads through the hook's own exchange code path.
  payload:  {scenario: dict, compressor: {name, ...}, repeats}
            each rank's REAL first-iteration gradient (the simulator's draws), encoded by the
            real encoder, then exchanged as the hook does; only the exchange is timed.
  pingpong: {repeats}  ranks 0 and 1 bounce one byte: per-message latency alpha = rtt / 2.
Each repetition starts after a barrier; the launcher takes, per repetition, the slowest rank
(a collective ends when its last rank has its result) and then the median.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.distributed as dist

from .. import compression
from .hooks import allgather_bytes, exchange, wire_dtype


def _timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        dist.barrier()
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _op(collective: str, nbytes: int):
    """A zero-argument function that runs one collective of `nbytes` per rank."""
    if collective == "allgather":
        payload = np.random.default_rng(0).integers(0, 256, nbytes, dtype=np.uint8).tobytes()
        return lambda: allgather_bytes(payload)
    if collective == "ring-allreduce":
        vec = torch.ones(max(1, nbytes // 4), dtype=torch.float32)
        return lambda: dist.all_reduce(vec)
    raise ValueError(f"bench: unknown collective {collective!r}")


def run_bench(task: dict, rank: int) -> dict:
    durations = []
    repeats = task["repeats"]
    if isinstance(repeats, int):
        repeats = [repeats] * len(task["sizes"])
    for n, r in zip(task["sizes"], repeats, strict=True):
        op = _op(task["collective"], int(n))
        op()  # warm-up: connections, allocations
        durations.append(_timed(op, r))
    return {"kind": "bench", "collective": task["collective"], "sizes": task["sizes"],
            "durations": durations}


def run_pingpong(task: dict, rank: int) -> dict:
    byte = torch.zeros(1, dtype=torch.uint8)
    rtts = []
    for _ in range(task["repeats"] + 1):  # first round trip is warm-up
        dist.barrier()
        t0 = time.perf_counter()
        if rank == 0:
            dist.send(byte, 1)
            dist.recv(byte, 1)
        elif rank == 1:
            dist.recv(byte, 0)
            dist.send(byte, 0)
        rtts.append(time.perf_counter() - t0)
    return {"kind": "pingpong", "one_way": [t / 2 for t in rtts[1:]] if rank == 0 else []}


def rank_gradient(scenario_data: dict, rank: int):
    """This rank's gradient at iteration 1, exactly as `simnet.training.train` draws it,
    plus this rank's rounding generator and a generator seeded alike on all ranks."""
    from ..scenario import loads
    from .. import seeds as seeding
    from ..training import setup_workload
    from ..workload.workers import Workers

    sc = loads(scenario_data)
    torch.manual_seed(sc.seed)
    data, model, _ = setup_workload(sc)
    K = sc.cluster.workers
    workers = Workers(model, data, K, sc.workload.batch_size, seeding.component(sc.seed, seeding.DATA), torch.device("cpu"))
    grads, _ = workers.gradients()
    gens = seeding.torch_generators(sc.seed, K + 1, torch.device("cpu"))
    shared = torch.Generator().manual_seed(sc.seed)
    return grads[rank].clone(), gens[rank], shared


def run_payload(task: dict, rank: int) -> dict:
    grad, gen, _ = rank_gradient(task["scenario"], rank)
    spec = dict(task["compressor"])
    name = spec.pop("name")
    for key in ("label", "encode_s", "decode_s"):
        spec.pop(key, None)
    comp = compression.get(name, **spec)
    state = gen.get_state()
    payload = comp.encode(grad, generator=gen)
    gen.set_state(state)  # every repetition sends the same bytes
    dtype = wire_dtype(len(payload), grad.numel()) if comp.allreduce_compatible else None
    if name == "powersgd":
        collective, comm = "ring-allreduce", []
        for _ in range(task["repeats"] + 1):
            dist.barrier()
            fresh = compression.get(name, **spec)
            comm.append(exchange(fresh, grad, torch.Generator().manual_seed(0))[1].communication_s)
        comm = comm[1:]
        wire = exchange(compression.get(name, **spec), grad, torch.Generator().manual_seed(0))[1].wire_bytes
    elif dtype is not None and name in ("none", "fp16"):
        collective, wire = "ring-allreduce", len(payload)
        vec = comp.decode(payload, grad.numel()).to(dtype)
        op = lambda: dist.all_reduce(vec)  # noqa: E731  (sums grow K-fold; only time matters)
        op()
        comm = _timed(op, task["repeats"])
    else:
        collective = "allgather"
        wire = max(len(p) for p in allgather_bytes(payload))  # also the warm-up
        comm = _timed(lambda: allgather_bytes(payload), task["repeats"])
    return {"kind": "payload", "compressor": task["compressor"], "collective": collective,
            "payload_bytes": len(payload), "wire_bytes": wire, "numel": grad.numel(),
            "durations": comm}


def run_aggregate(task: dict, rank: int) -> dict:
    """{scenario, compressor, rounds}: average this rank's iteration-1 gradient `rounds`
    times through the hook's exchange (state carried over); returns each round's mean."""
    grad, gen, shared = rank_gradient(task["scenario"], rank)
    spec = dict(task["compressor"])
    comp = compression.get(spec.pop("name"), **spec)
    means = []
    for _ in range(task["rounds"]):
        g = shared if comp.name == "powersgd" else gen
        means.append(exchange(comp, grad, g)[0].tolist())
    return {"kind": "aggregate", "means": means}

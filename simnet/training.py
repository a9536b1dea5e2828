"""Phase 1 of a run: train once per compressor and record the trace the simulator replays.

Synchronous SGD's trajectory does not depend on timing, so one training run per
(workload, compressor, workers, seed, collective family) yields every worker's real payload
size per iteration plus losses and accuracies; the network model then replays it on every
cluster variant of a sweep ("train once, simulate many").
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from . import compression
from .scenario import CompressorSpec, Scenario
from .workload import build_model, load_dataset
from .workload.workers import Workers

__all__ = ["Trace", "train", "trace_key", "choose_collective", "measure_compute", "pick_device"]

# Components seeded from one SeedSequence (DESIGN §8): index -> purpose.
SEED_DATA, SEED_ROUNDING, SEED_STRAGGLERS, SEED_TOPOLOGY = range(4)


@dataclass
class Trace:
    """What one training run determines, independent of the cluster.

    payload_bytes: [T][K] bytes each worker sends per iteration.
    reply_bytes: [T] bytes of the server's re-encoded aggregate (collective 'ps'), else 0.
    loss: [T] mean training loss over the K workers' batches.
    evals: iteration (1-based) -> (test loss, test accuracy), evaluated after that update.
    numel: gradient length (coordinates).
    """

    payload_bytes: list[list[int]]
    reply_bytes: list[int]
    loss: list[float]
    evals: dict[int, tuple[float, float]]
    numel: int
    encode_s: float = 0.0
    decode_s: float = 0.0
    timeline: dict = field(default_factory=dict)


def pick_device(requested: str | None) -> torch.device:
    """CUDA when present, else CPU; an explicit `workload.device` wins."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def choose_collective(scenario: Scenario, spec: CompressorSpec) -> str:
    """'auto' picks ring all-reduce for summable payloads and all-gather otherwise."""
    wanted = scenario.communication.collective
    summable = compression.get(spec.name, **spec.params()).allreduce_compatible
    if wanted == "auto":
        return "ring-allreduce" if summable else "allgather"
    if wanted == "ring-allreduce" and not summable:
        raise ValueError(
            f"communication.collective: ring-allreduce cannot sum {spec.name!r} payloads "
            f"(use allgather, ps or auto)"
        )
    return wanted


def trace_key(scenario: Scenario, spec: CompressorSpec) -> str:
    """Hash of exactly what determines a trace (not the network, compute or stragglers)."""
    family = "ps" if choose_collective(scenario, spec) == "ps" else "mean-of-decoded"
    content = {
        "workload": scenario.workload.model_dump(mode="json"),
        "compressor": {"name": spec.name, **spec.params()},
        "workers": scenario.cluster.workers,
        "seed": scenario.seed,
        "iterations": scenario.run.iterations,
        "eval_every": scenario.run.eval_every,
        "aggregation": family,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def _setup(scenario: Scenario):
    wl = scenario.workload
    data = load_dataset(wl.dataset)
    model = build_model(wl.model, data.num_features, data.num_classes, wl.hidden, scenario.seed)
    return data, model, pick_device(wl.device)


def _optimizer(scenario: Scenario, params) -> torch.optim.Optimizer:
    o = scenario.workload.optimizer
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
    return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)


def _median_time(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    fn()  # warm-up (allocations, kernel selection)
    samples = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def measure_compute(scenario: Scenario, repeats: int = 20) -> float:
    """Seconds of one worker's forward + backward on its batch, measured on this device."""
    data, model, device = _setup(scenario)
    workers = Workers(model, data, 1, scenario.workload.batch_size,
                      np.random.SeedSequence(12345), device)
    return _median_time(workers.gradients, repeats, device)


def _seeded_generators(scenario: Scenario, count: int, device: torch.device) -> list[torch.Generator]:
    children = np.random.SeedSequence(scenario.seed).spawn(4)[SEED_ROUNDING].spawn(count)
    gens = []
    for child in children:
        g = torch.Generator(device=device)
        g.manual_seed(int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)))
        gens.append(g)
    return gens


def train(scenario: Scenario, spec: CompressorSpec,
          progress: Callable[[int], None] | None = None) -> Trace:
    """Run synchronous data-parallel SGD with real encoded gradients; return its trace."""
    torch.manual_seed(scenario.seed)
    data, model, device = _setup(scenario)
    K = scenario.cluster.workers
    seeds = np.random.SeedSequence(scenario.seed).spawn(4)
    workers = Workers(model, data, K, scenario.workload.batch_size, seeds[SEED_DATA], device)
    optimizer = _optimizer(scenario, workers.params)
    collective = choose_collective(scenario, spec)
    # One compressor per worker (stateful methods keep per-worker memory), one for the server.
    comps = [compression.get(spec.name, **spec.params()) for _ in range(K + 1)]
    gens = _seeded_generators(scenario, K + 1, device)

    trace = Trace([], [], [], {}, workers.numel)
    for it in range(1, scenario.run.iterations + 1):
        grads, losses = workers.gradients()
        payloads = [comps[k].encode(grads[k], generator=gens[k]) for k in range(K)]
        decoded = torch.stack([comps[k].decode(p, workers.numel) for k, p in enumerate(payloads)])
        mean = decoded.mean(dim=0)
        reply = 0
        if collective == "ps":  # the server re-encodes the aggregate it sends back
            reply_payload = comps[K].encode(mean.to(device), generator=gens[K])
            reply = len(reply_payload)
            mean = comps[K].decode(reply_payload, workers.numel)
        optimizer.zero_grad(set_to_none=True)
        workers.set_gradient(mean.to(device))
        optimizer.step()
        trace.payload_bytes.append([len(p) for p in payloads])
        trace.reply_bytes.append(reply)
        trace.loss.append(float(losses.mean().item()))
        if it % scenario.run.eval_every == 0 or it == scenario.run.iterations:
            trace.evals[it] = workers.evaluate()
        if it == 1:
            trace.encode_s, trace.decode_s = _measure_codec(spec, grads[0], device)
        if progress:
            progress(it)
    return trace


def _measure_codec(spec: CompressorSpec, grad: torch.Tensor, device: torch.device) -> tuple[float, float]:
    """Median encode and decode seconds of one real gradient on this device."""
    comp = compression.get(spec.name, **spec.params())
    gen = torch.Generator(device=device)
    gen.manual_seed(0)
    payload = comp.encode(grad, generator=gen)
    enc = _median_time(lambda: comp.encode(grad, generator=gen), 5, device)
    dec = _median_time(lambda: comp.decode(payload, grad.numel()), 5, device)
    return enc, dec

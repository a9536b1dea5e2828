"""Phase 1 of a run: train once per compressor and record the trace the simulator replays.

Synchronous SGD's trajectory does not depend on timing, so one training run per
(workload, compressor, workers, seed, aggregation) yields every worker's real payload
sizes per iteration plus losses and accuracies; the network model then replays it on every
cluster variant of a sweep ("train once, simulate many").

With backup workers (`communication.backup_workers: b`) the trajectory depends on which
gradients arrive in time, so training is coupled to the cluster: each iteration asks the
timing model which workers made it (see `replay.arrivals`).
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

from . import __version__, compression, seeds
from .scenario import SUMMING_COLLECTIVES, CompressorSpec, Scenario
from .workload import build_model, load_dataset
from .workload.workers import Workers

__all__ = ["Trace", "train", "trace_key", "choose_collective", "measure_compute", "pick_device",
           "setup_workload", "build_optimizer", "measure_codec", "bucket_layout", "flops_compute_s"]

SMALL_MODEL_PARAMS = 5_000_000  # below this, one CPU thread beats several (no intra-op gain)


@dataclass
class Trace:
    """What one training run determines, independent of the cluster (unless coupled).

    payload_bytes: [T][K] bytes each worker sends per iteration (sum over its buckets).
    bucket_bytes: [T][K][B] per-bucket bytes when communication overlaps backward, else [].
    reply_bytes: [T] bytes of the server's re-encoded aggregate (collective 'ps'), else 0.
    included: [T][K] whether worker k's gradient was aggregated (backup workers), else [].
    loss: [T] mean training loss over the aggregated workers' batches.
    evals: iteration (1-based) -> (test loss, test accuracy), evaluated after that update.
    numel: gradient length (coordinates). bucket_numel: coordinates per bucket.
    """

    payload_bytes: list[list[int]]
    reply_bytes: list[int]
    loss: list[float]
    evals: dict[int, tuple[float, float]]
    numel: int
    bucket_numel: list[int] = field(default_factory=list)
    bucket_bytes: list[list[list[int]]] = field(default_factory=list)
    included: list[list[bool]] = field(default_factory=list)


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
    if wanted in SUMMING_COLLECTIVES and not summable:
        raise ValueError(f"communication.collective: {wanted} cannot sum {spec.name!r} payloads "
                         f"(use allgather, ps or auto)")
    return wanted


def trace_key(scenario: Scenario, spec: CompressorSpec) -> str:
    """Hash of exactly what determines a trace. The network, compute and stragglers enter
    only when training is coupled to timing (backup workers)."""
    comm = scenario.communication
    content = {
        "simnet": __version__,  # a release may change encoders' draws or the training loop
        "workload": scenario.workload.model_dump(mode="json"),
        "compressor": {"name": spec.name, **spec.params()},
        "workers": scenario.cluster.workers,
        "seed": scenario.seed,
        "iterations": scenario.run.iterations,
        "eval_every": scenario.run.eval_every,
        "aggregation": "ps" if choose_collective(scenario, spec) == "ps" else "mean-of-decoded",
        "buckets": comm.bucket_size_mb if comm.overlap else None,
    }
    if comm.backup_workers:
        content["coupled"] = {"cluster": scenario.cluster.model_dump(mode="json"),
                              "communication": comm.model_dump(mode="json"),
                              "codec": [spec.encode_s, spec.decode_s]}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def setup_workload(scenario: Scenario):
    """(dataset, model, device) of a scenario; the model initialised from its seed."""
    wl = scenario.workload
    data = load_dataset(wl.dataset, path=wl.dataset_path, **wl.dataset_options)
    model = build_model(wl.model, data, seed=scenario.seed, **wl.arch_params())
    device = pick_device(wl.device)
    if device.type == "cpu" and sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMS:
        torch.set_num_threads(1)
    return data, model, device


def build_optimizer(scenario: Scenario, params) -> torch.optim.Optimizer:
    o = scenario.workload.optimizer
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
    return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)


def _median_time(fn: Callable[[], object], repeats: int, device: torch.device,
                 budget_s: float = 2.0) -> float:
    """Median seconds of fn() after a warm-up; fewer repeats when one call is slow (a
    paper-scale gradient), so a measurement costs about `budget_s` at most."""
    start = time.perf_counter()
    fn()  # warm-up (allocations, kernel selection)
    first = time.perf_counter() - start
    repeats = max(1, min(repeats, int(budget_s / max(first, 1e-9))))
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


def compute_probe(scenario: Scenario) -> Callable[[], object]:
    """One worker's forward + backward on its batch, as a zero-argument function."""
    data, model, device = setup_workload(scenario)
    workers = Workers(model, data, 1, scenario.workload.batch_size,
                      np.random.SeedSequence(12345), device)
    return workers.gradients


def measure_compute(scenario: Scenario, repeats: int = 10) -> float:
    """Seconds of one worker's forward + backward on its batch, measured on this device."""
    return _median_time(compute_probe(scenario), repeats, pick_device(scenario.workload.device))


def flops_compute_s(scenario: Scenario) -> tuple[float, float]:
    """(seconds, FLOPs per sample) of one worker's forward + backward on the scenario's GPU:
    FLOPs counted by torch x batch size / (peak FLOP/s x efficiency)."""
    from .workload import gpus

    c = scenario.cluster.compute
    data, model, device = setup_workload(scenario)
    probe = Workers(model, data, 1, scenario.workload.batch_size, np.random.SeedSequence(0), device)
    per_sample = probe.flops_per_sample()
    seconds = per_sample * scenario.workload.batch_size / (gpus.peak_flops(c.gpu, c.precision) * c.efficiency)
    return seconds, per_sample


def codec_probes(spec: CompressorSpec, grad: torch.Tensor, device: torch.device):
    """(encode, decode) of one real gradient as zero-argument functions; decode includes
    adding the decoded payload into a running sum, as a worker does (charged with it)."""
    comp = compression.get(spec.name, **spec.params())
    gen = torch.Generator(device=device)
    gen.manual_seed(0)
    payload = comp.encode(grad, generator=gen)
    total = torch.zeros(grad.numel(), device=device)
    return (lambda: comp.encode(grad, generator=gen),
            lambda: total.add_(comp.decode(payload, grad.numel()).to(device)))


def measure_codec(spec: CompressorSpec, grad: torch.Tensor, device: torch.device) -> tuple[float, float]:
    """Median encode and decode (+ adding into the running sum) seconds of one real gradient
    on this device."""
    encode, decode = codec_probes(spec, grad, device)
    return _median_time(encode, 15, device), _median_time(decode, 15, device)


def bucket_layout(workers: Workers, scenario: Scenario) -> list[tuple[int, int]]:
    """(start, stop) coordinate ranges of the gradient buckets, in the order backward makes
    them ready (last layer first), DDP-style: parameters grouped up to bucket_size_mb of fp32.
    Without overlap, one bucket holding everything."""
    if not scenario.communication.overlap:
        return [(0, workers.numel)]
    limit = max(1, int(scenario.communication.bucket_size_mb * 1e6 / 4))
    offsets, start = [], 0
    for p in workers.params:
        offsets.append((start, start + p.numel()))
        start += p.numel()
    buckets: list[tuple[int, int]] = []
    for lo, hi in reversed(offsets):  # backward order
        if buckets and buckets[-1][0] == hi and buckets[-1][1] - buckets[-1][0] + (hi - lo) <= limit:
            buckets[-1] = (lo, buckets[-1][1])
        else:
            buckets.append((lo, hi))
    return buckets


def train(scenario: Scenario, spec: CompressorSpec,
          progress: Callable[[int], None] | None = None) -> Trace:
    """Run synchronous data-parallel SGD with real encoded gradients; return its trace."""
    from .replay import ArrivalModel  # the timing model, for backup workers only

    torch.manual_seed(scenario.seed)
    data, model, device = setup_workload(scenario)
    K = scenario.cluster.workers
    workers = Workers(model, data, K, scenario.workload.batch_size,
                      seeds.component(scenario.seed, seeds.DATA), device,
                      batched=scenario.workload.batched)
    optimizer = build_optimizer(scenario, workers.params)
    collective = choose_collective(scenario, spec)
    buckets = bucket_layout(workers, scenario)
    # One compressor per (worker, bucket): stateful methods keep per-worker memory. Row K
    # is the parameter server's.
    comps = [[compression.get(spec.name, **spec.params()) for _ in buckets] for _ in range(K + 1)]
    gens = seeds.torch_generators(scenario.seed, K + 1, device)
    arrivals = ArrivalModel(scenario, spec) if scenario.communication.backup_workers else None

    trace = Trace([], [], [], {}, workers.numel, bucket_numel=[hi - lo for lo, hi in buckets])
    for it in range(1, scenario.run.iterations + 1):
        grads, losses = workers.gradients()
        sizes = [[0] * len(buckets) for _ in range(K)]
        decoded = torch.empty(K, workers.numel)
        for k in range(K):
            for b, (lo, hi) in enumerate(buckets):
                payload = comps[k][b].encode(grads[k, lo:hi], generator=gens[k])
                sizes[k][b] = len(payload)
                decoded[k, lo:hi] = comps[k][b].decode(payload, hi - lo)
        totals = [sum(s) for s in sizes]
        keep = arrivals.included(it - 1, totals) if arrivals else [True] * K
        mean = compression.average(decoded[k] for k in range(K) if keep[k])
        reply = 0
        if collective == "ps":  # the server re-encodes the aggregate it sends back
            for b, (lo, hi) in enumerate(buckets):
                payload = comps[K][b].encode(mean[lo:hi].to(device), generator=gens[K])
                reply += len(payload)
                mean[lo:hi] = comps[K][b].decode(payload, hi - lo)
        optimizer.zero_grad(set_to_none=True)
        workers.set_gradient(mean.to(device))
        optimizer.step()
        trace.payload_bytes.append(totals)
        if len(buckets) > 1:
            trace.bucket_bytes.append(sizes)
        if arrivals:
            trace.included.append(keep)
        trace.reply_bytes.append(reply)
        trace.loss.append(float(losses[torch.tensor(keep, device=losses.device)].mean().item()))
        if it % scenario.run.eval_every == 0 or it == scenario.run.iterations:
            trace.evals[it] = workers.evaluate()
        if progress:
            progress(it)
    return trace

"""Rank-side real DDP training (the `train` task of worker.py).

Each rank trains the scenario's model with `DistributedDataParallel` and the compression
hook, on its block of exactly the batches `simnet.training.train` draws (same seeds, same
`Workers` sampling), and records per iteration (seconds, bytes):
  compute_s        forward + backward + optimizer step, minus the hook's own time
  encode_s         encode + decode inside the hook
  communication_s  the collective(s) inside the hook
  payload_bytes    this rank's payload; wire_bytes: what it sent per peer (padded)
  loss             this rank's training loss; start_s / end_s (perf_counter)
With `pin: true` the rank also measures what `simnet run` would pin (see `Pinner`), one sample
after every timed iteration, and every iteration starts at a barrier.
The model is one DDP bucket, so the hook encodes the same flat gradient as the simulator.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.distributed as dist
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from .hooks import HookState, compression_hook


def _spec(compressor: dict) -> tuple[str, dict]:
    params = dict(compressor)
    name = params.pop("name")
    for key in ("label", "encode_s", "decode_s"):
        params.pop(key, None)
    return name, params


def run_train(task: dict, rank: int) -> dict:
    from ..scenario import loads
    from .. import seeds as seeding
    from ..training import build_optimizer, setup_workload
    from ..workload.workers import Workers

    sc = loads(task["scenario"])
    pinner = Pinner(sc, task, rank) if task.get("pin") else None
    torch.manual_seed(sc.seed)
    data, model, _ = setup_workload(sc)
    cpu = torch.device("cpu")
    K, B = dist.get_world_size(), sc.workload.batch_size
    # Used only for its sampling order, so every rank draws the simulator's batches.
    sampler = Workers(model, data, K, B, seeding.component(sc.seed, seeding.DATA), cpu)
    numel = sampler.numel
    ddp = DDP(model, bucket_cap_mb=4 * numel / 2**20 + 1)
    name, params = _spec(task["compressor"])
    state = HookState(name, params, generator=seeding.torch_generators(sc.seed, K + 1, cpu)[rank],
                      shared_generator=torch.Generator().manual_seed(sc.seed),
                      param_order=list(model.parameters()))
    ddp.register_comm_hook(state, compression_hook)
    opt = build_optimizer(sc, ddp.parameters())
    x_all, y_all = data.x_train, data.y_train
    records = []
    dist.barrier()
    for it in range(1, task["iterations"] + 1):
        idx = torch.from_numpy(sampler.next_indices()[rank * B:(rank + 1) * B])
        if pinner:
            dist.barrier()  # the pin samples end at different times on different ranks
        t0 = time.perf_counter()
        loss = F.cross_entropy(ddp(x_all[idx]), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        t1 = time.perf_counter()
        stats, state.stats = state.stats, []
        enc = sum(s.encode_s + s.decode_s for s in stats)
        comm = sum(s.communication_s for s in stats)
        rec = {"iteration": it, "start_s": t0, "end_s": t1, "compute_s": (t1 - t0) - enc - comm,
               "encode_s": enc, "communication_s": comm, "loss": float(loss.item()),
               "encode_only_s": sum(s.encode_s for s in stats),
               "payload_bytes": sum(s.payload_bytes for s in stats),
               "wire_bytes": sum(s.wire_bytes for s in stats),
               "collective": stats[0].collective if stats else ""}
        if task.get("eval_every") and (it % task["eval_every"] == 0 or it == task["iterations"]):
            if rank == 0:
                rec["eval_loss"], rec["accuracy"] = _evaluate(model, data)
            dist.barrier()  # the others wait here, outside the timed region
        records.append(rec)
        if pinner:
            pinner.sample()
    return {"kind": "train", "compressor": task["compressor"], "numel": numel, "records": records,
            "pinned": pinner.result() if pinner else None}


class Pinner:
    """What `simnet run` would pin (compute, encode, decode seconds), measured on this rank
    while the other ranks do the same: the cluster's own CPU, contention included.

    One sample of each after every timed DDP iteration, and the medians at the end: this VM's
    CPU speed drifts by up to 1.5x over tens of seconds, and measuring the pins in one block
    before training made the predicted QSGD iteration 2-17% short of the measured one;
    interleaved, prediction and measurement see the same drift."""

    def __init__(self, sc, task: dict, rank: int):
        from ..training import codec_probes, compute_probe
        from .bench import rank_gradient

        spec = next(s for s in sc.compressors
                    if s.model_dump(mode="json", exclude_none=True) == task["compressor"])
        grad = rank_gradient(task["scenario"], rank)[0]
        self.probes = {"compute_s": compute_probe(sc)}
        self.probes["encode_s"], self.probes["decode_s"] = codec_probes(spec, grad,
                                                                        torch.device("cpu"))
        self.samples: dict[str, list[float]] = {k: [] for k in self.probes}
        self.sample()  # warm-up (allocations, compiled kernels): discarded
        self.samples = {k: [] for k in self.probes}

    def sample(self) -> None:
        for key, probe in self.probes.items():
            t0 = time.perf_counter()
            probe()
            self.samples[key].append(time.perf_counter() - t0)

    def result(self) -> dict:
        """Medians per part (seconds), and every sample under "samples" (one per iteration)."""
        out: dict = {k: float(np.median(v)) for k, v in self.samples.items()}
        out["samples"] = {k: list(v) for k, v in self.samples.items()}
        return out


@torch.no_grad()
def _evaluate(model, data) -> tuple[float, float]:
    """Test-set (loss, accuracy), as `Workers.evaluate`."""
    model.eval()
    logits = model(data.x_test)
    loss = F.cross_entropy(logits, data.y_test).item()
    acc = (logits.argmax(dim=1) == data.y_test).float().mean().item()
    model.train()
    return loss, acc

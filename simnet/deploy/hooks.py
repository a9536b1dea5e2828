"""simnet's compressors as `torch.distributed` DDP communication hooks.

The hook encodes with exactly the encoders the simulator charges (`simnet.compression`), so
the bytes on the wire are the bytes the simulator predicts with:

* non-summable payloads (qsgd, topk, signsgd, ...): all-gather of the encoded bytes. Gloo's
  all-gather needs equal sizes, so each rank first all-gathers its payload length (one int64),
  then all-gathers its payload as a uint8 tensor padded to the longest one (in 64 KiB
  chunks issued together); every rank decodes
  the K payloads and averages them (`compression.average`, as the simulator does);
* summable payloads (none: fp32, fp16): all-reduce (sum) in the wire dtype, then / K;
* powersgd: real two-round PowerSGD (all-reduce P, orthogonalise, all-reduce Q) with the
  compressor's own shapes, warm start and error-feedback memory.

Per-rank state (one compressor per DDP bucket, holding error-feedback memory and warm
starts; the rank's rounding generator; timing counters) lives in `HookState`.
"""

import time
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from .. import compression

__all__ = ["HookState", "compression_hook", "exchange", "allgather_mean", "allreduce_mean",
           "powersgd_mean", "allgather_bytes"]


@dataclass
class Stats:
    """What one exchange cost this rank: seconds and bytes (payload, and padded on the wire)."""

    encode_s: float = 0.0
    communication_s: float = 0.0
    decode_s: float = 0.0
    payload_bytes: int = 0
    wire_bytes: int = 0
    collective: str = ""


CHUNK_BYTES = 64 << 10  # all-gather payloads in 64 KiB pieces (same bytes, pipelined)


def _now() -> float:
    return time.perf_counter()


def allgather_bytes(payload: bytes, group=None) -> list[bytes]:
    """All-gather variable-length byte strings: lengths first, then padded uint8 tensors."""
    world = dist.get_world_size(group)
    length = torch.tensor([len(payload)], dtype=torch.int64)
    lengths = [torch.zeros(1, dtype=torch.int64) for _ in range(world)]
    dist.all_gather(lengths, length, group=group)
    sizes = [int(t.item()) for t in lengths]
    longest = max(sizes)
    mine = torch.zeros(longest, dtype=torch.uint8)
    if payload:
        mine[:len(payload)] = torch.frombuffer(bytearray(payload), dtype=torch.uint8)
    parts = [torch.empty(longest, dtype=torch.uint8) for _ in range(world)]
    works = []
    # Chunks in flight together keep both directions of gloo's one duplex TCP connection per
    # pair busy; one big message each way measured at ~0.6 of the link rate (2 ranks).
    for lo in range(0, longest, CHUNK_BYTES):
        hi = min(longest, lo + CHUNK_BYTES)
        works.append(dist.all_gather([p[lo:hi] for p in parts], mine[lo:hi], group=group, async_op=True))
    for w in works:
        w.wait()
    return [p[:n].numpy().tobytes() for p, n in zip(parts, sizes)]


def allgather_mean(comp, x: torch.Tensor, generator=None, group=None) -> tuple[torch.Tensor, Stats]:
    """Mean of every rank's decoded payload (exactly the simulator's aggregation)."""
    st = Stats(collective="allgather")
    t0 = _now()
    payload = comp.encode(x, generator=generator)
    t1 = _now()
    payloads = allgather_bytes(payload, group)
    t2 = _now()
    mean = compression.average(comp.decode(p, x.numel()) for p in payloads)
    st.encode_s, st.communication_s, st.decode_s = t1 - t0, t2 - t1, _now() - t2
    st.payload_bytes = len(payload)
    st.wire_bytes = max(len(p) for p in payloads)
    return mean, st


def wire_dtype(payload_len: int, numel: int) -> torch.dtype | None:
    """The element type of a summable payload with no header (fp32 or fp16), else None."""
    if payload_len == 4 * numel:
        return torch.float32
    if payload_len == 2 * numel:
        return torch.float16
    return None


def allreduce_mean(comp, x: torch.Tensor, generator=None, group=None) -> tuple[torch.Tensor, Stats]:
    """Sum the decoded wire values with all-reduce (in the wire dtype), then divide by K."""
    st = Stats(collective="ring-allreduce")
    t0 = _now()
    payload = comp.encode(x, generator=generator)
    dtype = wire_dtype(len(payload), x.numel())
    if dtype is None:
        raise ValueError(f"{comp.name}: payload is not a headerless fp32/fp16 vector; use allgather")
    wire = comp.decode(payload, x.numel()).to(dtype)
    t1 = _now()
    dist.all_reduce(wire, group=group)
    t2 = _now()
    mean = wire.float() / dist.get_world_size(group)
    st.encode_s, st.communication_s, st.decode_s = t1 - t0, t2 - t1, _now() - t2
    st.payload_bytes = st.wire_bytes = len(payload)
    return mean, st


def powersgd_mean(comp, x: torch.Tensor, generator=None, group=None) -> tuple[torch.Tensor, Stats]:
    """Two-round PowerSGD (Vogels et al. 2019, Alg. 1) with the compressor's m, n, r.

    The first warm start Q is drawn from `generator`, which must be seeded alike on all ranks
    (HookState does this). Bytes per rank: 4·r·(m + n), the simulator's payload minus its
    4-byte header.
    """
    st = Stats(collective="ring-allreduce")
    world = dist.get_world_size(group)
    t0 = _now()
    x = x.detach().float()
    numel = x.numel()
    m, n, r = comp.dims(numel)
    corrected = x if (not comp.error_feedback or comp.memory is None) else x + comp.memory
    matrix = x.new_zeros(m * n)
    matrix[:numel] = corrected
    matrix = matrix.view(m, n)
    q = comp.q if comp.q is not None else torch.randn(n, r, generator=generator)
    p = matrix @ q
    t1 = _now()
    dist.all_reduce(p, group=group)
    t2 = _now()
    p, _ = torch.linalg.qr(p / world)
    q = matrix.T @ p
    t3 = _now()
    dist.all_reduce(q, group=group)
    t4 = _now()
    q = q / world
    approx = (p @ q.T).flatten()[:numel]
    comp.q = q
    if comp.error_feedback:
        comp.memory = corrected - approx
    st.encode_s = (t1 - t0) + (t3 - t2)
    st.communication_s = (t2 - t1) + (t4 - t3)
    st.decode_s = _now() - t4
    st.payload_bytes = st.wire_bytes = 4 * r * (m + n)
    return approx, st


def exchange(comp, x: torch.Tensor, generator=None, group=None) -> tuple[torch.Tensor, Stats]:
    """Average `x` over the ranks through `comp`'s real payloads; pick the collective."""
    if comp.name == "powersgd":
        return powersgd_mean(comp, x, generator, group)
    if comp.allreduce_compatible and comp.name in ("none", "fp16"):
        return allreduce_mean(comp, x, generator, group)
    return allgather_mean(comp, x, generator, group)


@dataclass
class HookState:
    """Per-rank hook state.

    name, params: the compressor (as in `compression.get(name, **params)`).
    generator: this rank's rounding generator (seed it per rank, as the simulator does).
    shared_generator: seeded alike on every rank (PowerSGD's first warm start).
    param_order: the model's parameters in `model.parameters()` order; the hook lays each
        bucket's gradient out in that order so that a single-bucket model is encoded exactly
        like the simulator's flat gradient. None: DDP's bucket order.
    stats: one `Stats` per hook call (read and clear it after each iteration).
    """

    name: str
    params: dict = field(default_factory=dict)
    generator: torch.Generator | None = None
    shared_generator: torch.Generator | None = None
    param_order: list | None = None
    group: object = None
    compressors: dict = field(default_factory=dict)
    stats: list = field(default_factory=list)

    def compressor(self, bucket_index: int):
        """The bucket's own compressor (error-feedback memory is per bucket)."""
        if bucket_index not in self.compressors:
            self.compressors[bucket_index] = compression.get(self.name, **self.params)
        return self.compressors[bucket_index]


def _model_order(state: HookState, params: list) -> list[int]:
    if not state.param_order:
        return list(range(len(params)))
    rank_of = {id(p): i for i, p in enumerate(state.param_order)}
    return sorted(range(len(params)), key=lambda i: rank_of.get(id(params[i]), i))


def compression_hook(state: HookState, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """DDP communication hook: `ddp.register_comm_hook(state, compression_hook)`.

    Runs synchronously (the future is returned completed), so communication does not overlap
    with the rest of backward; that is what `communication.overlap: false` simulates.
    """
    grads = bucket.gradients()
    order = _model_order(state, bucket.parameters())
    flat = torch.cat([grads[i].detach().reshape(-1).float() for i in order])
    comp = state.compressor(bucket.index())
    gen = state.shared_generator if comp.name == "powersgd" else state.generator
    mean, st = exchange(comp, flat, gen, state.group)
    state.stats.append(st)
    # Back to bucket order: the bucket buffer is its gradients concatenated in that order.
    pieces, offset = [None] * len(grads), 0
    for i in order:
        n = grads[i].numel()
        pieces[i] = mean[offset:offset + n]
        offset += n
    buffer = bucket.buffer()
    out = torch.cat(pieces).to(buffer.dtype)
    if out.numel() != buffer.numel():
        raise RuntimeError(f"bucket holds {buffer.numel()} values but its gradients {out.numel()}")
    fut = torch.futures.Future()
    fut.set_result(out.view_as(buffer))
    return fut

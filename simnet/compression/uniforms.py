"""Uniform draws in [0, 1) for stochastic rounding, fast on CPU and reproducible.

torch's CPU generator (MT19937) makes about 10 ns per float32 draw here, several times the cost
of the rest of an encoder. So a CPU `torch.Generator` instead seeds numpy's PCG64DXSM (one
63-bit draw from the torch generator per call) and the draws are made in chunks on a few
threads: chunk i starts `advance`d by i·CHUNK/2 64-bit outputs (numpy makes two float32 per
64-bit output), so the result is one serial PCG64DXSM stream whatever the thread count, and
a seeded generator gives bit-identical draws on every machine.

Draws are float32 multiples of 2^-24, as `torch.rand`'s. A CUDA generator draws on its device
(Philox); data on CUDA with a CPU generator gets the CPU draws copied over, so CPU and CUDA
encoders given the same generator see the same uniforms.
"""

from __future__ import annotations

import numpy as np
import torch

from . import threads

__all__ = ["uniforms", "stream_seed", "fill", "pcg_state", "parallel_map", "CHUNK"]

CHUNK = 1 << 20  # draws per chunk (even, so chunks start on a whole 64-bit output)
_THREADS = threads.THREADS


def stream_seed(generator: torch.Generator | None) -> int:
    """The PCG64DXSM seed of one call: one draw from a CPU `generator` (None: torch's global
    generator, unseeded)."""
    return int(torch.randint(0, 2**63 - 1, (1,), generator=generator))


def fill(seed: int, out: np.ndarray, first: int) -> None:
    """Draws number first, first+1, ... of the stream `seed` into float32 `out` (first even).

    Bit for bit what `np.random.Generator(PCG64DXSM(seed)).random(dtype=np.float32)` draws
    (each 64-bit output gives two draws, low half first: (u32 >> 8)·2^-24), made from raw
    outputs because that is about twice as fast.
    """
    if first % 2:
        raise ValueError(f"a draw range must start at an even position, got {first}")
    bits = np.random.PCG64DXSM(seed)
    bits.advance(first // 2)
    raw = bits.random_raw((out.size + 1) // 2).view(np.uint32)[:out.size]
    raw >>= 8
    np.multiply(raw, np.float32(2.0**-24), out=out, casting="unsafe")


def pcg_state(seed: int, first: int) -> np.ndarray:
    """The PCG64DXSM state of stream `seed` positioned at draw `first` (even), as the compiled
    kernels take it: uint64 [state hi, state lo, increment hi, increment lo]."""
    if first % 2:
        raise ValueError(f"a draw range must start at an even position, got {first}")
    bits = np.random.PCG64DXSM(seed)
    bits.advance(first // 2)
    st = bits.state["state"]
    mask = (1 << 64) - 1
    return np.array([st["state"] >> 64, st["state"] & mask, st["inc"] >> 64, st["inc"] & mask],
                    np.uint64)


def _executor():
    return threads.pool("simnet-uniforms")


def parallel_map(job, starts) -> None:
    """Run `job(start)` for every start, on the codec thread pool when there are several (jobs
    must release the GIL to gain: numpy fills and the compiled kernels do). Jobs must write
    disjoint outputs; exceptions propagate."""
    starts = list(starts)
    if len(starts) <= 1 or _THREADS == 1:
        for s in starts:
            job(s)
        return
    list(_executor().map(job, starts))


def _draw_cpu(numel: int, seed: int) -> np.ndarray:
    out = np.empty(numel, np.float32)
    starts = range(0, numel, CHUNK)
    if numel <= 2 * CHUNK or _THREADS == 1:
        for s in starts:
            fill(seed, out[s:s + CHUNK], s)
        return out
    # numpy releases the GIL while it fills, so the chunks are drawn in parallel
    parallel_map(lambda s: fill(seed, out[s:s + CHUNK], s), starts)
    return out


def uniforms(shape, generator: torch.Generator | None, device) -> torch.Tensor:
    """float32 uniforms in [0, 1) of `shape` on `device`; seeded by `generator` (None: torch's
    global, unseeded stream)."""
    if generator is None:
        return torch.rand(shape, device=device)
    if generator.device.type != "cpu":
        return torch.rand(shape, generator=generator, device=generator.device).to(device)
    seed = stream_seed(generator)
    numel = int(np.prod(shape, dtype=np.int64))
    return torch.from_numpy(_draw_cpu(numel, seed)).view(shape).to(device)

"""Uniform draws in [0, 1) for stochastic rounding, fast on CPU and reproducible.

torch's CPU generator (MT19937) makes about 10 ns per float32 draw here, several times the cost
of the rest of an encoder. So a CPU `torch.Generator` instead gives one 63-bit seed per call
(`stream_seed`), and the draws come from SplitMix64 used as a counter-based stream: word t is
mix64(seed + (t + 1)·γ), SplitMix64's t-th output, and draw j is the low (j even) or high
(j odd) 32-bit half of word j // 2, as (u32 >> 8)·2^-24. Any range of draws is computed
directly (no generator to advance), so chunks are drawn on a few threads and the compiled
kernels (`counter_kernels.py`) draw the same stream as they round; a seeded generator gives
bit-identical draws on every machine and thread count.

Draws are float32 multiples of 2^-24, as `torch.rand`'s. A CUDA generator draws on its device
(Philox); data on CUDA with a CPU generator gets the CPU draws copied over, so CPU and CUDA
encoders given the same generator see the same uniforms.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from . import counter_kernels, jit, threads
from .counter_kernels import GAMMA, MIX1, MIX2

__all__ = ["uniforms", "stream_seed", "fill", "fill_numpy", "CHUNK"]

CHUNK = 1 << 20  # draws per chunk (even, so chunks start on a whole 64-bit output)
_THREADS = threads.THREADS


def stream_seed(generator: torch.Generator | None) -> int:
    """The stream seed of one call: one draw from a CPU `generator` (None: torch's global
    generator, unseeded)."""
    return int(torch.randint(0, 2**63 - 1, (1,), generator=generator))


def _check_even(first: int) -> None:
    if first % 2:
        raise ValueError(f"a draw range must start at an even position, got {first}")


def fill(seed: int, out: np.ndarray, first: int) -> None:
    """Draws number first, first+1, ... of the stream `seed` into float32 `out` (first even):
    the compiled kernel when `jit.enabled()`, else the vectorised numpy below (the same
    values; the tests run both)."""
    _check_even(first)
    if jit.enabled():
        counter_kernels.fill(out, seed, first // 2)
    else:
        fill_numpy(seed, out, first)


def fill_numpy(seed: int, out: np.ndarray, first: int) -> None:
    """`fill` in vectorised numpy (first even)."""
    _check_even(first)
    nwords = (out.size + 1) // 2
    z = np.arange(first // 2 + 1, first // 2 + 1 + nwords, dtype=np.uint64)
    tmp = np.empty_like(z)
    z *= GAMMA  # uint64 arrays wrap: mod 2^64, as the kernels
    z += np.uint64(seed)
    for shift, mult in ((30, MIX1), (27, MIX2), (31, None)):  # z ^= z >> shift; z *= mult
        np.bitwise_xor(z, np.right_shift(z, np.uint64(shift), out=tmp), out=z)
        if mult is not None:
            z *= mult
    if sys.byteorder == "little":  # the words' memory as uint32: low half first
        halves = z.view(np.uint32)
    else:
        halves = np.empty(2 * nwords, np.uint32)
        halves[0::2], halves[1::2] = z, z >> np.uint64(32)
    halves >>= np.uint32(8)
    np.multiply(halves[:out.size], np.float32(2.0**-24), out=out, casting="unsafe")


def _draw_cpu(numel: int, seed: int) -> np.ndarray:
    out = np.empty(numel, np.float32)
    starts = range(0, numel, CHUNK)
    if numel <= 2 * CHUNK or _THREADS == 1:
        for s in starts:
            fill(seed, out[s:s + CHUNK], s)
        return out
    # the kernel (and numpy) release the GIL while they fill: chunks are drawn in parallel
    threads.parallel_map(lambda s: fill(seed, out[s:s + CHUNK], s), starts)
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

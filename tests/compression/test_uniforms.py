"""The uniform draws behind stochastic rounding, and the chunked CPU `fixed` encoder.

Oracles: SplitMix64's published outputs and a plain-integer implementation of the stream
(the vectorised and the compiled draws must be exactly it; chunked, threaded draws must be one
serial stream), and the unchunked path quantize -> wire.encode (the chunked encoder must give
the same bytes from the same generator).
"""

import numpy as np
import pytest
import torch

from simnet import compression
from simnet.compression import uniforms as U
from simnet.compression import wire

MASK = (1 << 64) - 1


def splitmix64(seed: int, n: int, first_word: int = 0) -> list[int]:
    """Words first_word, ... of SplitMix64 from state `seed`, in plain Python integers."""
    out = []
    for t in range(first_word, first_word + n):
        z = (seed + (t + 1) * 0x9E3779B97F4A7C15) & MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        out.append(z ^ (z >> 31))
    return out


def reference(seed: int, n: int, first: int = 0) -> np.ndarray:
    """Draws first, ..., first + n - 1: low then high half of each word, (u32 >> 8)·2^-24."""
    words = splitmix64(seed, (n + 1) // 2 + 1, first // 2)
    halves = [h for w in words for h in (w & 0xFFFFFFFF, w >> 32)]
    return np.array([(h >> 8) * 2.0**-24 for h in halves[:n]], np.float32)


def test_splitmix64_known_outputs():
    """Vigna's splitmix64.c from state 1234567: the published first five outputs."""
    assert splitmix64(1234567, 5) == [6457827717110365317, 3203168211198807973,
                                      9817491932198370423, 4593380528125082431,
                                      16408922859458223821]


@pytest.mark.parametrize("seed,n,first", [(1234567, 10, 0), (0, 1, 0), (2**63 - 2, 333, 6),
                                          (99, 1001, 2**40)])
@pytest.mark.parametrize("fill", [U.fill, U.fill_numpy], ids=["fill", "numpy"])
def test_fill_is_the_stream(fill, seed, n, first):
    """Both implementations (`fill` runs the kernel when numba is on) give the stream."""
    out = np.full(n, -1.0, np.float32)
    fill(seed, out, first)
    np.testing.assert_array_equal(out, reference(seed, n, first))


def test_fill_and_its_numpy_version_agree_on_a_large_range():
    a, b = np.empty(3 * 2**17 + 5, np.float32), np.empty(3 * 2**17 + 5, np.float32)
    U.fill(5, a, 2**33)
    U.fill_numpy(5, b, 2**33)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n", [1, 2, 7, U.CHUNK - 1, 3 * U.CHUNK + 5])
def test_threaded_draws_are_one_serial_stream(n):
    serial = np.empty(n, np.float32)
    U.fill(99, serial, 0)
    np.testing.assert_array_equal(U._draw_cpu(n, 99), serial)
    np.testing.assert_array_equal(serial[:500], reference(99, min(n, 500)))


def test_fill_at_an_offset_is_that_slice_of_the_stream():
    ref = np.empty(1000, np.float32)
    U.fill(7, ref, 0)
    out = np.empty(301, np.float32)
    U.fill(7, out, 400)
    np.testing.assert_array_equal(out, ref[400:701])
    for fill in (U.fill, U.fill_numpy):
        with pytest.raises(ValueError, match="even"):
            fill(7, out, 401)


def test_draws_are_seeded_in_range_and_on_the_24_bit_grid():
    a = U.uniforms((3, 5000), torch.Generator().manual_seed(1), "cpu")
    b = U.uniforms((3, 5000), torch.Generator().manual_seed(1), "cpu")
    c = U.uniforms((3, 5000), torch.Generator().manual_seed(2), "cpu")
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.dtype == torch.float32 and 0 <= a.min() and a.max() < 1
    assert torch.equal(a * 2**24, torch.floor(a * 2**24))
    assert abs(a.mean().item() - 0.5) < 0.01  # 15,000 draws: sd of the mean is 0.0024


CASES = [("qsgd", dict(levels=7, bucket_size=512), 1_000_003),
         ("qsgd", dict(levels=3, bucket_size=77), 200_001),
         ("qsgd", dict(levels=2000, bucket_size=64), 70_001),  # float64 rounding, 12-bit fields
         ("qsgdinf", dict(levels=1, bucket_size=5), 99_999),
         ("nuqsgd", dict(levels=6, bucket_size=512), 600_000),
         ("qsgd", dict(levels=7, bucket_size=3_000_000), 100)]  # one bucket larger than n


@pytest.mark.parametrize("team", [True, False])
@pytest.mark.parametrize("method,params,n", CASES)
def test_chunked_fixed_encoder_matches_the_unchunked_path(method, params, n, team, monkeypatch):
    """(Chunks on numba's threads or on the pool.)"""
    import simnet.compression.quantized as quantized
    from simnet.compression import threads

    monkeypatch.setattr(quantized, "CHUNK_COORDS", 4096)  # many chunks even for small n
    monkeypatch.setattr(threads, "TEAM", team)
    c = compression.get(method, **params)
    x = torch.randn(n, generator=torch.Generator().manual_seed(n)) ** 3
    fast = c.encode(x, generator=torch.Generator().manual_seed(3))
    scales, idx, neg = c.quantize(x, torch.Generator().manual_seed(3))
    slow = wire.encode(wire.Quantized(scales, idx, neg, n), c.grid, c.bucket_size, "fixed")
    assert fast == slow
    assert len(fast) == wire.fixed_nbytes(n, c.bucket_size, c.grid)


def test_chunk_rows_fill_whole_bytes():
    for d in [1, 2, 3, 5, 8, 77, 512, 1000]:
        rows = wire.chunk_rows(d, 4096)
        assert rows >= 1 and (rows * d) % 8 == 0


@pytest.mark.skipif(not __import__("simnet.compression.jit", fromlist=["x"]).ENABLED,
                    reason="numba not available or SIMNET_JIT=0")
@pytest.mark.parametrize("m", [1, 2, 1023, 1024])
@pytest.mark.parametrize("seed,first", [(99, 4), (2**63 - 2, 2**41)])
def test_compiled_draw_gives_the_uniforms_of_fill(m, seed, first):
    """`counter_kernels.draw` (the kernels' uniforms, odd counts included) equals
    `uniforms.fill_numpy`, and so the stream."""
    import numba

    from simnet.compression import counter_kernels

    @numba.njit
    def draw(u, m, seed, first_word):
        words = np.empty((m + 1) // 2, np.uint64)
        counter_kernels.draw(u, words, words.view(np.uint32), m, seed, first_word)

    got = np.full(m, -1.0, np.float32)
    draw(got, m, seed, first // 2)
    want = np.empty(m, np.float32)
    U.fill_numpy(seed, want, first)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got[:64], reference(seed, min(m, 64), first))

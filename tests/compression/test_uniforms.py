"""The uniform draws behind stochastic rounding, and the chunked CPU `fixed` encoder.

Oracles: numpy's own serial PCG64DXSM float32 stream (the chunked, threaded draws must be
exactly it), and the unchunked path quantize -> wire.encode (the chunked encoder must give
the same bytes from the same generator).
"""

import numpy as np
import pytest
import torch

from simnet import compression
from simnet.compression import uniforms as U
from simnet.compression import wire


def serial(seed: int, n: int) -> np.ndarray:
    return np.random.Generator(np.random.PCG64DXSM(seed)).random(n, dtype=np.float32)


@pytest.mark.parametrize("n", [1, 2, 7, U.CHUNK - 1, 3 * U.CHUNK + 5])
def test_threaded_draws_are_one_serial_stream(n):
    np.testing.assert_array_equal(U._draw_cpu(n, 99), serial(99, n))


def test_fill_at_an_offset_is_that_slice_of_the_stream():
    ref = serial(7, 1000)
    out = np.empty(301, np.float32)
    U.fill(7, out, 400)
    np.testing.assert_array_equal(out, ref[400:701])
    with pytest.raises(ValueError):
        U.fill(7, out, 401)


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


@pytest.mark.parametrize("method,params,n", CASES)
def test_chunked_fixed_encoder_matches_the_unchunked_path(method, params, n, monkeypatch):
    import simnet.compression.quantized as quantized

    monkeypatch.setattr(quantized, "CHUNK_COORDS", 4096)  # many chunks even for small n
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
@pytest.mark.parametrize("seed,first", [(0, 0), (12345, 2), (2**62 + 7, 1 << 21)])
def test_compiled_pcg_matches_numpy_raw_outputs(seed, first):
    """The kernels' PCG64DXSM (128-bit state in two uint64) gives numpy's raw outputs."""
    from simnet.compression import pcg_kernels, uniforms

    hi, lo, inc_hi, inc_lo = (np.uint64(v) for v in uniforms.pcg_state(seed, first))
    bits = np.random.PCG64DXSM(seed)
    bits.advance(first // 2)
    expect = bits.random_raw(50)
    for want in expect:
        # called from Python, numba hands uint64 results back as signed ints
        got, hi, lo = (np.uint64(int(v) % 2**64)
                       for v in pcg_kernels._pcg_next(hi, lo, inc_hi, inc_lo))
        assert got == want


@pytest.mark.skipif(not __import__("simnet.compression.jit", fromlist=["x"]).ENABLED,
                    reason="numba not available or SIMNET_JIT=0")
@pytest.mark.parametrize("m", [1, 2, 1023, 1024])
def test_compiled_draw_gives_the_uniforms_of_fill(m):
    """`pcg_kernels.draw` (the kernels' uniforms, odd counts included) equals `uniforms.fill`."""
    from simnet.compression import pcg_kernels, uniforms

    st = uniforms.pcg_state(99, 4)
    got = np.full(m, -1.0, np.float32)
    pcg_kernels.draw(got, m, st[0], st[1], st[2], st[3])
    want = np.empty(m, np.float32)
    uniforms.fill(99, want, 4)
    assert np.array_equal(got, want)

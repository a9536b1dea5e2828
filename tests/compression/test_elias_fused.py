"""The `elias` encoder fused with the rounding (elias_fused.py) against its oracle, the
vectorised `quantize` -> `elias.encode` (kernels off): the same bytes from the same seed, for
odd and even bucket sizes, short last buckets, several bucket ranges on threads (spliced at
unaligned bit offsets), sparse and dense blocks, long gaps and levels beyond the fused table."""

from __future__ import annotations

import pytest
import torch

from simnet import compression
from simnet.compression import elias, elias_fused, jit
from kernel_paths import on_path

pytestmark = pytest.mark.skipif(jit.numba is None, reason="numba is not installed")


def gradient(n: int, seed: int, density: float, cube: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g)
    x = x**3 if cube else x
    return x * (torch.rand(n, generator=g) < density)


def assert_fused_matches_oracle(method, n, d, density=1.0, cube=False, **levels):
    c = compression.get(method, bucket_size=d, encoding="elias", **levels)
    x = gradient(n, n + d, density, cube)
    fused = on_path(True, lambda: c.encode(x, torch.Generator().manual_seed(3)))

    def oracle():
        scales, idx, neg = c.quantize(x, torch.Generator().manual_seed(3))
        return compression.wire.encode(compression.wire.Quantized(scales, idx, neg, n),
                                       c.grid, d, "elias")

    assert fused == on_path(False, oracle)
    assert torch.equal(c.decode(fused, n), on_path(False, lambda: c.decode(fused, n)))


@pytest.mark.parametrize("method", ["qsgd", "qsgdinf", "nuqsgd"])
@pytest.mark.parametrize("n,d", [(1, 1), (2, 1), (7, 3), (1000, 64), (4099, 512), (5000, 1),
                                 (70001, 511), (70001, 512), (200003, 7), (131072, 1024)])
@pytest.mark.parametrize("bits", [3, 4, 7])
def test_same_bytes_as_quantize_then_encode(method, n, d, bits):
    assert_fused_matches_oracle(method, n, d, bits=bits)


@pytest.mark.parametrize("method,levels", [("qsgd", 300), ("qsgdinf", 1000), ("nuqsgd", 120)])
@pytest.mark.parametrize("n,d,density", [(70001, 256, 1.0), (300000, 100000, 3e-5),
                                         (200001, 70000, 1e-4), (90001, 4096, 0.01)])
def test_long_gaps_and_large_levels(method, levels, n, d, density):
    """Triples down the rare path: gaps > 63 (and > 2^16), levels >= 128, in sparse and
    dense blocks."""
    assert_fused_matches_oracle(method, n, d, density=density, cube=True, levels=levels)


def test_zero_gradient_has_empty_sections():
    c = compression.get("qsgd", bucket_size=512, encoding="elias", levels=3)
    payload = on_path(True, lambda: c.encode(torch.zeros(100_000)))
    nb = -(-100_000 // 512)
    assert len(payload) == compression.wire.header_nbytes(100_000) + 4 * nb + -(
        -nb * elias.length_bits(512, c.grid) // 8)
    assert torch.equal(c.decode(payload, 100_000), torch.zeros(100_000))


def test_encode_takes_the_fused_path(monkeypatch):
    """Guards the comparisons above: a CPU `elias` encode with the kernels on rounds in the
    fused kernel, not in `quantize`."""
    calls = []
    real = elias_fused.encode_rows
    monkeypatch.setattr(elias_fused, "encode_rows", lambda *a: calls.append(1) or real(*a))
    c = compression.get("qsgd", bucket_size=512, encoding="elias", bits=4)
    monkeypatch.setattr(c, "quantize", lambda *a: pytest.fail("quantize was called"))
    on_path(True, lambda: c.encode(torch.randn(100_000), torch.Generator().manual_seed(0)))
    assert len(calls) == len(elias._ranges(-(-100_000 // 512), 512))  # a range per thread

"""The CPU encoders that round as they code (`elias_fused.encode_rows`, and
`level_keys.round_keys` for `entropy` and `auto`) against their oracle, the vectorised
`quantize` -> `wire.encode` (kernels off): the same bytes from the same seed, for odd and
even bucket sizes, short last buckets, several bucket ranges on threads (elias: spliced at
unaligned bit offsets; entropy: several chunks, pair mode), sparse and dense blocks, long gaps
and levels beyond elias' fused table."""

from __future__ import annotations

import pytest
import torch

from simnet import compression
from simnet.compression import elias, elias_fused, jit, level_keys, norm_kernels, threads
from kernel_paths import on_path

pytestmark = pytest.mark.skipif(jit.numba is None, reason="numba is not installed")


def gradient(n: int, seed: int, density: float, cube: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g)
    x = x**3 if cube else x
    return x * (torch.rand(n, generator=g) < density)


def assert_fused_matches_oracle(method, n, d, density=1.0, cube=False, encoding="elias",
                                **levels):
    c = compression.get(method, bucket_size=d, encoding=encoding, **levels)
    x = gradient(n, n + d, density, cube)
    fused = on_path(True, lambda: c.encode(x, torch.Generator().manual_seed(3)))

    def oracle():
        scales, idx, neg = c.quantize(x, torch.Generator().manual_seed(3))
        return compression.wire.encode(compression.wire.Quantized(scales, idx, neg, n),
                                       c.grid, d, encoding)

    assert fused == on_path(False, oracle)
    assert torch.equal(c.decode(fused, n), on_path(False, lambda: c.decode(fused, n)))


@pytest.mark.parametrize("encoding", ["elias", "entropy", "auto"])
@pytest.mark.parametrize("method", ["qsgd", "qsgdinf", "nuqsgd"])
@pytest.mark.parametrize("n,d", [(1, 1), (2, 1), (7, 3), (1000, 64), (4099, 512), (5000, 1),
                                 (70001, 511), (70001, 512), (200003, 7), (131072, 1024)])
@pytest.mark.parametrize("bits", [3, 4, 7])
def test_same_bytes_as_quantize_then_encode(encoding, method, n, d, bits):
    assert_fused_matches_oracle(method, n, d, encoding=encoding, bits=bits)


@pytest.mark.parametrize("method,n,d", [("qsgd", 300_001, 511), ("nuqsgd", 600_000, 512)])
def test_entropy_in_several_chunks(method, n, d):
    """n >= 2^18: the keys of two or four chunks, rounded by bucket ranges on threads."""
    assert_fused_matches_oracle(method, n, d, encoding="entropy", bits=4)


@pytest.mark.parametrize("encoding", ["entropy", "auto"])
@pytest.mark.parametrize("method", ["qsgd", "qsgdinf", "nuqsgd"])
@pytest.mark.parametrize("n,d", [(1001, 64), (4099, 2), (70001, 512), (300_000, 1024)])
def test_entropy_pairs(monkeypatch, encoding, method, n, d):
    """Pair mode (forced from 1000 coordinates): `round_keys` counts pair codes, odd n's
    lone last coordinate included, the same bytes as the oracle's pair symbols."""
    monkeypatch.setattr(compression.entropy, "PAIR_MIN", 1000)
    c = compression.get(method, bucket_size=d, encoding=encoding, bits=3)
    assert compression.entropy.pairs_for(n, d, c.grid.size)
    assert_fused_matches_oracle(method, n, d, encoding=encoding, bits=3)


@pytest.mark.parametrize("method,levels", [("qsgd", 300), ("qsgdinf", 1000)])
def test_entropy_with_wide_keys(method, levels):
    """Grids of > 128 points: keys 2·level + sign need 16 bits."""
    assert_fused_matches_oracle(method, 70_001, 256, cube=True, encoding="entropy",
                                levels=levels)


@pytest.mark.parametrize("encoding", ["elias", "auto"])
@pytest.mark.parametrize("method,levels", [("qsgd", 300), ("qsgdinf", 1000), ("nuqsgd", 120)])
@pytest.mark.parametrize("n,d,density", [(70001, 256, 1.0), (300000, 100000, 3e-5),
                                         (200001, 70000, 1e-4), (90001, 4096, 0.01)])
def test_long_gaps_and_large_levels(encoding, method, levels, n, d, density):
    """Triples down the rare path: gaps > 63 (and > 2^16), levels >= 128, in sparse and
    dense blocks (auto: where elias wins, and where the others do)."""
    assert_fused_matches_oracle(method, n, d, density=density, cube=True, encoding=encoding,
                                levels=levels)


def test_zero_gradient_has_empty_sections():
    c = compression.get("qsgd", bucket_size=512, encoding="elias", levels=3)
    payload = on_path(True, lambda: c.encode(torch.zeros(100_000)))
    nb = -(-100_000 // 512)
    assert len(payload) == compression.wire.header_nbytes(100_000) + 4 * nb + -(
        -nb * elias.length_bits(512, c.grid) // 8)
    assert torch.equal(c.decode(payload, 100_000), torch.zeros(100_000))


@pytest.mark.parametrize("team", [True, False])
@pytest.mark.parametrize("encoding,module,kernel", [
    ("elias", elias_fused, "encode_rows"), ("entropy", level_keys, "round_keys"),
    ("auto", level_keys, "round_keys")])
def test_encode_takes_the_fused_path(monkeypatch, team, encoding, module, kernel):
    """Guards the comparisons above: a CPU encode with the kernels on rounds in the fused
    kernel, not in `quantize`: a range per thread, on the pool, or all in one launch of the
    kernel's range runner (`encode_ranges`, `round_keys_ranges`) on numba's threads."""
    monkeypatch.setattr(threads, "TEAM", team)
    ranges = len(elias._ranges(-(-300_000 // 512), 512))
    on_team = threads.team_ready(ranges)
    runner = {"encode_rows": "encode_ranges", "round_keys": "round_keys_ranges"}[kernel]
    calls = []
    for name in (kernel, runner):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, real=real, name=name: calls.append(name)
                            or real(*a))
    c = compression.get("qsgd", bucket_size=512, encoding=encoding, bits=4)
    monkeypatch.setattr(c, "quantize", lambda *a: pytest.fail("quantize was called"))
    on_path(True, lambda: c.encode(torch.randn(300_000), torch.Generator().manual_seed(0)))
    assert calls == ([runner] if on_team else [kernel] * ranges)


def test_auto_from_keys_can_send_fixed():
    """A grid past entropy's 2048 points and dense large levels: elias costs more than the
    13-bit fixed fields, so `auto` (from keys, kernels on) sends fixed, as the oracle does."""
    c = compression.get("qsgd", levels=3000, bucket_size=512, encoding="auto")
    x = torch.rand(5000, generator=torch.Generator().manual_seed(0)) + 1.0  # flat: big levels
    fast = on_path(True, lambda: c.encode(x, torch.Generator().manual_seed(3)))
    assert fast == on_path(False, lambda: c.encode(x, torch.Generator().manual_seed(3)))
    assert fast[0] == compression.wire.TAGS["fixed"]
    assert torch.equal(c.decode(fast, 5000), on_path(False, lambda: c.decode(fast, 5000)))


@pytest.mark.parametrize("encoding", ["fixed", "elias", "entropy", "auto"])
@pytest.mark.parametrize("method", ["qsgd", "qsgdinf", "nuqsgd"])
# rows of an odd span B·d (row 1 starts at an odd draw), of one short bucket, and large rows
# on threads (entropy: pairs, several chunks)
@pytest.mark.parametrize("k,n,d", [(3, 20, 7), (4, 1000, 100), (2, 5, 3), (2, 300_001, 511),
                                   (2, 600_000, 512)])
def test_batch_rows_on_the_fused_path_match_the_batched_oracle(encoding, method, k, n, d):
    """encode_batch on CPU encodes row k with the fused encoders starting at draw k·B·d:
    the bytes of the batched `quantize` over [K, B, d] -> `wire.encode` (kernels off)."""
    c = compression.get(method, bucket_size=d, encoding=encoding, bits=4)
    xs = torch.randn(k, n, generator=torch.Generator().manual_seed(n))
    fused = on_path(True, lambda: c.encode_batch(xs, torch.Generator().manual_seed(3)))
    assert fused == on_path(False, lambda: c.encode_batch(xs, torch.Generator().manual_seed(3)))
    assert len(set(fused)) == k  # each row its own draws


def test_batch_takes_the_fused_path(monkeypatch):
    """Guards the comparison above: with the kernels on, encode_batch never calls quantize."""
    c = compression.get("qsgd", bucket_size=64, encoding="entropy", bits=4)
    monkeypatch.setattr(c, "quantize", lambda *a: pytest.fail("quantize was called"))
    xs = torch.randn(3, 1000, generator=torch.Generator().manual_seed(0))
    payloads = on_path(True, lambda: c.encode_batch(xs, torch.Generator().manual_seed(1)))
    assert [c.decode(p, 1000).shape for p in payloads] == [(1000,)] * 3


def test_batch_refuses_a_non_finite_row():
    """A NaN in one row of the batch: the fused path's ValueError, naming it."""
    c = compression.get("qsgd", bucket_size=64, encoding="elias", bits=4)
    xs = torch.randn(3, 1000)
    xs[2, 17] = float("nan")
    for kernels in (True, False):
        with pytest.raises(ValueError, match="NaN"):
            on_path(kernels, lambda: c.encode_batch(xs))


@pytest.mark.parametrize("encoding", ["fixed", "elias", "entropy", "auto"])
@pytest.mark.parametrize("method", ["qsgd", "qsgdinf"])  # an L2 and a max-magnitude scale
@pytest.mark.parametrize("at", [0, 300_000, 599_999])  # first range, second, short last bucket
@pytest.mark.parametrize("bad", [float("nan"), -float("inf")])
def test_fused_norms_refuse_a_non_finite_coordinate(encoding, method, at, bad):
    """The fused encoders compute each bucket's scale just before rounding it: a NaN or an
    infinity anywhere (on either thread's range, or chunk of `fixed`) stops them with
    check_gradient's ValueError, on both paths."""
    c = compression.get(method, bucket_size=512, encoding=encoding, bits=4)
    x = torch.randn(600_000, generator=torch.Generator().manual_seed(at))
    x[at] = bad
    for kernels in (True, False):
        with pytest.raises(ValueError, match="NaN or Inf"):
            on_path(kernels, lambda: c.encode(x, torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("encoding", ["fixed", "elias", "entropy", "auto"])
def test_fused_norms_refuse_an_l2_norm_past_float32(encoding):
    """Finite coordinates whose bucket's L2 norm exceeds float32 (in the second thread's
    range): 'too large', on both paths; the same max magnitudes are fine for qsgdinf."""
    x = torch.randn(600_000, generator=torch.Generator().manual_seed(1))
    x[400_000:400_008] = 3e38
    c = compression.get("qsgd", bucket_size=512, encoding=encoding, bits=4)
    for kernels in (True, False):
        with pytest.raises(ValueError, match="too large"):
            on_path(kernels, lambda: c.encode(x, torch.Generator().manual_seed(0)))
    c = compression.get("qsgdinf", bucket_size=512, encoding=encoding, bits=4)
    assert on_path(True, lambda: c.encode(x, torch.Generator().manual_seed(0))) == on_path(
        False, lambda: c.encode(x, torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("team", [True, False])
@pytest.mark.parametrize("encoding", ["fixed", "elias", "entropy"])
def test_fused_encoders_report_a_non_finite_scale_one_way(monkeypatch, team, encoding):
    """Each fused CPU encoder (`fixed`'s chunks, `elias.encode_rounding`,
    `level_keys.of_rounding`) stops with `norm_kernels.ScaleNotFinite`, whose scales hold the
    bucket that is not finite: the one signal `Quantizer.encode` turns into its ValueError.
    (On numba's threads or the pool's.)"""
    monkeypatch.setattr(threads, "TEAM", team)
    c = compression.get("qsgd", bucket_size=512, encoding=encoding, bits=4)
    x = torch.randn(600_000, generator=torch.Generator().manual_seed(2))
    x[400_123] = float("nan")
    fast, flat, bucket = c._kernel_grid(), x.numpy(), 400_123 // 512
    calls = {
        "fixed": lambda: c._encode_fixed_compiled(x, 5, 0, fast),
        "elias": lambda: elias.encode_rounding(flat, norm_kernels.L2, 5, 512, fast, c.grid),
        "entropy": lambda: level_keys.of_rounding(flat, norm_kernels.L2, 5, 512, fast,
                                                  c.grid.size, pairs=True),
    }
    with pytest.raises(norm_kernels.ScaleNotFinite) as caught:
        on_path(True, calls[encoding])
    assert caught.value.scales.size == -(-x.numel() // 512)
    assert not caught.value.scales[bucket] < float("inf")


@pytest.mark.parametrize("off", [0, 5])
@pytest.mark.parametrize("n,d,density", [(1, 1, 1.0), (5000, 1, 0.3), (20_001, 7, 0.5),
                                         (70_001, 512, 0.2), (70_001, 1000, 1.0),
                                         (100_003, 3000, 0.01), (300_000, 100_000, 1e-4)])
def test_rounding_counts_elias_gap_bits(monkeypatch, off, n, d, density):
    """`of_rounding` with `gap_lengths` counts elias's gap bits a bucket at a time as it
    rounds (buckets longer than a block, gaps past the table, a short last bucket, bucket
    ranges on threads): the total `elias_kernels.gap_bits` finds in the keys it wrote."""
    monkeypatch.setattr(level_keys, "_PAR_MIN", 1000)
    c = compression.get("qsgd", bucket_size=d, encoding="auto", bits=4)
    flat = gradient(n, n + d, density, cube=True).numpy()
    fast, glen = c._kernel_grid(), elias.gap_lengths(d)
    scales, keys, counts, gaps = level_keys.of_rounding(flat, norm_kernels.L2, 9, d, fast,
                                                         c.grid.size, off=off, gap_lengths=glen)
    assert gaps == elias.K.gap_bits(keys, d, 0, scales.size, glen)
    plain = level_keys.of_rounding(flat, norm_kernels.L2, 9, d, fast, c.grid.size, off=off)
    assert len(plain) == 3 and (plain[1] == keys).all() and (plain[2] == counts).all()
    # the ranges on the pool instead of numba's threads (`threads.team_ready`): the same
    monkeypatch.setattr(threads, "TEAM", False)
    pool = level_keys.of_rounding(flat, norm_kernels.L2, 9, d, fast, c.grid.size, off=off,
                                  gap_lengths=glen)
    assert (pool[0] == scales).all() and (pool[1] == keys).all()
    assert (pool[2] == counts).all() and pool[3] == gaps


@pytest.mark.parametrize("method,density,sizes_elias", [("qsgd", 1.0, True),
                                                        ("qsgd", 0.05, True),
                                                        ("qsgdinf", 1.0, False)])
def test_auto_counts_gaps_while_rounding_when_the_last_payload_needed_them(
        monkeypatch, method, density, sizes_elias):
    """`auto` counts elias's gap bits while rounding once a payload needed elias's exact
    size (a speed hint): the next payloads are the same bytes as a fresh compressor's (the
    oracle's), and no longer size elias in a pass of their own."""
    n, d = 200_001, 512
    c = compression.get(method, bucket_size=d, encoding="auto", bits=4)
    x = gradient(n, 7, density, cube=False)
    first = on_path(True, lambda: c.encode(x, torch.Generator().manual_seed(3)))
    assert c._auto_sizes_elias == sizes_elias
    if sizes_elias:
        monkeypatch.setattr(elias, "nbytes_of_keys",
                            lambda *a: pytest.fail("elias sized in a pass of its own"))
    for seed in (3, 4):
        got = on_path(True, lambda: c.encode(x, torch.Generator().manual_seed(seed)))
        fresh = compression.get(method, bucket_size=d, encoding="auto", bits=4)
        assert got == on_path(False, lambda: fresh.encode(x, torch.Generator().manual_seed(seed)))
    assert got != first  # (seed 4: other draws)

"""The compiled grid kernels against the vectorised torch path they replace: same level
indices and signs, same `fixed` bytes, same decoded values, same accepts and rejects."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from simnet import compression
from simnet.compression import grid_kernels, jit, quantized, round_kernels, threads, wire

from kernel_paths import on_both, value_or_error  # same folder: pytest puts it on sys.path

pytestmark = pytest.mark.skipif(not jit.ENABLED, reason="numba not available or SIMNET_JIT=0")


def awkward_gradient(n: int, seed: int) -> torch.Tensor:
    """Heavy tails, exact zeros, a zero bucket region, a subnormal and ties at r = 1."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g) * torch.rand(n, generator=g) ** 6
    x[::13] = 0.0
    x[n // 3: n // 3 + 700] = 0.0
    if n > 10:
        x[7] = 1e-41
        x[n // 2] = -5.0
    return x


CASES = [("qsgd", dict(levels=7, bucket_size=512), 1_000_003),
         ("qsgd", dict(levels=1, bucket_size=1), 5_001),
         ("qsgd", dict(levels=3, bucket_size=77), 200_001),
         ("qsgd", dict(levels=300, bucket_size=64), 70_001),  # int32 indices, 10-bit fields
         ("qsgd", dict(levels=1024, bucket_size=33), 40_000),  # the largest float32 grid
         ("qsgdinf", dict(levels=1, bucket_size=5), 99_999),
         ("qsgdinf", dict(levels=255, bucket_size=512), 300_000),
         ("nuqsgd", dict(levels=6, bucket_size=512), 600_000),
         ("nuqsgd", dict(levels=1, bucket_size=3), 9_999),
         ("nuqsgd", dict(levels=120, bucket_size=100), 50_000),  # the finest grid: 2^-120
         ("qsgd", dict(levels=7, bucket_size=3_000_000), 100),
         ("qsgd", dict(levels=127, bucket_size=100), 50_001),  # 8-bit fields
         ("nuqsgd", dict(levels=5, bucket_size=7), 30_001),  # 4-bit fields, odd buckets
         ("qsgdinf", dict(levels=7, bucket_size=9), 20_001)]


@pytest.mark.parametrize("method,params,n", CASES)
def test_quantize_matches_the_torch_path(method, params, n):
    c = compression.get(method, **params)
    x = awkward_gradient(n, n)
    (s1, i1, n1), (s2, i2, n2) = on_both(lambda: c.quantize(x, torch.Generator().manual_seed(4)))
    assert torch.equal(s1, s2)
    assert i1.dtype == i2.dtype and i1.shape == i2.shape
    assert torch.equal(i1, i2) and torch.equal(n1, n2)


def test_quantize_batch_matches_the_torch_path():
    c = compression.get("nuqsgd", levels=4, bucket_size=100)
    xs = torch.stack([awkward_gradient(3_001, k) for k in range(3)])
    (s1, i1, n1), (s2, i2, n2) = on_both(lambda: c.quantize(xs, torch.Generator().manual_seed(2)))
    assert torch.equal(i1, i2) and torch.equal(n1, n2) and i1.shape == (3, 31, 100)


@pytest.mark.parametrize("team", [True, False])
@pytest.mark.parametrize("method,params,n", CASES)
def test_fixed_bytes_and_decode_match_the_torch_path(monkeypatch, team, method, params, n):
    """(n > 2^18: several chunks, on numba's threads or the pool's.)"""
    monkeypatch.setattr(threads, "TEAM", team)
    c = compression.get(method, **params)
    x = awkward_gradient(n, n + 1)
    fast, slow = on_both(lambda: c.encode(x, torch.Generator().manual_seed(9)))
    assert fast == slow
    y1, y2 = on_both(lambda: c.decode(fast, n))
    assert torch.equal(y1, y2)


@pytest.mark.parametrize("fmt", ["elias", "entropy"])
def test_scaling_of_variable_length_formats_matches(fmt):
    c = compression.get("qsgd", levels=5, bucket_size=100, encoding=fmt)
    x = awkward_gradient(30_001, 3)
    payload = c.encode(x, torch.Generator().manual_seed(1))
    y1, y2 = on_both(lambda: c.decode(payload, 30_001))
    assert torch.equal(y1, y2)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([("qsgd", 3), ("qsgd", 7), ("nuqsgd", 2), ("qsgdinf", 300), ("qsgd", 1),
                        ("qsgd", 127)]),
       st.sampled_from([16, 7]), st.integers(1, 300),
       st.lists(st.integers(0, 10**6), min_size=1, max_size=4))
def test_corrupt_fixed_payloads_rejected_alike(method_s, d, n, flips):
    """Bit flips in the fields (2, 3, 4, 8 and 10-bit, buckets whole or split across bytes):
    both decoders reject, or both give the same values."""
    method, s = method_s
    c = compression.get(method, levels=s, bucket_size=d)
    x = awkward_gradient(n, n)
    payload = bytearray(c.encode(x, torch.Generator().manual_seed(n)))
    for f in flips:
        bit = f % (8 * len(payload))
        payload[bit // 8] ^= 0x80 >> (bit % 8)
    fast, slow = on_both(lambda: value_or_error(lambda: c.decode(bytes(payload), n)))
    if isinstance(slow, ValueError):
        assert isinstance(fast, ValueError), f"kernel accepted what the torch path rejects: {slow}"
    else:
        assert not isinstance(fast, ValueError), f"kernel rejected a valid payload: {fast}"
        assert torch.equal(fast, slow)


def set_field(payload: bytearray, at: int, i: int, k: int, value: int) -> None:
    """Overwrite field i (k bits, MSB first) of the fields starting at byte `at`."""
    for j in range(k):
        bit = 8 * at + i * k + j
        mask = 0x80 >> (bit % 8)
        payload[bit // 8] = (payload[bit // 8] & ~mask) | (mask if value >> (k - 1 - j) & 1
                                                             else 0)


@pytest.mark.parametrize("team", [True, False])
def test_fixed_chunks_on_numba_threads_or_the_pool(monkeypatch, team):
    """`fixed` in chunks of 4096 coordinates on numba's threads (one launch of
    `quantize_pack_chunks` / `unpack_chunks`) or on the pool: the torch path's bytes and
    values; a zero-scale bucket's level in one chunk and an invalid field in a later one
    give the invalid field's error, as the torch path checks it first; alone, each its own."""
    monkeypatch.setattr(quantized, "CHUNK_COORDS", 4096)
    monkeypatch.setattr(wire, "DECODE_CHUNK", 4096)
    monkeypatch.setattr(threads, "TEAM", team)
    launches = []
    for module, name in ((round_kernels, "quantize_pack_chunks"), (grid_kernels, "unpack_chunks")):
        kernel = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, k=kernel, name=name: (
            launches.append(name), k(*a))[1])
    c = compression.get("qsgd", levels=2, bucket_size=4)  # 3-bit fields: not byte-aligned
    n = 20_001
    x = awkward_gradient(n, 5)
    x[100:104] = 0.0  # bucket 25: zero scale
    fast, slow = on_both(lambda: c.encode(x, torch.Generator().manual_seed(6)))
    assert fast == slow
    y1, y2 = on_both(lambda: c.decode(fast, n))
    assert torch.equal(y1, y2)
    teamed = threads.team_ready(2)
    assert launches == (["quantize_pack_chunks", "unpack_chunks"] if teamed else [])
    at = wire.header_nbytes(n) + 4 * -(-n // 4)
    for edits, message in [([(101, 0b001)], "zero scale"), ([(15_000, 0b011)], "outside"),
                           ([(101, 0b001), (15_000, 0b011)], "outside")]:
        bad = bytearray(fast)
        for i, value in edits:
            set_field(bad, at, i, 3, value)
        for got in on_both(lambda: value_or_error(lambda: c.decode(bytes(bad), n))):
            assert isinstance(got, ValueError) and message in str(got)


def test_zero_bucket_with_levels_and_invalid_field_are_rejected():
    c = compression.get("qsgd", levels=2, bucket_size=4)  # 3-bit fields, grid of 3 points
    payload = bytearray(c.encode(torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])))
    body = 2 + 8  # header + two scales
    payload[body] = 0b0010_0000  # coordinate 0 (zero-scale bucket) at level 1
    with pytest.raises(ValueError, match="zero scale"):
        c.decode(bytes(payload), 8)
    payload[body] = 0b0110_0000  # level index 3: outside the grid
    with pytest.raises(ValueError, match="outside the grid"):
        c.decode(bytes(payload), 8)
    payload[body] = 0b1000_0000  # a sign on level 0
    with pytest.raises(ValueError, match="outside the grid"):
        c.decode(bytes(payload), 8)


@pytest.mark.parametrize("levels", [1, 7, 127])  # 2, 4 and 8-bit fields: whole fields per byte
def test_zero_bucket_with_levels_and_signed_zero_are_rejected_for_byte_aligned_fields(levels):
    c = compression.get("qsgd", levels=levels, bucket_size=4)
    k = c.fixed_bits
    payload = bytearray(c.encode(torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])))
    body = 2 + 8
    payload[body] = 1 << (8 - k)  # coordinate 0 (zero-scale bucket) at level 1
    with pytest.raises(ValueError, match="zero scale"):
        c.decode(bytes(payload), 8)
    payload[body] = 0x80  # a sign on level 0
    with pytest.raises(ValueError, match="outside the grid"):
        c.decode(bytes(payload), 8)


@pytest.mark.parametrize("method", ["qsgd", "qsgdinf"])
def test_subnormal_scale_rounds_r_equal_one_to_the_top_level(method):
    """1/scale overflows float32 for a subnormal scale: r = 1 must still give level s (the
    torch path once multiplied by inf and returned level 0)."""
    c = compression.get(method, levels=3, bucket_size=1)
    x = torch.tensor([1e-41, -1e-41, 3e-39])
    (_, i1, n1), (_, i2, n2) = on_both(lambda: c.quantize(x, torch.Generator()))
    for idx, neg in ((i1, n1), (i2, n2)):
        assert idx.flatten().tolist() == [3, 3, 3]
        assert neg.flatten().tolist() == [False, True, False]


@pytest.mark.parametrize("s", [1, 2, 6, 60, 120, 125, 126, 300])
def test_exponential_keys_are_the_general_loops(s):
    """`_round_exponential_keys` (P(up) and the sign by arithmetic, s <= _EXACT_S) gives the
    keys 2·level + sign that the general loop's level and sign make (which the tests above
    hold to the torch path): zeros of both signs, subnormal and tiny ratios, exact powers of
    two at and around every bracket, r = 1, and scales above the bucket's max."""
    import numpy as np
    from simnet.compression import round_kernels as rk

    @jit.numba.njit  # not cached: it inlines round_kernels' loops
    def both(x, u, scale, s, keys, idx, neg):
        rk._round_exponential(x, u, scale, s, np.float32(2.0**s), keys, None)
        rk._round_exponential(x, u, scale, s, np.float32(2.0**s), idx, neg)

    rng = np.random.default_rng(s)
    n = 20_000
    x = (rng.standard_normal(n) * 10.0 ** rng.integers(-45, 1, n)).astype(np.float32)
    x[::17] = 0.0
    x[::19] = -0.0
    powers = np.float32(2.0) ** rng.integers(-150, 1, n // 4).astype(np.float32)
    x[::4] = powers * rng.choice([-1, 1], powers.size)  # bracket ends (and 2^-150 = 0)
    x[5] = 1.0
    u = rng.random(n).astype(np.float32)
    u[::3] = 0.0  # P(up) = 0 must never round up
    for scale in (np.float32(1.0), np.float32(1.75), np.float32(1e-40)):
        keys, idx = np.empty(n, np.int32), np.empty(n, np.int32)
        neg = np.empty(n, np.bool_)
        xs = x if scale >= 1 else x * np.float32(1e-40)  # a subnormal bucket
        both(xs, u, scale, s, keys, idx, neg)
        assert np.array_equal(keys, 2 * idx + neg)
        assert (idx > 0).any() and neg.any() and (idx == 0).any()

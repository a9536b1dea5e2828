"""The `elias` encoder's vector step (`elias_vectors.list64` and `code_listed64`, used by
`elias_fused`) against the scalar coder: the same words and section lengths from every key
array, sparse or dense, and the ranges it must decline (long triples, gaps or levels >=
2^16, long groups) coded again without it; and its arithmetic ω against
`coding.omega_encode`."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from simnet import compression
from simnet.compression import elias, elias_fused, elias_vectors, jit, level_keys
from simnet.compression.coding import omega_encode
from kernel_paths import payload_without_vector_steps  # same folder: pytest puts
from test_coding import omega_str  # these on sys.path

needs_vector_step = pytest.mark.skipif(
    jit.numba is None or not elias_vectors.FAST,
    reason="host lacks AVX-512 F/BW/CD/VBMI2: the vector step never runs")


def test_arithmetic_omega_is_the_omega_code():
    """ω(v) = ω(b - 1) without its final 0, v's b bits, a 0 (b = bit length of v >= 2), as
    the vector step computes it from `prefix_table`, for every 1 <= v < 2^16."""
    v = np.arange(1, 1 << 16, dtype=np.int64)
    bits = np.floor(np.log2(v)).astype(np.int64) + 1
    entry = np.array(elias_vectors.prefix_table(), np.int64)[bits - 1]
    length = (entry & 255) + bits
    code = np.where(v > 1, ((entry >> 8) << bits | v) << 1, 0)
    want_code, want_length = omega_encode(v)
    np.testing.assert_array_equal(length, want_length)
    np.testing.assert_array_equal(code, want_code.astype(np.int64))


def code_both(keys: np.ndarray, d: int, points: int):
    """[(words, section bits, total bits), the same without the vector step, whether the
    vector step declined]: `code_rows` over all buckets, as `elias` runs it (a declined
    range again without the vector step), then without it (the same kernel, one flag)."""
    nb = -(-keys.size // d)
    tables = elias._enc_tables(d, points)
    most = elias._longest_section(d, points)
    out = []
    declined = False
    for vector in (True, False):
        words = np.zeros(nb * most // 32 + 3 * elias_fused.BLOCK + 1, np.uint32)
        bits = np.empty(nb, np.int64)
        total = elias_fused.code_rows(keys, d, 0, nb, *tables, words, bits, vector)
        if total == elias_fused.DECLINED:
            declined = True
            total = elias._coded(elias_fused.code_rows, keys, d, 0, nb, *tables, words, bits)
        assert total >= 0
        out.append((words[:-(-total // 32)], bits, total))
    return out + [declined]


def random_keys(rng, n: int, points: int, density: float, top: int | None = None):
    """Keys 2·level + sign of n coordinates: nonzero with probability `density`, levels
    uniform in [1, top or points - 1]."""
    top = top or points - 1
    level = rng.integers(1, top + 1, n) * (rng.random(n) < density)
    keys = 2 * level + (rng.random(n) < 0.5) * (level > 0)
    return keys.astype(level_keys.dtype_for(points))


@needs_vector_step
@pytest.mark.parametrize("points", [2, 8, 16, 17, 128, 4096, 40_000])
@pytest.mark.parametrize("d", [1, 7, 63, 64, 65, 100, 512, 1000])
@pytest.mark.parametrize("density", [0.02, 0.3, 0.6, 0.9, 1.0])
def test_vector_step_codes_as_the_scalar_coder(points, d, density):
    """Sparse and dense blocks, pieces of any length (d not a multiple of 16 or 64), short
    last buckets, uint8/16/32 keys, grids of up to 16 points (`code_listed64_keyed`) and
    more: the same words and section lengths. Up to 128 points
    nothing is declined; with 40,000 points and sparse keys, triples longer than 32 bits
    are common: declined ranges, coded again without the vector step."""
    rng = np.random.default_rng(points + d)
    for n in (d * 3 + 5, 5000):
        keys = random_keys(rng, n, points, density)
        (wv, bv, tv), (ws, bs, ts), declined = code_both(keys, d, points)
        assert tv == ts
        np.testing.assert_array_equal(bv, bs)
        np.testing.assert_array_equal(wv, ws)
        if points <= 128:
            assert not declined
        if points == 40_000 and density <= 0.3 and d >= 64 and n == 5000:
            assert declined  # gaps >= 16 and levels >= 2^15: triples of 35 bits and more


def test_key_fields_are_the_sign_then_omega_of_the_level():
    """`key_fields()` (the keyed vector step's table), against the omega table of DESIGN §3:
    key 2·level + sign holds the sign bit then ω(level), its length in the low 8 bits; the
    keys of level 0 have no field. It holds every key of a grid of KEYS / 2 points."""
    table = elias_vectors.key_fields()
    assert table.dtype == np.uint32 and table.size == elias_vectors.KEYS == 32
    assert table[0] == table[1] == 0
    for key in range(2, 32):
        level, sign = key >> 1, key & 1
        want = str(sign) + omega_str(level)
        length = int(table[key]) & 255
        assert length == len(want) <= 8
        assert format(int(table[key]) >> 8, f"0{length}b") == want


@functools.cache
def vector_step():
    """run(keys, valid, first, positions, listed, words, last) -> (count, result):
    list64 over keys[:valid] (positions from `first`), then code_listed64 of what it listed
    after `last` into words; compiled once."""
    import numba

    @numba.njit
    def run(keys, valid, first, positions, listed, words, last):
        count = elias_vectors.list64(keys, 0, valid, first, positions.ctypes.data,
                                     listed.ctypes.data)
        return count, elias_vectors.code_listed64(positions.ctypes.data, listed.ctypes.data,
                                                  count, last, words.ctypes.data, 0, 0)
    return run


def call_vector_step(keys: np.ndarray, last: int = -1):
    """list64 then code_listed64 over 64 keys, called directly: (count, result, words,
    listed positions, listed keys)."""
    positions, listed = np.full(80, -7, np.int32), np.full(80, -7, np.int32)
    words = np.zeros(64, np.uint32)
    count, r = vector_step()(keys, keys.size, 0, positions, listed, words, last)
    return count, r, words, positions, listed


@needs_vector_step
@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("valid", [1, 15, 16, 17, 40, 64])
def test_list64_lists_the_nonzeros_in_order(density, valid):
    """list64 over keys[:valid]: the positions and keys of the nonzeros, in order; nothing
    of keys[valid:] (nonzero there) is listed, and nothing past count + 16 is written."""
    rng = np.random.default_rng(valid)
    keys = random_keys(rng, 64, 8, density)
    keys[valid:] = 3
    positions, listed = np.full(100, -7, np.int32), np.full(100, -7, np.int32)
    count, _ = vector_step()(keys, valid, 5, positions, listed, np.zeros(64, np.uint32), -1)
    (nonzero,) = np.nonzero(keys[:valid])
    assert count == nonzero.size
    np.testing.assert_array_equal(positions[:count], 5 + nonzero)
    np.testing.assert_array_equal(listed[:count], keys[nonzero])
    assert (positions[count + 16:] == -7).all() and (listed[count + 16:] == -7).all()


@needs_vector_step
def test_vector_step_codes_short_triples_and_declines_long_ones():
    """Called directly: 64 dense keys of small levels are coded (not declined), their words
    as the scalar coder's; a level of 2^16, or a triple of 37 bits (gap 64, level 2^15:
    13 + 1 + 23 bits), makes it decline the call, with no word counted as stored."""
    keys = random_keys(np.random.default_rng(0), 64, 8, 1.0)
    count, r, words, _, _ = call_vector_step(keys)
    assert count == 64 and not r & elias_vectors.RARE
    stored, nacc = r & 255, (r >> 8) & 31
    (ws, _, total), _, _ = code_both(keys, 64, 8)
    assert 32 * stored + nacc == total
    np.testing.assert_array_equal(words[:stored], ws[:stored])
    wide = keys.astype(np.uint32)
    wide[5] = 2 * (1 << 16)
    r = call_vector_step(wide)[1]
    assert r & elias_vectors.RARE and r & 255 == 0
    long = np.zeros(64, np.uint32)
    long[63] = 2 * (1 << 15)
    assert call_vector_step(long)[1] & elias_vectors.RARE
    long[63] = 2 * (1 << 14)  # 13 + 1 + 22 = 36 bits: still declined
    assert call_vector_step(long)[1] & elias_vectors.RARE
    long[63] = 2 * 1000  # 13 + 1 + 17 = 31 bits: coded
    assert not call_vector_step(long)[1] & elias_vectors.RARE
    # the first gap from a `last` 2^16 places back is too long for it
    assert call_vector_step(keys[:1].copy(), last=-(1 << 16))[1] & elias_vectors.RARE
    assert not call_vector_step(keys[:1].copy(), last=-(1 << 16) + 2)[1] & elias_vectors.RARE


@needs_vector_step
def test_vector_step_declines_gaps_beyond_its_table():
    """A bucket of 100,000 coordinates whose first 70,000 are zero, then dense: the first
    gap (70,001) is >= 2^16, so that range is coded again without the vector step; so is a
    level >= 2^16 (a grid of 70,000 points)."""
    d = 100_000
    keys = np.zeros(2 * d, np.uint32)
    rng = np.random.default_rng(1)
    keys[70_000:d] = random_keys(rng, d - 70_000, 8, 0.95)
    keys[d:] = random_keys(rng, d, 8, 0.95)
    for points, k in ((8, keys), (70_000, np.where(keys > 0, keys + 2 * 66_000, 0))):
        (wv, bv, tv), (ws, bs, ts), declined = code_both(k.astype(np.uint32), d, points)
        assert declined
        assert tv == ts
        np.testing.assert_array_equal(bv, bs)
        np.testing.assert_array_equal(wv, ws)


@needs_vector_step
@pytest.mark.parametrize("method", ["qsgd", "qsgdinf", "nuqsgd"])
@pytest.mark.parametrize("bits,d", [(3, 512), (4, 512), (4, 37), (7, 1000)])
def test_fused_encoder_gives_the_same_payload_with_the_vector_step(monkeypatch, method, bits,
                                                                   d):
    """`Compressor.encode` (rounding fused with coding), on threads: the same payload with
    the vector step on and off; a gradient with sparse and dense stretches."""
    x = torch.randn(300_001, generator=torch.Generator().manual_seed(bits))
    x[50_000:120_000] *= (torch.rand(70_000) < 0.05)  # a sparse stretch amid dense ones
    c = compression.get(method, bits=bits, bucket_size=d, encoding="elias")
    payloads = []
    for vector in (True, False):
        monkeypatch.setattr(elias, "VECTOR_LANES", vector)
        payloads.append(c.encode(x, torch.Generator().manual_seed(7)))
    assert payloads[0] == payloads[1]


def test_encoders_compile_and_agree_without_the_vector_step(tmp_path):
    """SIMNET_VECTOR=0 (as on a host without AVX-512): the kernels compile afresh (a cache
    of their own) with `code_listed64` declining every call, and give the same payload."""
    got = payload_without_vector_steps(tmp_path, "qsgdinf", "elias", 100_003)
    x = torch.randn(100_003, generator=torch.Generator().manual_seed(3))
    c = compression.get("qsgdinf", bits=4, bucket_size=512, encoding="elias")
    assert got == c.encode(x, torch.Generator().manual_seed(7))

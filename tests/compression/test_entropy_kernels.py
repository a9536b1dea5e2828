"""The compiled `entropy` kernels against the vectorised numpy path, their oracle.

The kernel encoder must write exactly the vectorised encoder's bytes (and make the same
`max_bytes` None decisions); the kernel decoder must return the same values and reject exactly
the payloads the vectorised decoder rejects, with the same message. Each comparison runs both
paths by flipping `jit.ENABLED` (numba must be installed; SIMNET_JIT=0 does not matter here).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from simnet import compression
from simnet.compression import (entropy, entropy_kernels, jit, lane_vectors, level_keys,
                                 scale_coding, threads, wire)

from kernel_paths import (on_both, on_path, payload_without_vector_steps,  # same folder:
                          value_or_error)  # pytest puts it on sys.path

pytest.importorskip("numba")

METHODS = ["qsgd", "qsgdinf", "nuqsgd"]
SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def quantized(method: str, n: int, seed: int, levels: int = 7, d: int = 64, zero_frac=0.0):
    c = compression.get(method, levels=levels, bucket_size=d, encoding="entropy")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g)
    if zero_frac:
        x = x * (torch.rand(n, generator=g) >= zero_frac)
    scales, idx, neg = c.quantize(x, g)
    return c, wire.Quantized(scales, idx, neg, n)


def encode_both(c, q, max_bytes=None):
    return on_both(lambda: entropy.encode(q, c.grid, c.bucket_size, max_bytes))


def decode_both(c, payload: bytes, n: int):
    """(outcome of the kernel path, outcome of the vectorised path): each either
    ("ok", scales, coeff) or ("error", message)."""
    def run(enabled):
        try:
            scales, coeff = on_path(enabled, lambda: entropy.decode(payload, n, c.bucket_size,
                                                                    c.grid))
        except ValueError as e:
            return ("error", str(e))
        assert coeff.dtype == torch.float32 and coeff.shape == (n,)
        return ("ok", scales, coeff)
    return run(True), run(False)


def assert_same_decode(fast, slow):
    assert fast[0] == slow[0], (fast, slow)
    if fast[0] == "error":
        assert fast[1] == slow[1]
    else:
        np.testing.assert_array_equal(fast[1], slow[1])
        for got, want in zip(fast[2:], slow[2:]):  # values (and scaled values), bit for bit
            assert torch.equal(got, want)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n", [1, 7, 2047, 2048, 2049, 4097, 100_000, 100_003])
def test_same_bytes_and_values(method, n):
    c, q = quantized(method, n, seed=n, d=64 if n % 64 else 60)  # n not a multiple of d
    fast, slow = encode_both(c, q)
    assert fast == slow
    assert fast[0] == wire.TAGS["entropy"]
    assert_same_decode(*decode_both(c, fast, n))
    # and the decoded levels are the quantized ones
    _, _, coeff = decode_both(c, fast, n)[0]
    lv = c.grid.tensor()[q.idx.reshape(-1)[:n].long()]
    assert torch.equal(coeff, torch.where(q.neg.reshape(-1)[:n], -lv, lv))


@pytest.mark.parametrize("method,levels", [("qsgd", 1000), ("qsgdinf", 2047), ("nuqsgd", 120),
                                           ("qsgd", 1), ("nuqsgd", 1)])
def test_grid_sizes(method, levels):
    """Grids of 2..2048 points: uint8 and int32 indices, alphabets up to 4095 symbols."""
    c, q = quantized(method, 30_001, seed=levels, levels=levels, d=128)
    assert q.idx.dtype == (torch.uint8 if c.grid.size <= 256 else torch.int32)
    fast, slow = encode_both(c, q)
    assert fast == slow
    assert_same_decode(*decode_both(c, fast, 30_001))


@pytest.mark.parametrize("n", [1, 5000])
def test_single_symbol(n):
    """A zero vector: one symbol of frequency M, states that never move, no words at all."""
    c, q = quantized("qsgd", n, seed=0, zero_frac=1.0)
    assert not q.idx.any()
    fast, slow = encode_both(c, q)
    assert fast == slow
    k = entropy.lanes_for(n)
    assert len(fast) == (wire.header_nbytes(n) + len(scale_coding.encode(q.scales.numpy()))
                         + 2 * (2 * c.grid.size - 1) + 4 * k)
    assert_same_decode(*decode_both(c, fast, n))


def test_numel_zero():
    c, q = quantized("qsgd", 0, seed=0)
    fast, slow = encode_both(c, q)
    assert fast == slow


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n", [1, 3000, 50_000])
def test_max_bytes_decisions(method, n):
    c, q = quantized(method, n, seed=3, zero_frac=0.5)
    full = encode_both(c, q)[0]
    size = len(full)
    k = entropy.lanes_for(n)
    fixed_part = (wire.header_nbytes(n) + len(scale_coding.encode(q.scales.numpy()))
                  + 2 * (2 * c.grid.size - 1) + 4 * k)
    budgets = {size + 1, size, size - 1, size - 2, (size + fixed_part) // 2, fixed_part,
               fixed_part - 1, 0, -3}
    for mb in sorted(budgets):
        fast, slow = encode_both(c, q, mb)
        assert fast == slow, mb
        assert (fast is None) == (mb < size), mb
        if fast is not None:
            assert fast == full


def test_chunks_depend_on_n_alone():
    assert entropy.chunks_for(0) == [(0, 0)]
    assert entropy.chunks_for(2**18 - 1) == [(0, 2**18 - 1)]
    assert entropy.chunks_for(2**18) == [(0, 2**17), (2**17, 2**18)]
    assert len(entropy.chunks_for(7 * 2**17)) == 4  # a power of two: even work on 2 or 4
    for n in (10**6, 25_600_000, 10**9):
        chunks = entropy.chunks_for(n)
        assert len(chunks) in (4, 8) and chunks[0][0] == 0 and chunks[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
        assert max(hi - lo for lo, hi in chunks) - min(hi - lo for lo, hi in chunks) <= 1


def test_pair_mode_depends_on_n_d_and_the_grid():
    assert entropy.pairs_for(2**19, 512, 8) and entropy.pairs_for(2**19 + 1, 2, 2)
    assert not entropy.pairs_for(2**19 - 1, 512, 8)  # the table's 450 bytes: large n only
    assert not entropy.pairs_for(2**19, 511, 8)  # a pair must not straddle two buckets
    assert not entropy.pairs_for(2**19, 512, 9)  # (2·9 - 1)² symbols: too many 1-count floors
    assert entropy.alphabet(8, True) == 15**2 and entropy.alphabet(8, False) == 15
    n = 10**6 + 1  # pair chunks: the chunk count of n, over ceil(n / 2) pairs
    pairs = entropy.chunks_for(n, pairs=True)
    assert len(pairs) == len(entropy.chunks_for(n)) and pairs[-1][1] == (n + 1) // 2
    assert entropy.lanes_for(4096, True) == 1 and entropy.lanes_for(4097, True) == 2
    assert entropy.model_nbytes(n, 8, 512) == 2 * 225 + 4 * 3 + 4 * sum(
        entropy.lanes_for(hi - lo, True) for lo, hi in pairs)


def test_pair_codes_map_to_pair_symbols():
    """`code_symbols`: a pair's code key0 << shift | key1 -> a·sym(key0) + sym(key1)."""
    points = 5  # keys 0..9 (key 1, a negative zero, never occurs), 4 bits each
    table = entropy.code_symbols(points, pairs=True)
    assert table.size == 256
    sym = lambda key: key - (key >= 2)  # noqa: E731
    for k0 in range(10):
        for k1 in range(10):
            assert table[k0 << 4 | k1] == 9 * sym(k0) + sym(k1)


def chunked(monkeypatch, workers: int = 2, pairs: bool = False, team: bool = True):
    """Small chunks (>= 1000 coordinates each) and the threaded paths at a small n: on
    `workers` threads, numba's (`team`, where it runs) or this one and the entropy pool;
    with `pairs`, pair mode from 1000 coordinates. The layout cache (`entropy._layout`,
    keyed by n) is swapped for a fresh one while patched: a layout cached under the small
    chunks would otherwise outlive the patch and reach a later test of the same n."""
    monkeypatch.setattr(entropy, "_layout",
                        functools.lru_cache(maxsize=64)(entropy._layout.__wrapped__))
    monkeypatch.setattr(entropy, "CHUNK_MIN", 1000)
    monkeypatch.setattr(entropy, "_PAR_MIN", 1000)
    monkeypatch.setattr(entropy, "_THREADS", workers)
    monkeypatch.setattr(threads, "TEAM", team)
    if pairs:
        monkeypatch.setattr(entropy, "PAIR_MIN", 1000)


@pytest.mark.parametrize("team", [True, False])
@pytest.mark.parametrize("pairs", [False, True])
@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("method,n,d", [("qsgd", 8000, 64), ("nuqsgd", 20_011, 7),
                                        ("qsgdinf", 70_001, 512), ("qsgd", 3999, 1),
                                        ("qsgd", 20_011, 2), ("qsgdinf", 9_999, 64)])
def test_chunked_payloads(monkeypatch, team, pairs, workers, method, n, d):
    """Several chunks, each with its own lanes and words, on 1-3 threads (numba's or the
    pool's), a symbol a coordinate or (pairs, d even) a pair, odd n's lone last coordinate
    included: both paths give the same bytes, of the layout's length, and decode to what
    `fixed` decodes to."""
    chunked(monkeypatch, workers, pairs, team)
    c, q = quantized(method, n, seed=n, d=d, zero_frac=0.3)
    assert entropy.pairs_for(n, d, c.grid.size) == (pairs and d % 2 == 0)
    fast, slow = encode_both(c, q)
    assert fast == slow and len(entropy.chunks_for(n)) > 1
    words = (len(fast) - wire.header_nbytes(n) - len(scale_coding.encode(q.scales.numpy()))
             - entropy.model_nbytes(n, c.grid.size, d))
    assert words >= 0 and words % 2 == 0
    assert_same_decode(*decode_both(c, fast, n))
    want = torch.where(q.neg, -c.grid.tensor()[q.idx.long()], c.grid.tensor()[q.idx.long()])
    want = (want * q.scales.unsqueeze(-1)).reshape(-1)[:n]
    for got in on_both(lambda: c.decode(fast, n)):
        assert torch.equal(got, want)


@functools.lru_cache(maxsize=None)
def chunked_payload(method: str, n: int, levels: int, pairs: bool):
    """(compressor, payload) under `chunked` (the caller's patch): made once per case."""
    c, q = quantized(method, n, seed=n, levels=levels, zero_frac=0.5)
    return c, entropy.encode(q, c.grid, c.bucket_size)


@settings(max_examples=200, **SETTINGS)
@given(st.data())
def test_corrupted_chunked_payloads_agree(data):
    """Flipped bits anywhere in a several-chunk payload (word counts and states included),
    a symbol a coordinate or a pair: both paths reach the same value or the same ValueError."""
    with pytest.MonkeyPatch.context() as mp:
        pairs = data.draw(st.booleans())
        chunked(mp, pairs=pairs, team=data.draw(st.booleans()))
        n = data.draw(st.sampled_from([2000, 4001]))
        c, payload = chunked_payload(data.draw(st.sampled_from(METHODS)), n,
                                     data.draw(st.sampled_from([1, 7])), pairs)
        payload = bytearray(payload)
        for _ in range(data.draw(st.integers(1, 3))):
            payload[data.draw(st.integers(0, len(payload) - 1))] ^= 1 << data.draw(
                st.integers(0, 7))
        assert_same_decode(*decode_both(c, bytes(payload), n))
        outcomes = [value_or_error(lambda: on_path(p, lambda: c.decode(bytes(payload), n)))
                    for p in (True, False)]
        assert str(outcomes[0]) == str(outcomes[1])


@pytest.mark.parametrize("n", [300, 9000])
def test_a_level_in_a_zero_scale_bucket_is_an_error(monkeypatch, n):
    """The kernels scale as they decode; a zero scale would hide a nonzero level, so such
    a payload must still fail, with `wire.scale_coefficients`' message, on both paths."""
    chunked(monkeypatch)
    c, q = quantized("qsgd", n, seed=1)
    q.scales[1] = 0.0
    payload = entropy.encode(q, c.grid, c.bucket_size)
    for path in (True, False):
        with pytest.raises(ValueError, match="zero scale has nonzero levels"):
            on_path(path, lambda: c.decode(payload, n))


@pytest.mark.parametrize("team", [True, False])
@pytest.mark.parametrize("workers", [1, 3])
def test_a_lone_coordinates_partner_must_be_zero(monkeypatch, team, workers):
    """Odd n in pair mode: the last coordinate pairs with a level 0. The payload of n + 1
    coordinates whose last is nonzero, read as one of n (the same pairs, chunks and lanes),
    must fail on both paths with the same message, not drop the level silently."""
    chunked(monkeypatch, workers, pairs=True, team=team)
    n = 4001
    c, q = quantized("qsgd", n + 1, seed=5)
    q.idx.view(-1)[n] = 3  # the coordinate past n: a nonzero partner
    payload = entropy.encode(q, c.grid, c.bucket_size)
    assert wire.header_nbytes(n) == wire.header_nbytes(n + 1)
    forged = wire.header("entropy", n) + payload[wire.header_nbytes(n + 1):]
    fast, slow = decode_both(c, forged, n)
    assert fast == slow == ("error", entropy._LONE_PARTNER)
    q.idx.view(-1)[n] = 0  # with a zero partner the same forgery is the payload of n
    payload = entropy.encode(q, c.grid, c.bucket_size)
    forged = wire.header("entropy", n) + payload[wire.header_nbytes(n + 1):]
    fast, slow = decode_both(c, forged, n)
    assert_same_decode(fast, slow)
    lv = c.grid.tensor()[q.idx.reshape(-1)[:n].long()]
    assert torch.equal(fast[2], torch.where(q.neg.reshape(-1)[:n], -lv, lv))


@pytest.mark.parametrize("team", [True, False])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_threaded_paths(monkeypatch, team, workers):
    """Chunks encoded and decoded on threads (numba's or the pool's): forced at a small n,
    the same bytes and values, and the same max_bytes decisions."""
    chunked(monkeypatch, workers, team=team)
    for method, n in [("qsgdinf", 1000), ("nuqsgd", 20_011), ("qsgd", 70_000)]:
        c, q = quantized(method, n, seed=n)
        fast, slow = encode_both(c, q)
        assert fast == slow
        assert_same_decode(*decode_both(c, fast, n))
        for mb in (len(fast), len(fast) - 1, len(fast) * 3 // 4):
            assert encode_both(c, q, mb)[0] == encode_both(c, q, mb)[1]
        # a truncated stream must fail in whichever phase it runs out
        assert_same_decode(*decode_both(c, fast[:-2], n))
        assert decode_both(c, fast[:-2], n)[0][0] == "error"


@pytest.mark.parametrize("team", [True, False])
@pytest.mark.parametrize("method,levels", [("qsgd", 200), ("qsgdinf", 1500)])
def test_chunked_wide_keys(monkeypatch, team, method, levels):
    """Grids of > 128 points (uint16 keys, a symbol a coordinate) in several chunks on two
    threads, numba's or the pool's: the vectorised path's bytes, values and max_bytes
    decisions."""
    chunked(monkeypatch, 2, team=team)
    c, q = quantized(method, 9001, seed=levels, levels=levels)
    fast, slow = encode_both(c, q)
    assert fast == slow and len(entropy.chunks_for(9001)) > 1
    assert_same_decode(*decode_both(c, fast, 9001))
    for mb in (len(fast), len(fast) - 1):
        assert encode_both(c, q, mb)[0] == encode_both(c, q, mb)[1]


@pytest.mark.parametrize("pairs", [False, True])
def test_chunks_take_numba_threads_where_they_run(monkeypatch, pairs):
    """With the team on (and numba's threading layer running here), every chunk of an
    encode and of a decode goes through one launch of `encode_chunks` / `decode_chunks`;
    with it off, none does, and the bytes and values are the same."""
    chunked(monkeypatch, 2, pairs=pairs, team=True)
    if not threads.team_ready(2):
        pytest.skip("numba has no thread-safe threading layer here")
    launches = []
    for name in ("encode_chunks", "decode_chunks"):
        kernel = getattr(entropy_kernels, name)
        monkeypatch.setattr(entropy_kernels, name, lambda *a, k=kernel, name=name: (
            launches.append(name), k(*a))[1])
    c, q = quantized("nuqsgd", 20_011, seed=3, d=64)
    payload = entropy.encode(q, c.grid, 64)
    values = c.decode(payload, q.numel)
    assert launches == ["encode_chunks", "decode_chunks"]
    monkeypatch.setattr(threads, "TEAM", False)
    assert entropy.encode(q, c.grid, 64) == payload
    assert torch.equal(c.decode(payload, q.numel), values)
    assert launches == ["encode_chunks", "decode_chunks"]


def test_division_by_reciprocal_is_exact():
    """The encoder's x // f = trunc(x · fl(1/f) + 2^-20) for x < min(f·2^17, 2^32), checked at
    both ends of every quotient's run (m·f and m·f + f - 1) for all f and sampled m; the module
    docstring's claim (the complete check takes ~15 s compiled)."""
    f = np.arange(1, (1 << 15) + 1, dtype=np.int64)[:, None]
    m_top = np.minimum(f << 17, 1 << 32) // f  # quotients m with m·f < the bound
    frac = np.linspace(0.0, 1.0, 129)[None, :]
    m = np.unique(np.concatenate([np.arange(0, 64), (1 << 17) - np.arange(1, 64)]))[None, :]
    m = np.concatenate([np.minimum(m, m_top - 1), ((m_top - 1) * frac).astype(np.int64)], 1)
    inv = 1.0 / f
    for x in (m * f, m * f + f - 1):
        x = np.minimum(x, (f << 17) - 1)
        got = (x * inv + entropy_kernels.ROUND_UP).astype(np.int64)
        np.testing.assert_array_equal(got, x // f)


def test_kernel_rejects_indices_outside_the_grid():
    c, q = quantized("qsgd", 100, seed=1, levels=3)
    bad = wire.Quantized(q.scales, q.idx.clone(), q.neg, 100)
    bad.idx.view(-1)[57] = 9
    with pytest.raises(ValueError, match="coordinate 57"):
        on_path(True, lambda: entropy.encode(bad, c.grid, c.bucket_size))


def test_switch(monkeypatch):
    """`jit.enabled()` is read at call time: with it off the kernels are not called."""
    c, q = quantized("qsgd", 500, seed=2)
    payload = entropy.encode(q, c.grid, c.bucket_size)
    calls = []
    for module, name in ((level_keys, "histogram"), (entropy_kernels, "encode_chunk"),
                         (entropy_kernels, "decode_chunk")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name,
                            lambda *a, _r=real, _n=name: calls.append(_n) or _r(*a))
    monkeypatch.setattr(jit, "ENABLED", False)
    assert entropy.encode(q, c.grid, c.bucket_size) == payload
    entropy.decode(payload, 500, c.bucket_size, c.grid)
    assert calls == []
    monkeypatch.setattr(jit, "ENABLED", True)
    assert entropy.encode(q, c.grid, c.bucket_size) == payload
    entropy.decode(payload, 500, c.bucket_size, c.grid)
    assert calls == ["histogram", "encode_chunk", "decode_chunk"]


@st.composite
def corrupted(draw):
    method = draw(st.sampled_from(METHODS))
    levels = draw(st.sampled_from([1, 2, 7, 40]))
    n = draw(st.one_of(st.integers(1, 300), st.integers(2040, 6200)))
    d = draw(st.integers(1, 70))
    c, q = quantized(method, n, seed=draw(st.integers(0, 2**16)), levels=levels, d=d,
                     zero_frac=draw(st.sampled_from([0.0, 0.5, 0.99])))
    payload = bytearray(on_path(False, lambda: entropy.encode(q, c.grid, d)))
    kind = draw(st.sampled_from(["flip", "overwrite", "truncate", "extend", "stream"]))
    if kind in ("flip", "overwrite", "stream"):
        lo = len(payload) - 8 if kind == "stream" else 0  # near the end: words, states
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(max(lo, 0), len(payload) - 1))
            if kind == "overwrite":
                payload[i] = draw(st.integers(0, 255))
            else:
                payload[i] ^= 1 << draw(st.integers(0, 7))
    elif kind == "truncate":
        payload = payload[: draw(st.integers(0, len(payload) - 1))]
    else:
        payload += draw(st.binary(min_size=1, max_size=9))
    return c, bytes(payload), n


@settings(max_examples=250, **SETTINGS)
@given(corrupted())
def test_corrupted_payloads_agree(case):
    c, payload, n = case
    fast, slow = decode_both(c, payload, n)
    assert_same_decode(fast, slow)
    if fast[0] == "ok":
        assert torch.isfinite(fast[2]).all()


@settings(max_examples=150, **SETTINGS)
@given(st.data(), st.integers(1, 5000), st.sampled_from([1, 3, 40]))
def test_random_streams_agree(data, n, levels):
    """A valid header, scales and frequency table (sums to M), random states and words."""
    c = compression.get("qsgd", levels=levels, bucket_size=1000, encoding="entropy")
    a, k = 2 * c.grid.size - 1, entropy.lanes_for(n)
    cuts = sorted(data.draw(st.lists(st.integers(0, entropy.M), min_size=a - 1,
                                     max_size=a - 1)))
    freq = np.diff(np.array([0] + cuts + [entropy.M]))
    states = data.draw(st.lists(st.one_of(st.integers(0, 2**17), st.integers(0, 2**32 - 1)),
                                  min_size=k, max_size=k))
    body = (scale_coding.encode(np.ones(-(-n // 1000), np.float32)) + freq.astype(">u2").tobytes()
            + np.array(states, ">u4").tobytes() + data.draw(st.binary(max_size=300)))
    assert_same_decode(*decode_both(c, wire.header("entropy", n) + body, n))


@pytest.mark.parametrize("team", [True, False])
@pytest.mark.parametrize("pairs", [False, True])
@pytest.mark.parametrize("delta", ["zero", -1, +1])
def test_forged_chunk_word_counts(monkeypatch, team, pairs, delta):
    """The first chunk's word count set to 0 (the kernel then reads a dummy word, clamped,
    on numba's threads or the pool's), one short or one long (its neighbour's first word moves
    across): both paths raise the same ValueError, the kernel reading nothing outside the
    stream."""
    chunked(monkeypatch, pairs=pairs, team=team)
    n = 6000
    c, payload = chunked_payload("qsgd", n, 7, pairs)
    a = entropy.alphabet(c.grid.size, entropy.pairs_for(n, c.bucket_size, c.grid.size))
    scales, _, _ = entropy._parse(payload, n, c.bucket_size, c.grid)
    at = wire.header_nbytes(n) + len(scale_coding.encode(scales)) + 2 * a
    count = int.from_bytes(payload[at:at + 4], "big")
    forged = 0 if delta == "zero" else count + delta
    payload = payload[:at] + forged.to_bytes(4, "big") + payload[at + 4:]
    fast, slow = decode_both(c, payload, n)
    assert fast[0] == slow[0] == "error" and fast == slow


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([(3, False), (8, False), (8, True), (2, True), (40, False)]),
       st.data())
def test_compiled_model_is_the_vectorised_table(grid, data):
    """`entropy_kernels.model` from code counts against `entropy._table` from symbol counts:
    the same frequencies (ties for the most frequent symbol go to the first), and by code
    its symbol's frequency and first slot."""
    points, pairs = grid
    code_sym = entropy.code_symbols(points, pairs)
    a = entropy.alphabet(points, pairs)
    shift = level_keys.code_space(points, pairs)[0]
    code = np.arange(code_sym.size)  # pairs: codes whose two keys are both real ones
    codes = code[((code >> shift) < 2 * points) & ((code & ((1 << shift) - 1)) < 2 * points)
                 ] if pairs else code
    picks = data.draw(st.lists(st.sampled_from([0, 0, 1, 2, 7, 1000, 10**6]),
                               min_size=codes.size, max_size=codes.size))
    code_counts = np.zeros(code_sym.size, np.int64)
    code_counts[codes] = picks
    if code_counts.sum() == 0:
        code_counts[codes[0]] = 5
    total = int(code_counts.sum())
    counts, freq = np.empty(a, np.int64), np.empty(a, np.int64)
    ftab, ctab = np.empty(code_sym.size, np.int64), np.empty(code_sym.size, np.int64)
    entropy_kernels.model(code_counts, code_sym, total, counts, freq, ftab, ctab)
    want_counts = np.bincount(code_sym, weights=code_counts, minlength=a).astype(np.int64)
    want = entropy._table(want_counts, total)
    assert np.array_equal(counts, want_counts) and np.array_equal(freq, want)
    assert freq.sum() == entropy.M
    assert np.array_equal(ftab, want[code_sym])
    assert np.array_equal(ctab, (np.cumsum(want) - want)[code_sym])


# -- the decoder's vector path (lane_vectors) against the scalar kernel --------------------

needs_vector_lanes = pytest.mark.skipif(
    not lane_vectors.FAST, reason="host lacks AVX-512 F/BW/VBMI2: the vector path never runs")


def decode_lanes_both(c, payload: bytes, n: int):
    """(outcome with the vector path, outcome with the scalar kernel), as `decode_both`'s,
    with `Compressor.decode`'s values (scaled as it decodes) after the levels."""
    def scalar_kernel_called(*args):
        raise AssertionError("the vector path fell back to the scalar kernel")

    def run(vector):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(entropy, "VECTOR_LANES", vector)
            if vector and entropy.pairs_for(n, c.bucket_size, c.grid.size):
                # (the vector path must be the one that runs)
                mp.setattr(entropy_kernels, "decode", scalar_kernel_called)
            try:
                scales, coeff = entropy.decode(payload, n, c.bucket_size, c.grid)
                return ("ok", scales, coeff, c.decode(payload, n))
            except ValueError as e:
                return ("error", str(e))
    return run(True), run(False)


def paired_cases(monkeypatch, workers: int, levels: int, n: int, d: int) -> list:
    """(compressor, quantized gradient) of each method whose grid codes pairs at this n and
    d, under `chunked` with pair mode forced; at least two methods must."""
    chunked(monkeypatch, workers, pairs=True)
    cases = [quantized(method, n, seed=n + levels, levels=levels, d=d, zero_frac=0.3)
             for method in METHODS]
    cases = [(c, q) for c, q in cases if entropy.pairs_for(n, d, c.grid.size)]  # (G <= 8)
    assert len(cases) >= 2
    return cases


def test_pair_symbol_split_is_exact():
    """The vector decoder splits a pair's symbol s = a·first + second as first =
    trunc((s + 0.5)·fl(1/a)) in float32: exact for every a = 2G - 1 of a pair grid (G <= 8)
    and every s < a²."""
    for a in range(1, 2 * entropy.PAIR_POINTS, 2):
        s = np.arange(a * a, dtype=np.uint32)
        got = ((s.astype(np.float32) + np.float32(0.5)) * (np.float32(1) / np.float32(a)))
        np.testing.assert_array_equal(got.astype(np.uint32), s // a)


@needs_vector_lanes
@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("levels", [1, 2, 3, 7])
@pytest.mark.parametrize("n,d", [(1000, 32), (1001, 34), (4097, 64), (20_011, 512),
                                 (70_001, 1000)])
def test_vector_lanes_decode_as_the_scalar_kernel(monkeypatch, workers, levels, n, d):
    """Pair mode at d >= 32, several chunks on threads, lanes that fill no whole group of
    16, short last steps, odd n: the same levels and scaled values as the scalar kernel."""
    for c, q in paired_cases(monkeypatch, workers, levels, n, d):
        payload = entropy.encode(q, c.grid, d)
        vector, scalar = decode_lanes_both(c, payload, n)
        assert vector[0] == "ok"
        assert_same_decode(vector, scalar)


@needs_vector_lanes
@settings(max_examples=200, **SETTINGS)
@given(st.data())
def test_vector_lanes_reject_what_the_scalar_kernel_rejects(data):
    """Flipped bits, truncation and extension of pair-mode payloads: the vector path reaches
    the same value or the same ValueError as the scalar kernel."""
    with pytest.MonkeyPatch.context() as mp:
        chunked(mp, pairs=True)
        n = data.draw(st.sampled_from([2000, 4001]))
        c, payload = chunked_payload(data.draw(st.sampled_from(METHODS)), n,
                                     data.draw(st.sampled_from([1, 7])), True)
        assume(entropy.pairs_for(n, c.bucket_size, c.grid.size))  # (nuqsgd's 7: 9 points)
        payload = bytearray(payload)
        kind = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
        if kind == "flip":
            for _ in range(data.draw(st.integers(1, 3))):
                payload[data.draw(st.integers(0, len(payload) - 1))] ^= 1 << data.draw(
                    st.integers(0, 7))
        elif kind == "truncate":
            payload = payload[:data.draw(st.integers(0, len(payload) - 1))]
        else:
            payload += data.draw(st.binary(min_size=1, max_size=9))
        assert_same_decode(*decode_lanes_both(c, bytes(payload), n))


# -- the encoder's vector path (lane_vectors) against the scalar kernel --------------------

def encode_lanes_both(c, q, max_bytes=None):
    """(payload with the vector path, payload with the scalar kernel); fails if the vector
    path silently falls back to the scalar kernel where it should run."""
    def scalar_kernel_called(*args):
        raise AssertionError("the vector path fell back to the scalar kernel")

    def run(vector):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(entropy, "VECTOR_LANES", vector)
            if vector:
                mp.setattr(entropy_kernels, "encode", scalar_kernel_called)
            return entropy.encode(q, c.grid, c.bucket_size, max_bytes)
    return run(True), run(False)


def test_float32_quotient_with_one_correction_is_exact():
    """The vector encoder's x // f: q = trunc(fl32(x)·fl32(1/f)) is off by at most one for
    every f <= 2^15 and x < f·2^17 (so one correction by the remainder x - q·f makes it
    exact), checked at both ends of every sampled quotient's run, for all f."""
    f = np.arange(1, (1 << 15) + 1, dtype=np.int64)[:, None]
    m_top = np.minimum(f << 17, 1 << 32) // f
    m = np.unique(np.concatenate([np.arange(0, 64), (1 << 17) - np.arange(1, 64)]))[None, :]
    m = np.concatenate([np.minimum(m, m_top - 1),
                        ((m_top - 1) * np.linspace(0.0, 1.0, 65)[None, :]).astype(np.int64)], 1)
    inv = np.float32(1) / f.astype(np.float32)
    for x in (m * f, m * f + f - 1):
        x = np.minimum(x, np.minimum(f << 17, 1 << 32) - 1)
        est = (x.astype(np.float32) * inv).astype(np.int64)
        err = est - x // f
        assert err.min() >= -1 and err.max() <= 1


@needs_vector_lanes
@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("levels", [1, 2, 3, 7])
@pytest.mark.parametrize("n,d", [(1000, 2), (1001, 34), (4097, 64), (20_011, 512),
                                 (70_001, 1000)])
def test_vector_lanes_encode_as_the_scalar_kernel(monkeypatch, workers, levels, n, d):
    """Pair mode, several chunks on threads, lanes that fill no whole group of 16 (and
    groups that straddle no step), short last steps, odd n's lone coordinate: the same
    bytes as the scalar kernel, which decode to the quantized levels; and the same None
    decisions under a max_bytes just below, at and above the payload's size."""
    for c, q in paired_cases(monkeypatch, workers, levels, n, d):
        vector, scalar = encode_lanes_both(c, q)
        assert vector == scalar
        _, coeff = entropy.decode(vector, n, d, c.grid)
        lv = c.grid.tensor()[q.idx.reshape(-1)[:n].long()]
        assert torch.equal(coeff, torch.where(q.neg.reshape(-1)[:n], -lv, lv))
        for mb in (len(vector) - 1, len(vector), len(vector) * 9 // 10):
            got, want = encode_lanes_both(c, q, mb)
            assert got == want and (got is None) == (mb < len(vector))


def test_pair_mode_compiles_and_agrees_without_vector_steps(tmp_path):
    """SIMNET_VECTOR=0 (as on a host without AVX-512): the kernels compile afresh (a cache of
    their own) with no vector step, the pair histogram counting every pair directly
    (`pair_vectors.FAST` off), and the qsgd entropy payload (pair mode, most pairs (0, 0))
    is the same."""
    got = payload_without_vector_steps(tmp_path, "qsgd", "entropy", 600_001)
    x = torch.randn(600_001, generator=torch.Generator().manual_seed(3))
    c = compression.get("qsgd", bits=4, bucket_size=512, encoding="entropy")
    assert entropy.pairs_for(600_001, 512, c.grid.size)
    assert got == c.encode(x, torch.Generator().manual_seed(7))

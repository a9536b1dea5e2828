"""The compiled `elias` kernels (elias_kernels.py) against the vectorised path, their oracle:
the same bytes from every input, the same decoded values, and the same verdict (value or
ValueError) on every corrupted payload. Each comparison runs both paths in one process by
switching `jit.ENABLED` (so these tests check the kernels under SIMNET_JIT=0 too)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from simnet import compression
from simnet.compression import elias, elias_fused, jit, threads, wire
from simnet.compression.quantize import uniform_grid
from kernel_paths import on_both, on_path, value_or_error  # same folder: pytest puts it on sys.path
from test_coding import omega_str
from test_fuzz import flipped_or_overwritten

pytestmark = pytest.mark.skipif(jit.numba is None, reason="numba is not installed")

METHODS = ["qsgd", "qsgdinf", "nuqsgd"]
SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def quantized(method, n, d, seed=0, density=1.0, cube=False, **levels):
    c = compression.get(method, bucket_size=d, encoding="elias", **levels)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g)
    x = x**3 if cube else x
    x = x * (torch.rand(n, generator=g) < density)
    scales, idx, neg = c.quantize(x, g)
    return c, wire.Quantized(scales, idx, neg, n)


def assert_same_codec(c, q):
    """Both encoders give the same bytes (and Prepared the same exact nbytes); both decoders
    give the same scales and coefficients, and wire.decode the same gradient."""
    d, n = c.bucket_size, q.numel
    (pk, nk), (pv, nv) = on_both(lambda: (elias.encode(q, c.grid, d),
                                          elias.Prepared.of_quantized(q, c.grid, d).nbytes))
    assert pk == pv
    assert nk == nv == len(pk)
    (sk, ck), (sv, cv) = on_both(lambda: elias.decode(pk, n, d, c.grid))
    assert np.array_equal(sk, sv)
    assert ck.dtype == cv.dtype == torch.float32 and ck.shape == cv.shape == (n,)
    assert torch.equal(ck, cv)
    yk, yv = on_both(lambda: c.decode(pk, n))
    assert torch.equal(yk, yv)
    return pk


CASES = [(1, 1), (1, 512), (2, 1), (5, 2), (7, 3), (37, 8), (1000, 64), (4099, 512),
         (70001, 512), (70000, 3), (131072, 1024)]  # >= 2^16: two bucket ranges on threads


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n,d", CASES)
@pytest.mark.parametrize("bits", [3, 4, 7])
def test_same_bytes_and_values(method, n, d, bits):
    c, q = quantized(method, n, d, seed=n + d, bits=bits)
    assert_same_codec(c, q)


@pytest.mark.parametrize("method,levels", [("qsgd", 300), ("qsgdinf", 300), ("qsgd", 3000),
                                           ("nuqsgd", 120), ("qsgdinf", 127), ("qsgd", 128)])
@pytest.mark.parametrize("n,d", [(1, 1), (999, 7), (20000, 512), (70001, 256)])
def test_large_grids(method, levels, n, d):
    """Levels beyond the fused table (>= 128), int32 indices (grids of > 256 points)."""
    c, q = quantized(method, n, d, seed=levels, cube=True, levels=levels)
    if c.grid.size > 256:
        assert q.idx.dtype == torch.int32
    assert_same_codec(c, q)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n,d", [(1, 1), (100, 7), (70000, 512), (200000, 100000)])
def test_zero_vectors(method, n, d):
    c, q = quantized(method, n, d, density=0.0, levels=3)
    payload = assert_same_codec(c, q)
    assert len(payload) == wire.header_nbytes(n) + 4 * q.scales.numel() + -(
        -q.scales.numel() * elias.length_bits(d, c.grid) // 8)  # empty sections
    for y in on_both(lambda: c.decode(payload, n)):
        assert torch.equal(y, torch.zeros(n))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n,d,density", [(5000, 512, 0.01), (70001, 4096, 0.002),
                                         (300000, 100000, 3e-5), (200000, 70000, 1e-4),
                                         (70000, 1, 0.3), (80000, 2, 0.5)])
def test_sparse_vectors(method, n, d, density):
    """Long gaps: beyond the fused table (> 63) and beyond the gap table (> 2^16)."""
    c, q = quantized(method, n, d, seed=7, density=density, levels=5)
    assert_same_codec(c, q)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("d", [1, 2, 64, 513])
def test_buckets_alternating_sparse_and_dense(method, d):
    """The encoder codes a block's buckets by the block's density (sparse: its nonzeros
    listed first; dense: every coordinate): runs of sparse and dense buckets, within a block
    and across blocks, give the oracle's bytes and sizes."""
    g = torch.Generator().manual_seed(d)
    nb = 60
    density = torch.tensor([0.02, 0.9, 0.9, 0.3, 0.05, 0.05, 1.0, 0.0, 0.6, 0.45] * 6)
    keep = torch.rand(nb, d, generator=g) < density[:, None]
    x = (torch.randn(nb, d, generator=g) * keep).reshape(-1)[:nb * d - d // 2]
    c = compression.get(method, bucket_size=d, encoding="elias", bits=4)
    scales, idx, neg = c.quantize(x, g)
    assert_same_codec(c, wire.Quantized(scales, idx, neg, x.numel()))


def test_long_triples_and_every_gap():
    """Hand-made indices: every gap 1..d in one bucket, triples of > 32 bits (a gap of
    ~10^5 and a level of ~3000), a last bucket shorter than d, nonzero signs everywhere."""
    grid = uniform_grid(4000)
    d = 100_003
    n = 2 * d + 17
    idx = torch.zeros(3, d, dtype=torch.int32)
    pos = np.cumsum(np.arange(1, 446))  # gaps 1, 2, ..., 445 in bucket 0
    idx[0, pos[pos < d]] = torch.arange(1, int((pos < d).sum()) + 1, dtype=torch.int32)
    idx[1, d - 1] = 3999  # gap d, level 3999: a triple of > 32 bits
    idx[1, 0] = 1
    idx[2, :17] = 4000 - torch.arange(17, dtype=torch.int32)
    neg = (torch.arange(3 * d).view(3, d) % 3 == 0) & (idx > 0)
    q = wire.Quantized(torch.rand(3), idx, neg, n)
    (pk, sk), (pv, sv) = on_both(lambda: (elias.encode(q, grid, d),
                                          elias.decode(elias.encode(q, grid, d), n, d, grid)))
    assert pk == pv
    assert np.array_equal(sk[0], sv[0]) and torch.equal(sk[1], sv[1])
    levels = grid.tensor()[idx.reshape(-1)[:n].long()]
    assert torch.equal(sk[1], torch.where(neg.reshape(-1)[:n], -levels, levels))


def test_level_outside_grid_is_a_value_error():
    grid = uniform_grid(3)
    idx = torch.tensor([[0, 1, 4, 2]], dtype=torch.uint8)
    q = wire.Quantized(torch.ones(1), idx, torch.zeros(1, 4, dtype=torch.bool), 4)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(jit, "ENABLED", True)
        with pytest.raises(ValueError, match="outside the grid"):
            elias.encode(q, grid, 4)


def test_the_switch_selects_the_kernels(monkeypatch):
    """Guards the comparisons above: with ENABLED the kernels run, without it they do not."""
    c, q = quantized("qsgd", 1000, 64, bits=4)
    calls = []
    for module, name in ((elias.fused, "code_rows"), (elias.K, "decode_sections")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name,
                            lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    monkeypatch.setattr(jit, "ENABLED", False)
    elias.decode(elias.encode(q, c.grid, 64), 1000, 64, c.grid)
    assert calls == []
    monkeypatch.setattr(jit, "ENABLED", True)
    elias.decode(elias.encode(q, c.grid, 64), 1000, 64, c.grid)
    assert sorted(set(calls)) == ["code_rows", "decode_sections"]


# -- corrupted payloads: the same verdict from both decoders --------------------------------

@st.composite
def payloads(draw):
    method = draw(st.sampled_from(METHODS))
    s = draw(st.sampled_from([1, 2, 3, 7, 15, 40, 120]))
    d = draw(st.integers(1, 70))
    n = draw(st.integers(1, 300))
    density = draw(st.sampled_from([0.05, 0.3, 1.0]))
    c, q = quantized(method, n, d, seed=draw(st.integers(0, 2**16)), density=density,
                     cube=True, levels=s)
    return c, elias.encode(q, c.grid, d), n


def same_verdict(c, payload: bytes, n: int):
    d = c.bucket_size
    k, v = on_both(lambda: value_or_error(lambda: elias.decode(payload, n, d, c.grid)))
    if isinstance(k, ValueError) or isinstance(v, ValueError):
        assert isinstance(k, ValueError) and isinstance(v, ValueError), (k, v)
        event("rejected")
        return "ValueError"
    assert np.array_equal(k[0], v[0]) and torch.equal(k[1], v[1])
    event("decoded")
    return "ok"


@settings(max_examples=600, **SETTINGS)
@given(payloads(), st.data())
def test_bit_flips_and_overwrites(case, data):
    c, payload, n = case
    same_verdict(c, flipped_or_overwritten(payload, data), n)


@settings(max_examples=300, **SETTINGS)
@given(payloads(), st.data())
def test_truncation_and_extension(case, data):
    c, payload, n = case
    assert same_verdict(c, payload, n) == "ok"
    cut = data.draw(st.integers(0, len(payload) - 1))
    assert same_verdict(c, payload[:cut], n) == "ValueError"
    extra = data.draw(st.binary(min_size=1, max_size=9))
    assert same_verdict(c, payload + extra, n) == "ValueError"


def framed(c, n: int, lengths: list[int], body: bytearray) -> bytes:
    """An elias payload of unit scales, these section lengths (bits) and this code body (its
    bits past sum(lengths) zeroed: valid padding)."""
    total, w = sum(lengths), elias.length_bits(c.bucket_size, c.grid)
    if total % 8:
        body[-1] &= (0xFF << (8 - total % 8)) & 0xFF
    framing = "".join(format(x, f"0{w}b") for x in lengths)
    framing += "0" * (-len(framing) % 8)
    return (wire.header("elias", n) + np.ones(len(lengths), ">f4").tobytes()
            + bytes(int(framing[i:i + 8], 2) for i in range(0, len(framing), 8)) + bytes(body))


@settings(max_examples=500, **SETTINGS)
@given(st.sampled_from(METHODS), st.sampled_from([1, 3, 7, 120]), st.integers(1, 40),
       st.integers(1, 200), st.data())
def test_random_code_sections(method, s, d, n, data):
    """Valid framing (lengths that sum to the body), random code bits: the decoders walk
    garbage to its end or to the first error, and must agree on which it is."""
    c = compression.get(method, levels=s, bucket_size=d, encoding="elias")
    nb = -(-n // d)
    w = elias.length_bits(d, c.grid)
    lengths = [data.draw(st.integers(0, min(2**w - 1, 3 * d + 20))) for _ in range(nb)]
    total = sum(lengths)
    body = bytearray(data.draw(st.binary(min_size=-(-total // 8), max_size=-(-total // 8))))
    same_verdict(c, framed(c, n, lengths, body), n)


@settings(max_examples=150, **SETTINGS)
@given(st.sampled_from(METHODS), st.sampled_from([3, 7, 120]), st.sampled_from([64, 100, 512]),
       st.integers(2000, 12000), st.data())
def test_corrupted_long_sections(method, s, d, n, data):
    """Dense buckets of >= 64 code bits, where the decoder takes both lanes' entries in
    lockstep and checks a bucket's end only after 4 of them: bits flipped anywhere in the
    code body (a gap can then run past its bucket mid-step) get the vectorised path's verdict.
    levels=120 puts long level codes, which the table lacks, in mid-step."""
    c, q = quantized(method, n, d, seed=data.draw(st.integers(0, 2**16)), levels=s)
    payload = bytearray(elias.encode(q, c.grid, d))
    body = len(payload) - data.draw(st.integers(1, len(payload) // 2))  # the body's back half
    for _ in range(data.draw(st.integers(1, 6))):
        payload[data.draw(st.integers(body, len(payload) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    same_verdict(c, bytes(payload), n)


@settings(max_examples=150, **SETTINGS)
@given(st.sampled_from(METHODS), st.sampled_from([3, 7, 120]), st.integers(40, 600),
       st.integers(500, 4000), st.data())
def test_random_long_code_sections(method, s, d, n, data):
    """As `test_random_code_sections` with sections long enough for the lockstep (>= 64 bits
    in both lanes): random codes run past their buckets within a step of 4 entries."""
    c = compression.get(method, levels=s, bucket_size=d, encoding="elias")
    nb = -(-n // d)
    w = elias.length_bits(d, c.grid)
    lengths = [data.draw(st.integers(64, min(2**w - 1, 4 * d + 64))) for _ in range(nb)]
    total = sum(lengths)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    # sparse-ish random bits: mostly short triples, so the walk goes on for a while
    body = bytearray(np.packbits(rng.random(-(-total // 8) * 8) < 0.3).tobytes())
    same_verdict(c, framed(c, n, lengths, body), n)


@pytest.mark.parametrize("d", [1, 2, 7, 15, 63, 64, 512, 70000])
@pytest.mark.parametrize("method,levels", [("qsgd", 1), ("qsgdinf", 7), ("nuqsgd", 3),
                                           ("qsgd", 300)])
def test_decoder_table_bounds_the_lockstep(d, method, levels):
    """The lockstep's unchecked stores rest on the table: an entry moves a lane by at most
    _REACH / 4 coordinates and is at most TABLE_BITS long (4 of them fit the window's 57
    valid bits and the 64 bits a lane must have left), and the length table is its L."""
    c = compression.get(method, levels=levels, bucket_size=d, encoding="elias")
    table, lengths, _ = elias._dec_tables(d, c.grid)
    K = elias.K
    assert lengths.dtype == np.uint8 and np.array_equal(lengths, (table >> K.L_AT) & 63)
    present = table != 0
    assert present.any() and (lengths[present] > 0).all() and (lengths[~present] == 0).all()
    first, advance = (table >> K.G1) & 0xFF, (table >> K.G12) & 0xFF
    assert (first[present] >= 1).all() and (advance >= first).all()
    one = (table >> K.L1_AT) & 63  # the first triple's bits, <= the entry's
    assert (one <= lengths).all()
    alone = present & (one == lengths)  # one triple: gap2 = 0, the second store repeats it
    assert np.array_equal(alone, present & (advance == first))
    assert np.array_equal((table & 0xFFFF)[alone], (table >> K.SYM2)[alone])
    assert advance.max() <= K._REACH // 4
    assert 4 * lengths.max() <= 4 * K.TABLE_BITS <= 57
    if d >= 63:  # the bound is tight: a triple of gap 63 fits the table
        assert advance.max() == 63 == K._REACH // 4


def test_prepared_payload_refuses_streams_reused_by_a_later_encode(monkeypatch):
    """A compiled `Prepared` keeps its codes in the thread's scratch streams: its payload is
    the oracle's when taken at once, and a RuntimeError (never other bytes) when another elias
    encode on the thread has reused the streams since."""
    monkeypatch.setattr(jit, "ENABLED", True)
    c, q = quantized("qsgd", 70001, 512, seed=4, bits=4)
    _, other = quantized("qsgd", 70001, 512, seed=5, bits=4)
    keys = elias.keys_of(q, c.grid, 512)[0]
    first = elias.Prepared.of_keys(keys, q.scales, c.grid, 512)
    assert first.payload() == on_both(lambda: elias.encode(q, c.grid, 512))[1]
    stale = elias.Prepared.of_keys(keys, q.scales, c.grid, 512)
    elias.encode(other, c.grid, 512)
    with pytest.raises(RuntimeError, match="reused the streams"):
        stale.payload()


@pytest.mark.parametrize("method,n,d,density,levels", [
    ("qsgd", 70001, 512, 1.0, 7), ("nuqsgd", 70001, 512, 1.0, 3),  # dense
    ("qsgd", 70001, 512, 0.05, 7), ("qsgd", 4099, 64, 0.3, 7), ("qsgd", 4099, 65, 0.3, 7),
    ("qsgd", 200000, 70000, 1e-4, 5),  # gaps beyond the fused table and beyond 2^16
    ("qsgdinf", 20000, 512, 1.0, 300), ("qsgd", 999, 7, 0.5, 3000),  # levels past it
    ("qsgd", 1, 1, 1.0, 7), ("qsgd", 777, 7, 0.02, 7)])
def test_size_from_keys_is_the_written_length(monkeypatch, method, n, d, density, levels):
    """`nbytes_of_keys` (what `auto` sizes elias by, without coding it) is the exact length of
    the vectorised oracle's payload, the rare long codes included; `Prepared.of_keys` writes
    the oracle's bytes."""
    c, q = quantized(method, n, d, seed=11, density=density, cube=True, levels=levels)
    oracle = on_both(lambda: elias.encode(q, c.grid, d))[1]
    monkeypatch.setattr(jit, "ENABLED", True)
    keys = elias.keys_of(q, c.grid, d)[0]
    key_counts = np.bincount(keys, minlength=2 * c.grid.size)
    assert elias.nbytes_of_keys(keys, key_counts, c.grid, d) == len(oracle)
    written = elias.Prepared.of_keys(keys, q.scales, c.grid, d)
    assert written.nbytes == len(oracle) and written.payload() == oracle


def naive_gap_bits(keys, d, b0, b1):
    """Σ |ω(gap)| over the nonzero keys of buckets [b0, b1), one coordinate at a time."""
    total = 0
    for b in range(b0, b1):
        nonzero = np.flatnonzero(keys[b * d:(b + 1) * d]) + 1  # 1-based positions
        gaps = np.diff(nonzero, prepend=0)
        total += sum(len(omega_str(int(g))) for g in gaps)
    return total


@pytest.mark.parametrize("d", [1, 2, 3, 63, 64, 65, 127, 128, 129, 512, 1000, 70000])
@pytest.mark.parametrize("density", [0.0, 0.01, 0.2, 0.7, 1.0])
def test_gap_bits_against_a_naive_walk(d, density):
    """`gap_bits` (64-coordinate bit masks: the first nonzero of a word by its table, the others
    by covering masks) against a naive walk, on bucket ranges that cut words anywhere, for
    keys of both widths, runs of zeros across words, and gaps past the table (d > 2^16)."""
    rng = np.random.default_rng(d * 7 + int(density * 100))
    n = int(rng.integers(1, 3 * d + 2000))
    nb = -(-n // d)
    glen = elias.gap_lengths(d)
    for dtype in (np.uint8, np.uint16):
        keys = ((rng.random(n) < density) * rng.integers(1, 2000, n)).astype(dtype)
        keys[rng.integers(0, n, 3)] = 0  # a few sure zeros, and bursts of them
        for b0, b1 in [(0, nb), (nb // 3, nb - nb // 4), (nb - 1, nb)]:
            assert elias.K.gap_bits(keys, d, b0, b1, glen) == naive_gap_bits(keys, d, b0, b1)


@pytest.mark.parametrize("method,n", [("qsgd", 200_003), ("nuqsgd", 131_072)])
def test_splicing_on_the_pool_or_this_thread_gives_the_same_payload(monkeypatch, method, n):
    """`_assemble` splices the ranges' streams on this thread below _SPLICE_PAR_MIN code
    bytes and on the pool above: the same bytes either way, the vectorised oracle's (ranges
    whose first byte is shared with the range before included)."""
    c, q = quantized(method, n, 512, seed=5, bits=4)
    oracle = on_both(lambda: elias.encode(q, c.grid, 512))[1]
    monkeypatch.setattr(jit, "ENABLED", True)
    x = torch.randn(n, generator=torch.Generator().manual_seed(6))
    payloads = []
    for threshold in (0, 1 << 40):
        monkeypatch.setattr(elias, "_SPLICE_PAR_MIN", threshold)
        assert elias.encode(q, c.grid, 512) == oracle
        payloads.append(c.encode(x, torch.Generator().manual_seed(7)))
    assert payloads[0] == payloads[1]


def test_splice_places_every_bit_and_touches_nothing_else():
    """`elias_fused.splice` against numpy's bit strings: a stream of nbits (words as the
    coders store them, scratch after its end) copied to every bit offset 0-15 of buffers
    starting at byte 0-8 (the 8-byte stores then unaligned), with lengths around the 8-byte
    steps: its bits land in place, the shared first byte's part goes to head (the byte itself
    untouched), and no byte outside the range's changes."""
    rng = np.random.default_rng(8)
    checked = 0
    for nbits in (1, 7, 8, 9, 63, 64, 65, 71, 72, 127, 129, 200, 1000, 4099):
        bits = rng.integers(0, 2, nbits).astype(np.uint8)
        nwords = -(-nbits // 32) + 3
        # bytes in stream order, as stored: zeros to the end of the last byte, then scratch
        tail = -nbits % 8
        padded = np.concatenate([bits, np.zeros(tail, np.uint8),
                                 rng.integers(0, 2, 32 * nwords - nbits - tail).astype(np.uint8)])
        src = np.packbits(padded).view(np.uint32)
        for bit0 in range(16):
            for lead in range(9):
                size = lead + (bit0 + nbits + 7) // 8 + 9
                dst = np.full(size, 0xA5, np.uint8)
                body = dst[lead:]
                head = np.zeros(1, np.uint8)
                elias_fused.splice(src, nbits, body, bit0, head,
                                   elias_fused.wide_view(body, (bit0 >> 3) + 1))
                want = np.unpackbits(np.full(size - lead, 0xA5, np.uint8))
                want[bit0:bit0 + nbits] = bits
                first, last = bit0 >> 3, (bit0 + nbits - 1) >> 3
                end = 8 * (last + 1)
                want[bit0 + nbits:end] = 0  # the last byte's bits after the stream
                want = np.packbits(want)
                got = body.copy()
                if bit0 & 7:  # the shared byte stays; its part is in head
                    assert got[first] == 0xA5
                    assert head[0] == np.packbits(np.concatenate(
                        [np.zeros(bit0 & 7, np.uint8), want_bits_of(want[first], bit0 & 7)]))[0]
                    got[first] = want[first]
                np.testing.assert_array_equal(got, want)
                assert (dst[:lead] == 0xA5).all()
                checked += 1
    assert checked == 14 * 16 * 9


def want_bits_of(byte: int, skip: int) -> np.ndarray:
    """The bits of `byte` after its first `skip`, MSB first."""
    return np.unpackbits(np.array([byte], np.uint8))[skip:]


@pytest.mark.parametrize("w", [1, 7, 12, 14, 31, 32, 33, 57, 64])
def test_write_fixed_packs_fields_msb_first(w):
    """`write_fixed` (the bucket-length fields) against a bit string written by hand: each
    value's w bits MSB first, the last byte zero-padded, for counts that end anywhere in a
    byte and a word; an out of another size is refused (ERR_OVERFLOW) and left as it was.
    `read_fixed` (w <= 57) reads the values back, its last fields within 8 bytes of the
    buffer's end included."""
    rng = np.random.default_rng(w)
    for count in [0, 1, 2, 3, 5, 8, 33, 100]:
        values = rng.integers(0, 2**min(w, 62), count, dtype=np.int64)
        if w == 64 and count:
            values[0] = -1  # all 64 bits set
        bits = "".join(format(int(v) & (2**w - 1), f"0{w}b") for v in values)
        bits += "0" * (-len(bits) % 8)
        want = bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))
        out = np.full(len(want), 0xAA, np.uint8)
        assert elias.K.write_fixed(values, w, out) == 0
        assert out.tobytes() == want
        if w <= 57:
            got = np.full(count, -7, np.int64)
            elias.K.read_fixed(out, count, w, got)
            np.testing.assert_array_equal(got, values)
        for size in (len(want) - 1, len(want) + 1):
            if size >= 0:
                other = np.full(size, 0xAA, np.uint8)
                assert elias.K.write_fixed(values, w, other) == elias.K.ERR_OVERFLOW
                assert (other == 0xAA).all()


@pytest.mark.parametrize("team", [True, False])
@pytest.mark.parametrize("method,n,d,density", [
    ("qsgdinf", 131_072, 512, 1.0), ("nuqsgd", 70_001, 3, 1.0), ("qsgd", 200_003, 1024, 1.0),
    ("qsgd", 300_000, 100_000, 3e-5)])  # the last: gaps >= 2^16, which the vector step declines
def test_ranges_on_numba_threads_or_the_pool(monkeypatch, team, method, n, d, density):
    """Two bucket ranges coded and decoded in one launch on numba's threads
    (`threads.team_ready`) or on this thread and the elias pool: the oracle's bytes and values
    either way, from quantized levels (`code_ranges`) and from the gradient (`encode_ranges`,
    which must equal the pool's), a range the vector step declines coded again without it."""
    monkeypatch.setattr(threads, "TEAM", team)
    c, q = quantized(method, n, d, seed=11, density=density, levels=5)
    assert len(elias._coding_ranges(q.scales.numel(), d)) == min(2, threads.THREADS)
    assert_same_codec(c, q)
    monkeypatch.setattr(jit, "ENABLED", True)
    x = torch.randn(n, generator=torch.Generator().manual_seed(12))
    x = x * (torch.rand(n, generator=torch.Generator().manual_seed(13)) < density)
    payload = c.encode(x, torch.Generator().manual_seed(14))
    monkeypatch.setattr(threads, "TEAM", not team)
    assert c.encode(x, torch.Generator().manual_seed(14)) == payload
    assert torch.equal(c.decode(payload, n), on_path(False, lambda: c.decode(payload, n)))


def test_corruption_in_either_range_gives_the_same_verdict_on_threads_or_pool(monkeypatch):
    """Bytes overwritten in the first or the second bucket range's code sections: the
    decoder on numba's threads and on the pool give the same ValueError (message and all) or
    the same values, and the oracle a ValueError exactly where they do."""
    c, q = quantized("nuqsgd", 131_072, 512, seed=15, bits=4)
    payload = on_path(False, lambda: elias.encode(q, c.grid, 512))
    nb = q.scales.numel()
    code = wire.header_nbytes(q.numel) + 4 * nb + -(-nb * elias.length_bits(512, c.grid) // 8)
    size = len(payload) - code
    errors = 0
    for at in (code, code + size // 4, code + size * 3 // 4, len(payload) - 3):
        for value in (0x00, 0xFF, 0x5A):
            bad = bytearray(payload)
            bad[at:at + 2] = bytes([value, value ^ 0x3C])
            verdicts = []
            for team in (True, False):
                monkeypatch.setattr(threads, "TEAM", team)
                verdicts.append(on_path(True, lambda: value_or_error(
                    lambda: c.decode(bytes(bad), q.numel))))
            oracle = on_path(False, lambda: value_or_error(lambda: c.decode(bytes(bad), q.numel)))
            team, pool = verdicts
            assert isinstance(team, ValueError) == isinstance(pool, ValueError) == isinstance(
                oracle, ValueError)
            if isinstance(team, ValueError):
                errors += 1
                assert str(team) == str(pool)
            else:
                assert torch.equal(team, pool) and torch.equal(team, oracle)
    assert errors > 0

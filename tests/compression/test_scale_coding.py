"""The Rice-coded bucket scales of the `entropy` format: known bytes, round trips, the choice
of mode and k, size bounds, and corrupted blocks that end in a ValueError, never garbage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from simnet.compression import jit, scale_coding
from kernel_paths import on_both, value_or_error  # same folder: pytest puts it on sys.path


def rice_bits(z: np.ndarray, k: int) -> int:
    return int(z.size * (k + 1) + (z >> k).sum())


def zigzag(r: np.ndarray) -> np.ndarray:
    return np.where(r >= 0, 2 * r, -2 * r - 1)


def patterns(scales: np.ndarray) -> np.ndarray:
    return np.asarray(scales, np.float32).view(np.uint32)


def test_known_bytes():
    """[1, 1, 2]: u = 3f800000, 3f800000, 40000000. Mode 0 zigzags the deltas to
    [7f000000, 0, 01000000]; k = 29 costs 3·30 + (3 + 0 + 0) = 93 bits, the fewest (mode 1
    would cost 73 + a 32-bit reference). Remainders: 1f000000, 0, 01000000 in 29 bits each;
    quotients 3, 0, 0 -> unary 1110 0 0."""
    block = scale_coding.encode(np.array([1.0, 1.0, 2.0], np.float32))
    assert block.hex() == "00" "1d" "00000001" "f8000000000000020000" "00" "e0"
    scales, end = scale_coding.decode(block, 0, 3)
    assert end == len(block) and scales.tolist() == [1.0, 1.0, 2.0]


def test_mode_1_when_spread_about_the_median_is_small():
    """i.i.d. scales around one value: the median reference beats deltas."""
    rng = np.random.default_rng(0)
    scales = (22.6 + 0.7 * rng.standard_normal(1000)).astype(np.float32)
    block = scale_coding.encode(scales)
    u = patterns(scales).astype(np.int64)
    ref = int(np.sort(u)[499])
    z = zigzag(u - ref)
    k = min(range(33), key=lambda k: (rice_bits(z, k), k))
    assert block[:2] == bytes([1, k]) and int.from_bytes(block[2:6], "big") == ref
    unary_bits = rice_bits(z, k) - 1000 * k  # the quotients' ones and the 1000 zeros
    assert len(block) == 10 + -(-1000 * k // 8) + -(-unary_bits // 8)
    assert 8 * len(block) < 22 * 1000  # vs 32 bits raw


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 40), st.integers(0, 2**33 - 1)), max_size=30))
def test_rice_parameter_is_the_cheapest(values):
    """The bisection over the convex cost picks what a search over every k picks."""
    z = np.array(values, np.int64)
    brute = min((rice_bits(z, k), k) for k in range(33))
    assert scale_coding._best_k(z) == brute


@pytest.mark.parametrize("count", [0, 1, 2, 7, 300])
def test_round_trip_of_any_bit_patterns(count):
    """Zeros, subnormals, the largest float and everything between: every bit kept."""
    rng = np.random.default_rng(count)
    u = rng.integers(0, 0x7F800000, count, dtype=np.uint32)  # finite, non-negative
    u[::5] = 0
    u[1::7] = 1  # the smallest subnormal
    u[2::11] = 0x7F7FFFFF  # the largest finite float
    block = scale_coding.encode(u.view(np.float32))
    assert 8 * len(block) <= 34 * count + 80  # k = 32 bounds the cost: 33 bits + 1 quotient bit
    scales, end = scale_coding.decode(block + b"\x07\x07", 0, count)
    assert end == len(block)
    assert np.array_equal(patterns(scales), u)


def test_decode_at_an_offset():
    scales = np.array([3.5, 0.0, 1e-30], np.float32)
    block = scale_coding.encode(scales)
    got, end = scale_coding.decode(b"abc" + block, 3, 3)
    assert end == 3 + len(block) and np.array_equal(patterns(got), patterns(scales))


@pytest.mark.parametrize("block,count,message", [
    (b"", 0, "truncated"),
    (b"\x02\x00\x00\x00\x00\x00", 0, "mode"),
    (b"\x00\x21\x00\x00\x00\x00", 0, "Rice parameter"),
    (b"\x00\x00\x00\x00\x00\x01\x00", 0, "more than any encoder writes"),  # 0 scales, 1 byte
    (b"\x00\x00\x00\x00\x00\x01\xff", 1, "0 scale quotients, not 1"),  # no zero
    (b"\x00\x00\x00\x00\x00\x01\x20", 1, "after the scales' quotients"),  # a one after it
    (b"\x00\x00\x00\x00\x00\x02\x00\x00", 1, "after the scales' quotients"),  # a spare byte
    (b"\x00\x00\x00\x00\x00\x05", 1, "truncated"),
    (b"\x00\x00\x00\x00\x00\x06" + bytes(6), 1, "more than any encoder writes"),  # > 34 bits
    (b"\x00\x04\x00\x00\x00\x01\x01\x00", 1, "padding"),  # remainder 0000, pad bits 0001
    # the pattern 7fc00000 (NaN) in mode 0 with k = 32: z = 2·7fc00000, quotient 0
    (b"\x00\x20\x00\x00\x00\x01\xff\x80\x00\x00\x00", 1, "NaN"),
    (b"\x00\x20\x00\x00\x00\x01\x00\x00\x00\x01\x00", 1, "outside 32 bits"),  # z = 1: r = -1
])
def test_malformed_blocks_are_rejected(block, count, message):
    with pytest.raises(ValueError, match=message):
        scale_coding.decode(block, 0, count)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.floats(0, 3.4028234663852886e38, width=32), max_size=40), st.data())
def test_corrupted_blocks_end_in_scales_or_a_value_error(values, data):
    """Flip, cut or extend a valid block: decoding returns finite non-negative scales or
    raises ValueError; an untouched block returns the input exactly."""
    scales = np.array(values, np.float32)
    block = bytearray(scale_coding.encode(scales))
    got, end = scale_coding.decode(bytes(block), 0, scales.size)
    assert end == len(block) and np.array_equal(patterns(got), patterns(scales))
    how = data.draw(st.sampled_from(["flip", "cut", "extend"]))
    if how == "flip" and block:
        i = data.draw(st.integers(0, len(block) - 1))
        block[i] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "cut":
        block = block[: data.draw(st.integers(0, len(block)))]
    else:
        block += data.draw(st.binary(min_size=1, max_size=8))
    try:
        got, end = scale_coding.decode(bytes(block), 0, scales.size)
    except ValueError:
        return
    assert got.size == scales.size and end <= len(block)
    assert np.isfinite(got).all() and (got >= 0).all()


needs_numba = pytest.mark.skipif(jit.numba is None, reason="numba is not installed")


@needs_numba
@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.floats(0, 3.4028234663852886e38, width=32),
                          st.floats(1.0, 1.5, width=32)),
                max_size=60), st.data())
def test_kernels_give_the_vectorised_bytes_and_verdicts(values, data):
    """`scale_kernels` against the vectorised code: the same block from any scales, and the
    same scales or the same ValueError from the block with a few bits flipped or cut."""
    scales = np.array(values, np.float32)
    block, slow = on_both(lambda: scale_coding.encode(scales))
    assert block == slow
    corrupt = bytearray(block)
    for _ in range(data.draw(st.integers(0, 3))):
        corrupt[data.draw(st.integers(0, len(corrupt) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    corrupt = bytes(corrupt[:data.draw(st.integers(0, len(corrupt)))])
    fast, slow = on_both(lambda: value_or_error(lambda: scale_coding.decode(corrupt, 0,
                                                                           scales.size)))
    if isinstance(fast, ValueError) or isinstance(slow, ValueError):
        assert str(fast) == str(slow)
    else:
        assert np.array_equal(fast[0].view(np.uint32), slow[0].view(np.uint32))
        assert fast[1] == slow[1]


@needs_numba
@pytest.mark.parametrize("bits,verdict", [
    ([0x3F800000, 0x80000000], None),  # -0.0 is a scale (it is not below zero)
    ([0x3F800000, 0xBF800000], "negative"),
    ([0xBF800000, 0x7F800000], "NaN or Inf"),  # a non-finite scale is named first
    ([0xFFC00000], "NaN or Inf"),  # a NaN with its sign bit set
    ([0x7F7FFFFF, 0x00000001], None),  # the largest finite float32, the least subnormal
])
def test_decoded_scales_are_checked_alike_on_both_paths(bits, verdict):
    """The kernels check the decoded patterns as `wire.check_scales` checks the scales: the
    same scales, or the same ValueError in the same order."""
    block = scale_coding.encode(np.array(bits, np.uint32).view(np.float32))
    fast, slow = on_both(lambda: value_or_error(lambda: scale_coding.decode(block, 0, len(bits))))
    if verdict is None:
        assert fast[0].view(np.uint32).tolist() == slow[0].view(np.uint32).tolist() == bits
    else:
        assert isinstance(fast, ValueError) and str(fast) == str(slow)
        assert verdict in str(fast)

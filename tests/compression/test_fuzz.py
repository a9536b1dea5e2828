"""Fuzz: corrupted payloads of every grid quantizer and format end in a finite tensor of the
right shape or in ValueError; never another exception, never a hang (decoders have bounded
loops). Truncated and extended payloads, and a wrong numel, must always be rejected."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simnet import compression

METHODS = ["qsgd", "qsgdinf", "nuqsgd"]
FORMATS = ["fixed", "elias", "entropy", "auto"]
SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@st.composite
def payloads(draw):
    method = draw(st.sampled_from(METHODS))
    fmt = draw(st.sampled_from(FORMATS))
    s = draw(st.integers(1, 9))
    d = draw(st.integers(1, 70))
    n = draw(st.integers(0, 160))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g) * (torch.rand(n, generator=g) < draw(st.floats(0, 1)))
    c = compression.get(method, levels=s, bucket_size=d, encoding=fmt)
    return c, c.encode(x, generator=g), n


def flipped_or_overwritten(payload: bytes, data) -> bytes:
    """`payload` with 1-4 of its bytes corrupted, each by one bit flip or a new value (drawn
    from hypothesis' `data`); also used by the compiled decoders' agreement tests."""
    buf = bytearray(payload)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(buf) - 1))
        if data.draw(st.booleans()):
            buf[i] ^= 1 << data.draw(st.integers(0, 7))
        else:
            buf[i] = data.draw(st.integers(0, 255))
    return bytes(buf)


def decodes_or_rejects(c, payload: bytes, n: int) -> bool:
    """True if decoded (checked), False if ValueError; any other exception propagates."""
    try:
        y = c.decode(payload, n)
    except ValueError:
        return False
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32 and y.shape == (n,)
    assert torch.isfinite(y).all()
    return True


@settings(max_examples=800, **SETTINGS)
@given(payloads(), st.data())
def test_bit_flips_and_overwrites(case, data):
    c, payload, n = case
    decodes_or_rejects(c, flipped_or_overwritten(payload, data), n)


@settings(max_examples=400, **SETTINGS)
@given(payloads(), st.data())
def test_truncated_extended_and_wrong_numel_are_rejected(case, data):
    c, payload, n = case
    assert decodes_or_rejects(c, payload, n)  # the intact payload decodes
    cut = data.draw(st.integers(0, len(payload) - 1))
    assert not decodes_or_rejects(c, payload[:cut], n)
    extra = data.draw(st.binary(min_size=1, max_size=9))
    assert not decodes_or_rejects(c, payload + extra, n)
    other = data.draw(st.integers(0, 400).filter(lambda m: m != n))
    assert not decodes_or_rejects(c, payload, other)


@settings(max_examples=300, **SETTINGS)
@given(st.sampled_from(METHODS), st.sampled_from(FORMATS), st.binary(max_size=64),
       st.integers(0, 100))
def test_random_bytes(method, fmt, blob, n):
    c = compression.get(method, levels=3, bucket_size=16, encoding=fmt)
    decodes_or_rejects(c, blob, n)
    decodes_or_rejects(c, bytes([1 + n % 3]) + bytes([n]) + blob, n)  # valid header, junk body


def test_non_bytes_payload_is_a_value_error():
    c = compression.get("qsgd", levels=3)
    for bad in (None, "abc", np.zeros(3)):
        try:
            c.decode(bad, 3)
        except ValueError:
            continue
        raise AssertionError(f"accepted {type(bad)}")

"""Error feedback: the telescoping identity, per-instance memory, reset, and the switch."""

from __future__ import annotations

import pytest
import torch

from simnet import compression
from simnet.compression import ErrorFeedback


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def with_feedback() -> dict:
    """Fresh compressors that run error feedback, built every supported way."""
    return {
        "onebit": compression.get("onebit", bucket_size=100),
        "efsignsgd": compression.get("efsignsgd", bucket_size=64),
        "signsgd+ef": compression.get("signsgd", error_feedback=True),
        "terngrad+ef": compression.get("terngrad", bucket_size=50, error_feedback=True),
        "topk": compression.get("topk", ratio=0.05),
        "powersgd": compression.get("powersgd", rank=1),
        "wrap(fp16)": ErrorFeedback(compression.get("fp16")),
        "wrap(signsgd)": ErrorFeedback(compression.get("signsgd")),
        "wrap(topk)": ErrorFeedback(compression.get("topk", k=3, error_feedback=False)),
    }


@pytest.mark.parametrize("key", list(with_feedback()))
def test_telescoping_identity(key):
    # sum_t decode(payload_t) + memory_T == sum_t x_t: nothing is lost, only delayed.
    c = with_feedback()[key]
    n, steps, g = 777, 8, gen(1)
    total_in = torch.zeros(n, dtype=torch.float64)
    total_out = torch.zeros(n, dtype=torch.float64)
    for t in range(steps):
        x = torch.randn(n, generator=gen(100 + t)) * (1 + t)
        payload = c.encode(x, generator=g)
        total_in += x.double()
        total_out += c.decode(payload, n).double()
    assert c.memory is not None and c.memory.shape == (n,)
    scale = float(total_in.abs().max())
    assert torch.allclose(total_out + c.memory.double(), total_in, rtol=0, atol=1e-5 * scale)
    assert float(c.memory.abs().max()) > 0  # the memory is in use


def test_memory_changes_the_next_payload_and_reset_clears_it():
    x = torch.randn(300, generator=gen(2))
    c = compression.get("topk", k=10)
    first = c.encode(x)
    assert c.encode(x) != first  # second step also sends what step one dropped
    c.reset()
    assert c.memory is None
    assert c.encode(x) == first


def test_switch_off_is_stateless():
    x = torch.randn(300, generator=gen(3))
    for name in ["onebit", "efsignsgd", "topk", "powersgd"]:
        c = compression.get(name, error_feedback=False)
        a = c.encode(x, generator=gen(4))
        assert c.memory is None
        if name != "powersgd":  # PowerSGD still warm-starts Q
            assert c.encode(x, generator=gen(4)) == a


def test_defaults_follow_the_papers():
    on = {"onebit", "efsignsgd", "topk", "powersgd"}
    off = {"signsgd", "terngrad"}
    for name in on | off:
        assert compression.get(name).error_feedback is (name in on)


def test_wrapper_payload_is_the_inner_payload():
    x = torch.randn(500, generator=gen(5))
    inner = compression.get("terngrad", bucket_size=64)
    wrapped = ErrorFeedback(compression.get("terngrad", bucket_size=64))
    assert wrapped.encode(x, generator=gen(6)) == inner.encode(x, generator=gen(6))
    assert wrapped.allreduce_compatible is False
    assert ErrorFeedback(compression.get("fp16")).allreduce_compatible is True
    assert wrapped.config() == {"name": "error_feedback", "inner": inner.config()}


def test_wrapper_refuses_double_feedback_and_non_compressors():
    with pytest.raises(ValueError):
        ErrorFeedback(compression.get("topk"))  # already has error feedback on
    with pytest.raises(ValueError):
        ErrorFeedback("topk")


def test_memory_is_per_instance_and_per_numel():
    a, b = compression.get("efsignsgd"), compression.get("efsignsgd")
    a.encode(torch.randn(100, generator=gen(7)))
    assert b.memory is None
    before = a.memory.clone()
    with pytest.raises(ValueError, match="reset"):
        a.encode(torch.randn(101, generator=gen(8)))
    bad = torch.randn(100, generator=gen(9))
    bad[3] = float("nan")
    with pytest.raises(ValueError):
        a.encode(bad)
    assert torch.equal(a.memory, before)  # a failed encode leaves the memory alone


def test_encode_batch_refuses_to_share_memory():
    xs = torch.randn(3, 50, generator=gen(10))
    for c in [compression.get("topk"), ErrorFeedback(compression.get("fp16")),
              compression.get("powersgd", error_feedback=False)]:
        with pytest.raises(ValueError):
            c.encode_batch(xs)
    stateless = compression.get("signsgd")
    assert stateless.encode_batch(xs) == [stateless.encode(x) for x in xs]


def test_error_feedback_topk_average_converges_to_the_gradient():
    # With a constant gradient the average decoded update is x - memory_T / T.
    x = torch.randn(400, generator=gen(11))
    c = compression.get("topk", k=20)
    steps = 200
    total = sum(c.decode(c.encode(x), 400) for _ in range(steps))
    assert float((total / steps - x).norm()) < 0.1 * float(x.norm())

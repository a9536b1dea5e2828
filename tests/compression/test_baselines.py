"""Oracles for the baseline compressors: fp16, onebit, signsgd/efsignsgd, terngrad, topk,
powersgd. Each test can fail: byte counts against the documented formulas, reconstructions
against closed forms, statistics against exact moments with tolerances derived from them."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from simnet import compression
from simnet.compression.base import _REGISTRY

MINE = ["fp16", "onebit", "signsgd", "efsignsgd", "terngrad", "topk", "powersgd"]
ALL_HERE = ["none", *MINE]


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def expected_bytes(name: str, n: int, **p) -> int:
    """The wire formats as written in each module's docstring."""
    d = p.get("bucket_size", 512)
    if name == "none":
        return 4 * n
    if name == "fp16":
        return 2 * n
    if name in ("signsgd", "efsignsgd"):
        return 4 + 4 * ceil_div(n, d) + ceil_div(n, 8)
    if name == "onebit":
        return 4 + 8 * ceil_div(n, d) + ceil_div(n, 8)
    if name == "terngrad":
        return 4 + 4 * ceil_div(n, d) + ceil_div(n, 4)
    if name == "topk":
        # k = ceil(ratio * n) in exact decimal arithmetic, at least 1, at most n.
        exact = math.ceil(Fraction(str(p.get("ratio", 0))) * n)
        k = min(p["k"], n) if "k" in p else (0 if n == 0 else max(1, exact))
        return 4 + 8 * k
    if name == "powersgd":
        if "shape" in p:
            m, c = p["shape"]
        else:
            m = math.ceil(math.sqrt(n)) if n else 0
            c = ceil_div(n, m) if n else 0
        r = min(p.get("rank", 2), m, c)
        return 4 + 4 * r * (m + c)
    raise AssertionError(name)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, generator=gen(seed))


# --- byte counts --------------------------------------------------------------------------

CASES = [
    ("fp16", {}),
    ("onebit", {"bucket_size": 512}),
    ("onebit", {"bucket_size": 7}),
    ("signsgd", {"bucket_size": 512}),
    ("efsignsgd", {"bucket_size": 100}),
    ("terngrad", {"bucket_size": 512}),
    ("terngrad", {"bucket_size": 3}),
    ("topk", {"ratio": 0.01}),
    ("topk", {"ratio": 0.07}),
    ("topk", {"k": 5}),
    ("powersgd", {"rank": 2}),
    ("powersgd", {"rank": 4, "shape": (40, 30)}),
]


@pytest.mark.parametrize("name,params", CASES)
@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 100, 511, 512, 513, 1200])
def test_payload_bytes_match_formula(name, params, n):
    if "shape" in params and n > 1200:
        pytest.skip("shape too small")
    c = compression.get(name, **params)
    payload = c.encode(randn(n), generator=gen(1))
    assert len(payload) == expected_bytes(name, n, **params)
    assert c.decode(payload, n).shape == (n,)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(0, 3000),
    d=st.integers(1, 700),
    name=st.sampled_from(["onebit", "signsgd", "terngrad"]),
)
def test_bucketed_bytes_property(n, d, name):
    c = compression.get(name, bucket_size=d, error_feedback=False)
    payload = c.encode(randn(n, seed=n), generator=gen(n))
    assert len(payload) == expected_bytes(name, n, bucket_size=d)


def test_topk_k_from_ratio_is_not_fooled_by_float_noise():
    # 0.07 * 100 == 7.000000000000001 in binary floating point.
    assert compression.get("topk", ratio=0.07).kept(100) == 7
    assert compression.get("topk", ratio=0.01).kept(10) == 1  # at least one coordinate
    assert compression.get("topk", k=50).kept(20) == 20


# --- fp16 ---------------------------------------------------------------------------------

def test_fp16_round_trip_equals_half_cast():
    x = randn(4097) * 100
    c = compression.get("fp16")
    y = c.decode(c.encode(x), x.numel())
    assert y.dtype == torch.float32
    assert torch.equal(y, x.half().float())


def test_fp16_clamps_instead_of_overflowing():
    x = torch.tensor([1e6, -1e6, 65504.0, 70000.0, 1.0])
    c = compression.get("fp16")
    y = c.decode(c.encode(x), 5)
    assert torch.equal(y, torch.tensor([65504.0, -65504.0, 65504.0, 65504.0, 1.0]))


# --- signs: signsgd / efsignsgd / onebit --------------------------------------------------

@pytest.mark.parametrize("name", ["signsgd", "efsignsgd", "onebit"])
def test_sign_methods_reconstruct_signs(name):
    x = randn(2000, seed=3)
    x[::17] = 0.0
    c = compression.get(name, bucket_size=300)
    y = c.decode(c.encode(x), x.numel())
    nonzero = x != 0
    assert torch.equal(torch.sign(y[nonzero]), torch.sign(x[nonzero]))
    assert (y[~nonzero] >= 0).all()  # sgn(0) = +1 side


def test_signsgd_magnitude_is_bucket_mean_abs():
    x = randn(1000, seed=4)
    d = 300
    c = compression.get("signsgd", bucket_size=d)
    y = c.decode(c.encode(x), x.numel())
    for start in range(0, 1000, d):
        chunk = slice(start, start + d)
        assert torch.allclose(y[chunk].abs(), x[chunk].abs().mean().expand_as(y[chunk]))


def test_onebit_values_are_side_means():
    x = randn(1000, seed=5)
    x[:300] = x[:300].abs()  # first bucket: no negatives, its negative mean is unused
    d = 300
    c = compression.get("onebit", bucket_size=d, error_feedback=False)
    y = c.decode(c.encode(x), x.numel())
    for start in range(0, 1000, d):
        xs, ys = x[start : start + d], y[start : start + d]
        pos, neg = xs >= 0, xs < 0
        assert torch.allclose(ys[pos], xs[pos].mean().expand(int(pos.sum())))
        if neg.any():
            assert torch.allclose(ys[neg], xs[neg].mean().expand(int(neg.sum())))


# --- terngrad -----------------------------------------------------------------------------

def terngrad_samples(x: torch.Tensor, copies: int) -> torch.Tensor:
    """`copies` independent encodings of x in one call: a bucket per copy, same scale."""
    c = compression.get("terngrad", bucket_size=x.numel())
    tiled = x.repeat(copies)
    return c.decode(c.encode(tiled, generator=gen(7)), tiled.numel()).view(copies, -1)


def test_terngrad_unbiased_with_exact_variance():
    x = randn(64, seed=6)
    x[0] = 0.0
    copies = 20000
    q = terngrad_samples(x, copies)
    s = x.abs().max()
    assert set(torch.unique(q).tolist()) <= {-float(s), 0.0, float(s)}
    a = x.abs().double()
    s = s.double()
    p = a / s
    var = s * a - a**2  # exact per-coordinate variance of the two-point law
    # Unbiased: 5 standard errors of the mean, per coordinate.
    mean = q.double().mean(0)
    assert ((mean - x.double()).abs() <= 5 * torch.sqrt(var / copies) + 1e-7).all()
    # Exact variance: (q - x)^2 is (s - |x|)^2 w.p. p, else x^2; its own variance is
    # p(1-p)((s - |x|)^2 - x^2)^2, which sets a 5-standard-error tolerance.
    sq = ((q.double() - x.double()) ** 2).mean(0)
    sq_var = p * (1 - p) * ((s - a) ** 2 - a**2) ** 2
    assert ((sq - var).abs() <= 5 * torch.sqrt(sq_var / copies) + 1e-7).all()
    # Summed: E||Q - x||^2 = sum_i (s|x_i| - x_i^2).
    total = ((q.double() - x.double()) ** 2).sum(1)
    assert abs(total.mean() - var.sum()) <= 5 * math.sqrt(sq_var.sum() / copies)


def test_terngrad_zero_bucket_and_extremes_are_exact():
    x = torch.tensor([0.0, 0.0, 0.0, 2.0, -2.0, 0.0])
    c = compression.get("terngrad", bucket_size=3)
    y = c.decode(c.encode(x, generator=gen()), 6)
    assert torch.equal(y, x)  # |x| = max keeps with probability 1, zeros stay zero


# --- topk ---------------------------------------------------------------------------------

@pytest.mark.parametrize("params", [{"k": 37}, {"ratio": 0.05}])
def test_topk_keeps_exactly_the_largest_magnitudes(params):
    n = 1000
    magnitudes = torch.arange(1, n + 1, dtype=torch.float32) / n  # distinct
    perm = torch.randperm(n, generator=gen(8))
    signs = torch.where(torch.rand(n, generator=gen(9)) < 0.5, -1.0, 1.0)
    x = magnitudes[perm] * signs
    c = compression.get("topk", error_feedback=False, **params)
    k = c.kept(n)
    y = c.decode(c.encode(x), n)
    kept = y != 0
    assert int(kept.sum()) == k
    assert torch.equal(y[kept], x[kept])
    assert torch.equal(kept, x.abs() > (n - k + 0.5) / n)  # magnitudes (n-k+1)/n .. 1


# --- powersgd -----------------------------------------------------------------------------

@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("error_feedback", [False, True])
def test_powersgd_reconstructs_low_rank_exactly(rank, error_feedback):
    a, b = torch.randn(32, 2, generator=gen(10)), torch.randn(2, 40, generator=gen(11))
    x = (a @ b).flatten()
    c = compression.get("powersgd", rank=rank, shape=(32, 40), error_feedback=error_feedback)
    g = gen(12)
    for _ in range(3):  # warm-up and warm-started steps alike
        y = c.decode(c.encode(x, generator=g), x.numel())
        assert torch.allclose(y, x, atol=1e-4 * float(x.abs().max()))


def test_powersgd_default_shape_is_near_square_with_padding():
    c = compression.get("powersgd", rank=1, error_feedback=False)
    assert c.dims(1024) == (32, 32, 1)
    assert c.dims(1000) == (32, 32, 1)  # 24 zeros of padding at the end
    assert c.dims(2) == (2, 1, 1)
    # Rank 1 in the row-major 32 x 32 layout, last row zero so the padding keeps rank 1.
    u, v = torch.randn(32, 1, generator=gen(13)), torch.randn(1, 32, generator=gen(14))
    u[31] = 0.0
    x = (u @ v).flatten()[:1000]
    y = c.decode(c.encode(x, generator=gen(15)), 1000)
    assert torch.allclose(y, x, atol=1e-4 * float(x.abs().max()))
    # The same values laid out any other way are not rank 1: the layout matters.
    shuffled = x[torch.randperm(1000, generator=gen(16))]
    y = c.decode(compression.get("powersgd", rank=1).encode(shuffled, generator=gen(15)), 1000)
    assert not torch.allclose(y, shuffled, atol=1e-2 * float(x.abs().max()))


def test_powersgd_warm_start_converges_to_best_rank_r():
    # Power iteration with warm start reaches the Eckart-Young optimum on a fixed matrix.
    u, _ = torch.linalg.qr(torch.randn(30, 30, generator=gen(16)))
    v, _ = torch.linalg.qr(torch.randn(30, 30, generator=gen(17)))
    sigma = torch.tensor([10.0, 8.0] + [1.0 / (i + 1) for i in range(28)])
    matrix = u @ torch.diag(sigma) @ v.T
    c = compression.get("powersgd", rank=2, shape=(30, 30), error_feedback=False)
    g = gen(18)
    for _ in range(15):
        y = c.decode(c.encode(matrix.flatten(), generator=g), 900)
    best = float(torch.sqrt((sigma[2:] ** 2).sum()))
    assert float((y - matrix.flatten()).norm()) <= best * 1.01


# --- validation, determinism, registry ----------------------------------------------------

@pytest.mark.parametrize("name", ALL_HERE)
def test_malformed_payloads_raise(name):
    n = 1000
    c = compression.get(name)
    payload = c.encode(randn(n), generator=gen())
    for bad in (payload[:-1], payload + b"\x00", payload[: len(payload) // 2], b""):
        with pytest.raises(ValueError):
            c.decode(bad, n)
    for wrong in (n - 1, n + 1, n + 512, 0):
        with pytest.raises(ValueError):
            c.decode(payload, wrong)
    for wrong in (-1, 1.5, True):
        with pytest.raises(ValueError):
            c.decode(payload, wrong)


def test_corrupted_payload_contents_raise():
    x = randn(100)
    cases = {
        "fp16": lambda p: p[:2] + b"\x00\x7c" + p[4:],  # +inf in half precision
        "signsgd": lambda p: p[:4] + b"\x00\x00\xc0\x7f" + p[8:],  # NaN scale
        "onebit": lambda p: p[:4] + b"\x00\x00\x80\xbf" + p[8:],  # negative mean_nonneg
        "terngrad": lambda p: p[:8] + b"\xff" + p[9:],  # code 3
        "topk": lambda p: p[:4] + p[8:12] + p[4:8] + p[12:],  # indices out of order
        "powersgd": lambda p: p[:4] + b"\x00\x00\x80\x7f" + p[8:],  # +inf factor
    }
    for name, corrupt in cases.items():
        c = compression.get(name, **({"k": 5} if name == "topk" else {}))
        payload = c.encode(x, generator=gen())
        c.decode(payload, 100)
        with pytest.raises(ValueError):
            c.decode(corrupt(payload), 100)
    # Nonzero padding bits: 100 sign bits leave 4 padding bits in the last byte.
    c = compression.get("signsgd")
    payload = c.encode(x)
    with pytest.raises(ValueError, match="padding"):
        c.decode(payload[:-1] + bytes([payload[-1] | 1]), 100)


@pytest.mark.parametrize("name", MINE)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_gradient_raises(name, bad):
    x = randn(50)
    x[7] = bad
    with pytest.raises(ValueError):
        compression.get(name).encode(x, generator=gen())


@pytest.mark.parametrize("name", MINE)
def test_empty_and_float64_inputs(name):
    c = compression.get(name)
    assert c.decode(c.encode(torch.empty(0), generator=gen()), 0).shape == (0,)
    c = compression.get(name)
    y = c.decode(c.encode(randn(30).double(), generator=gen()), 30)
    assert y.dtype == torch.float32 and y.shape == (30,)


@pytest.mark.parametrize("name", MINE)
def test_seeded_encoding_is_bit_identical(name):
    xs = [randn(700, seed=s) for s in range(3)]

    def run() -> list[bytes]:
        c, g = compression.get(name), gen(42)
        return [c.encode(x, generator=g) for x in xs]

    assert run() == run()


def test_allreduce_compatible_exactly_for_none_fp16_powersgd():
    # Read the class attribute, so methods whose constructor needs parameters count too.
    compatible = {n for n in compression.names() if _REGISTRY[n].allreduce_compatible}
    assert compatible == {"none", "fp16", "powersgd"}


@pytest.mark.parametrize(
    "name,params",
    [
        ("topk", {"ratio": 0}),
        ("topk", {"ratio": 1.5}),
        ("topk", {"k": 0}),
        ("topk", {"ratio": 0.1, "k": 3}),
        ("onebit", {"bucket_size": 0}),
        ("terngrad", {"bucket_size": 2.5}),
        ("powersgd", {"rank": 0}),
        ("powersgd", {"shape": (3,)}),
        ("signsgd", {"levels": 3}),
    ],
)
def test_bad_parameters_raise(name, params):
    with pytest.raises(ValueError):
        compression.get(name, **params)


def test_powersgd_shape_too_small_raises():
    with pytest.raises(ValueError):
        compression.get("powersgd", shape=(3, 3)).encode(randn(10))

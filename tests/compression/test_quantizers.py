"""Oracles for qsgd, qsgdinf, nuqsgd: exact moments, known bounds, byte counts, golden bytes.

Monte-Carlo tolerances are derived, not guessed: for each statistic the exact standard error
follows from the two-point distribution of Q(v_i) - v_i (values scale·(b - r) with probability
p = (r - a)/(b - a), else -scale·(r - a)); a test passes if the estimate lies within 6 of its
standard errors, and asserts that this band is narrow (the test has power).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from simnet import compression
from simnet.compression.quantize import (Grid, bucket_scales, dequantize, exact_variance,
                                         nonzero_probability, stochastic_round, to_buckets)

METHODS = ["qsgd", "qsgdinf", "nuqsgd"]
NORM = {"qsgd": "l2", "qsgdinf": "linf", "nuqsgd": "l2"}


def grid_of(method: str, s: int) -> np.ndarray:
    """The level grids of DESIGN §3, written out independently of the library."""
    if method == "nuqsgd":
        return np.array([0.0] + [2.0 ** -(s - j) for j in range(s + 1)])
    return np.arange(s + 1) / s


def two_point(x: np.ndarray, method: str, s: int, d: int):
    """float64 oracle per coordinate: (scale, r, p_up, err_up, err_down), flattened to n."""
    n = x.size
    nb = -(-n // d)
    xb = np.zeros(nb * d)
    xb[:n] = x
    xb = xb.reshape(nb, d)
    scale = (np.linalg.norm(xb, axis=1) if NORM[method] == "l2" else np.abs(xb).max(1))[:, None]
    r = np.minimum(np.abs(xb) / np.where(scale > 0, scale, 1.0), 1.0)
    lv = grid_of(method, s)
    j = np.clip(np.searchsorted(lv, r, side="right") - 1, 0, lv.size - 2)
    a, b = lv[j], lv[j + 1]
    p = (r - a) / (b - a)
    flat = lambda t: np.broadcast_to(t, xb.shape).reshape(-1)[:n]  # noqa: E731
    return flat(scale), flat(r), flat(p), flat(scale * (b - r)), flat(scale * (r - a))


def draws(c, x: torch.Tensor, reps: int, seed: int) -> np.ndarray:
    """reps independent Q(x), all in one kernel call: [reps, n] float64."""
    g = torch.Generator().manual_seed(seed)
    scales, idx, neg = c.quantize(x.expand(reps, -1).contiguous(), g)
    q = dequantize(idx, neg, scales, c.grid).reshape(reps, -1)[:, : x.numel()]
    return q.double().numpy()


CASES = [(m, n, s, d) for m in METHODS for n in (1024, 8192)
         for s, d in ((1, 64), (3, 512), (7, 128))]
CASES += [("qsgd", 1024, 3000, 64), ("qsgdinf", 1024, 3000, 64)]  # float64 path, s > 1024


@pytest.mark.parametrize("method,n,s,d", CASES)
def test_unbiased_and_exact_variance(method, n, s, d):
    reps = 256 if n == 1024 else 64
    x = torch.randn(n, generator=torch.Generator().manual_seed(n + s + d))
    x[:: 7] *= 5.0  # uneven magnitudes inside each bucket
    c = compression.get(method, levels=s, bucket_size=d)
    q = draws(c, x, reps, seed=1)
    xn = x.double().numpy()
    _, _, p, up, dn = two_point(xn, method, s, d)
    var = p * up**2 + (1 - p) * dn**2  # = scale² (b - r)(r - a)
    mu4 = p * up**4 + (1 - p) * dn**4
    # the library's oracle agrees with this independent one
    lib = exact_variance(x, c.grid, NORM[method], d).numpy()
    np.testing.assert_allclose(lib, var, rtol=1e-9, atol=1e-12)

    # unbiasedness: S = ‖mean - x‖², E S = Σσ²/R, Var S from the exact 4th moments
    err = q - xn
    s_stat = float(((err.mean(0)) ** 2).sum())
    e_s = var.sum() / reps
    m4_mean = (reps * mu4 + 3 * reps * (reps - 1) * var**2) / reps**4
    sd_s = math.sqrt(float((m4_mean - (var / reps) ** 2).sum()))
    assert sd_s < 0.5 * e_s, "test has no power"
    assert abs(s_stat - e_s) <= 6 * sd_s, (s_stat, e_s, sd_s)
    total_sd = math.sqrt(var.sum() / reps)
    assert abs(err.mean(0).sum()) <= 6 * total_sd

    # variance: per coordinate mean of (Q - x)² vs σ², summed per bucket and overall
    mse = (err**2).mean(0)
    se2 = (mu4 - var**2) / reps
    assert math.sqrt(se2.sum()) < 0.05 * var.sum(), "test has no power"
    assert abs(mse.sum() - var.sum()) <= 6 * math.sqrt(se2.sum())
    nb = -(-n // d)
    pad = nb * d - n
    bucket = lambda t: np.pad(t, (0, pad)).reshape(nb, d).sum(1)  # noqa: E731
    assert (np.abs(bucket(mse) - bucket(var)) <= 6 * np.sqrt(bucket(se2)) + 1e-12).all()


@pytest.mark.parametrize("method,s", [("qsgd", 1), ("qsgd", 7), ("qsgdinf", 300),
                                      ("nuqsgd", 1), ("nuqsgd", 6), ("nuqsgd", 120)])
def test_fast_paths_match_the_binary_search_definition(method, s):
    """The closed-form brackets (uniform: floor; exponential: frexp) pick the same level as a
    binary search over the grid, with the same uniforms: exactly for the exponential grid
    (2m - 1 is exact), up to float rounding ties for the uniform one."""
    g = torch.Generator().manual_seed(s)
    x = torch.randn(50_000, generator=g) * torch.rand(50_000, generator=g) ** 8
    x[::17] = 0.0
    x[5] = 1e-40  # subnormal
    x[200:400] = 0.0  # bucket 2 all zero
    x[300] = -3.0  # bucket 3: its only nonzero has r = 1
    c = compression.get(method, levels=s, bucket_size=100)
    xb = to_buckets(x, 100)
    scales = bucket_scales(xb, NORM[method])
    fast = stochastic_round(xb, scales, c.grid, torch.Generator().manual_seed(1))
    slow = stochastic_round(xb, scales, Grid(c.grid.levels, "general"),
                            torch.Generator().manual_seed(1))
    assert torch.equal(fast[1], slow[1]) or method != "nuqsgd"
    mismatch = (fast[0] != slow[0]).sum().item()
    assert mismatch == 0 if method == "nuqsgd" else mismatch <= 5
    assert fast[0].view(-1)[300].item() == c.grid.size - 1


def test_biased_rounding_fails_the_unbiasedness_statistic():
    """Power check: rounding to the nearest level instead must be caught by the same test."""
    n, s, d, reps = 1024, 3, 64, 256
    x = torch.randn(n, generator=torch.Generator().manual_seed(0)).double().numpy()
    scale, r, p, up, dn = two_point(x, "qsgd", s, d)
    nearest = np.sign(x) * scale * np.round(r * s) / s
    var = p * up**2 + (1 - p) * dn**2
    s_stat = float(((nearest - x) ** 2).sum())  # the same for every repetition
    assert s_stat > var.sum() / reps + 6 * math.sqrt(2 * (var**2).sum()) / reps


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["gauss", "flat", "onehot", "heavy", "tiny", "zero"])
@pytest.mark.parametrize("s,d", [(1, 16), (2, 512), (7, 512), (16, 100), (4, 4096)])
def test_known_bounds(method, kind, s, d):
    n = 8192
    g = torch.Generator().manual_seed(s * d)
    x = {"gauss": torch.randn(n, generator=g), "flat": torch.ones(n),
         "onehot": torch.zeros(n).index_fill_(0, torch.tensor([5]), 3.0),
         "heavy": torch.randn(n, generator=g) ** 5, "tiny": torch.randn(n, generator=g) * 1e-30,
         "zero": torch.zeros(n)}[kind]
    c = compression.get(method, levels=s, bucket_size=d)
    xn = x.double().numpy()
    nb = -(-n // d)
    per_bucket = lambda t: np.pad(t, (0, nb * d - n)).reshape(nb, d).sum(1)  # noqa: E731
    var = per_bucket(exact_variance(x, c.grid, NORM[method], d).numpy())
    sq = per_bucket(xn**2)
    nnz = nonzero_probability(x, c.grid, NORM[method], d).numpy()
    scale, r, *_ = two_point(xn, method, s, d)
    if method == "qsgd":
        assert (var <= min(d / s**2, math.sqrt(d) / s) * sq * (1 + 1e-9)).all()
        np.testing.assert_allclose(nnz, np.minimum(1.0, s * r), rtol=1e-12, atol=1e-15)
        assert (per_bucket(nnz) <= s * (s + math.sqrt(d)) + 1e-9).all()
    elif method == "nuqsgd":
        bound = 1 / 8 + min(d / 2 ** (2 * s + 2), math.sqrt(d) / 2**s)
        assert (var <= bound * sq * (1 + 1e-9)).all()
    if kind == "zero":
        assert not var.any() and not nnz.any()


@pytest.mark.parametrize("method", METHODS)
def test_expected_nonzeros_monte_carlo(method):
    n, s, d, reps = 8192, 3, 512, 64
    x = torch.randn(n, generator=torch.Generator().manual_seed(3))
    c = compression.get(method, levels=s, bucket_size=d)
    p = nonzero_probability(x, c.grid, NORM[method], d).numpy()
    count = (draws(c, x, reps, seed=4) != 0).sum(1).mean()
    assert abs(count - p.sum()) <= 6 * math.sqrt((p * (1 - p)).sum() / reps)


def fixed_len(method: str, n: int, s: int, d: int) -> int:
    points = s + 2 if method == "nuqsgd" else s + 1
    k = 1 + max(1, math.ceil(math.log2(points)))
    h = 1 + max(1, math.ceil(n.bit_length() / 7))  # format byte + LEB128 numel
    return h if n == 0 else h + 4 * -(-n // d) + -(-n * k // 8)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n", [0, 1, 7, 127, 128, 513, 8192, 16384, 10007])
@pytest.mark.parametrize("s,d", [(1, 1), (2, 512), (7, 64), (14, 100), (60, 9), (5000, 33)])
def test_fixed_length_and_kernel_roundtrip(method, n, s, d):
    if method == "nuqsgd" and s > 120:
        s = 120
    c = compression.get(method, levels=s, bucket_size=d)
    x = torch.randn(n, generator=torch.Generator().manual_seed(n))
    payload = c.encode(x, generator=torch.Generator().manual_seed(9))
    assert len(payload) == fixed_len(method, n, s, d)
    y = c.decode(payload, n)
    assert y.dtype == torch.float32 and y.shape == (n,)
    g = torch.Generator().manual_seed(9)
    scales, idx, neg = c.quantize(x, g)
    assert torch.equal(y, dequantize(idx, neg, scales, c.grid).reshape(-1)[:n])


def test_bits_sugar_and_parameter_errors():
    assert compression.get("qsgd", bits=4).levels == 7
    assert compression.get("qsgdinf", bits=2).levels == 1
    assert compression.get("nuqsgd", bits=4).levels == 6
    for m in METHODS:
        c = compression.get(m, bits=4)
        assert c.fixed_bits == 4 and c.grid.size == 8
        cfg = c.config()
        assert compression.get(cfg.pop("name"), **cfg).config() == c.config()
    bad = [dict(levels=7, bits=4), dict(), dict(levels=0), dict(levels=True), dict(levels=2.0),
           dict(levels=3, bucket_size=0), dict(levels=3, encoding="zip"), dict(bits=1)]
    for m in METHODS:
        for kw in bad + ([dict(bits=2)] if m == "nuqsgd" else []):
            with pytest.raises(ValueError):
                compression.get(m, **kw)


def test_grids_are_the_documented_ones():
    for m, s in [("qsgd", 5), ("qsgdinf", 3), ("nuqsgd", 4)]:
        np.testing.assert_array_equal(np.array(compression.get(m, levels=s).grid.levels),
                                      grid_of(m, s))


GOLDEN = [  # hand-worked: levels land exactly on grid points, so rounding is deterministic.
    # Header: format byte 0x01 (fixed), numel 4 as LEB128 (0x04).
    # qsgd s=5, d=4, x=[0,3,0,-4]: scale 5 (0x40a00000); r·s = [0,3,0,4]; k = 1+3 bits:
    # 0|000 0|011 0|000 1|100 -> 0x03 0x0c
    ("qsgd", 5, [0.0, 3.0, 0.0, -4.0], "0104" "40a00000" "030c"),
    # qsgdinf s=2, d=4, x=[2,-1,0,0]: scale 2 (0x40000000); idx [2,1,0,0]; k = 1+2 bits:
    # 010 101 000 000 (+4 pad) -> 0x54 0x00
    ("qsgdinf", 2, [2.0, -1.0, 0.0, 0.0], "0104" "40000000" "5400"),
]


@pytest.mark.parametrize("method,s,x,hexbytes", GOLDEN)
def test_golden_fixed_bytes(method, s, x, hexbytes):
    c = compression.get(method, levels=s, bucket_size=4)
    payload = c.encode(torch.tensor(x), generator=torch.Generator().manual_seed(0))
    assert payload.hex() == hexbytes
    assert c.decode(payload, 4).tolist() == x


@pytest.mark.parametrize("method", METHODS)
def test_seeded_bit_identical_and_batch(method):
    c = compression.get(method, levels=3, bucket_size=100)
    x = torch.randn(1000)
    p1 = c.encode(x, generator=torch.Generator().manual_seed(5))
    p2 = c.encode(x, generator=torch.Generator().manual_seed(5))
    p3 = c.encode(x, generator=torch.Generator().manual_seed(6))
    assert p1 == p2 and p1 != p3
    xs = torch.randn(4, 1000)
    batch = c.encode_batch(xs, generator=torch.Generator().manual_seed(7))
    scales, idx, neg = c.quantize(xs, torch.Generator().manual_seed(7))
    ref = dequantize(idx, neg, scales, c.grid).reshape(4, -1)[:, :1000]
    for k in range(4):
        assert torch.equal(c.decode(batch[k], 1000), ref[k])
    assert c.encode_batch(torch.zeros(0, 5)) == []


@pytest.mark.parametrize("method", METHODS)
def test_edge_inputs(method):
    c = compression.get(method, levels=3, bucket_size=8)
    assert torch.equal(c.decode(c.encode(torch.zeros(20)), 20), torch.zeros(20))
    assert c.decode(c.encode(torch.zeros(0)), 0).shape == (0,)
    for bad in (torch.tensor([1.0, float("nan")]), torch.tensor([float("inf")]),
                torch.zeros(2, 2), torch.arange(3)):
        with pytest.raises(ValueError):
            c.encode(bad)
    p = c.encode(torch.randn(20))
    for numel in (19, 21, 0, -1):
        with pytest.raises(ValueError):
            c.decode(p, numel)
    for scale in (float("nan"), float("inf"), -1.0):  # corrupt the first bucket's scale
        q = p[:2] + np.array([scale], ">f4").tobytes() + p[6:]
        with pytest.raises(ValueError, match="scale"):
            c.decode(q, 20)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("encoding", ["fixed", "elias", "entropy"])
@pytest.mark.parametrize("method", METHODS)
def test_cuda_payload_is_byte_identical_to_cpu(method, encoding):
    # the same uniforms (a CPU generator's draws are copied to the device) and scales summed
    # in one fixed order (quantize.l2_norms): every later step is exact or one IEEE operation
    c = compression.get(method, levels=7, bucket_size=128, encoding=encoding)
    x = torch.randn(5000, generator=torch.Generator().manual_seed(0))
    cpu = c.encode(x, generator=torch.Generator().manual_seed(1))
    gpu = c.encode(x.cuda(), generator=torch.Generator().manual_seed(1))
    assert gpu == cpu
    batch = c.encode_batch(torch.stack([x, -x]).cuda(), generator=torch.Generator().manual_seed(2))
    assert batch == c.encode_batch(torch.stack([x, -x]), generator=torch.Generator().manual_seed(2))

"""Bucket L2 norms in one fixed summation order (`quantize.l2_norms`): the same bits on every
device, thread count and batch shape, so CPU and CUDA payloads can be byte-identical.

Oracle: the definition written again in plain numpy float32 (a recursive pairwise sum), which
the torch code and the compiled kernel must match bit for bit."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from simnet.compression import jit
from simnet import compression
from simnet.compression.quantize import l2_norms, norms_flat, to_buckets

from kernel_paths import on_both, on_path


def pairwise(v: np.ndarray) -> np.float32:
    """The float64 squares of v, zero-padded to a power of two, summed first half + second
    half, element by element, until one value is left; its sqrt rounded to float32."""
    sq = v.astype(np.float64) ** 2
    width = 1 << max(0, (len(sq) - 1).bit_length())
    sq = np.concatenate([sq, np.zeros(width - len(sq))])
    while len(sq) > 1:
        half = len(sq) // 2
        sq = sq[:half] + sq[half:]
    return np.float32(np.sqrt(sq[0]))


def oracle(x: torch.Tensor, d: int) -> np.ndarray:
    xb = to_buckets(x, d).numpy()
    return np.array([pairwise(row) for row in xb.reshape(-1, d)], np.float32).reshape(xb.shape[:-1])


def bits(t) -> np.ndarray:
    return np.asarray(t, np.float32).view(np.uint32)


@pytest.mark.parametrize("d", [1, 2, 3, 7, 8, 16, 32, 128, 256, 500, 512, 513, 4096])
@pytest.mark.parametrize("n", [1, 1000, 70_001])  # 70_001: the kernel on threads, a short tail
def test_both_paths_match_the_definition_bit_for_bit(d, n):
    x = torch.randn(n, generator=torch.Generator().manual_seed(d + n)) * 3
    want = bits(oracle(x, d))
    for got in on_both(lambda: l2_norms(to_buckets(x, d))) + on_both(lambda: norms_flat(x, d, "l2")):
        assert np.array_equal(bits(got), want)


def test_known_values():
    assert float(l2_norms(torch.tensor([[3.0, 4.0]]))[0]) == 5.0
    assert float(l2_norms(torch.ones(1, 512))[0]) == float(np.sqrt(np.float32(512)))
    assert float(l2_norms(torch.zeros(1, 9))[0]) == 0.0
    for v in (3e19, 1e-41, 1e38):  # float32 squares would overflow / underflow to 0
        x = torch.full((1, 4), v)
        assert float(l2_norms(x)[0]) == float(2 * x[0, 0].double())  # sqrt(4 v²), exact
    assert torch.isinf(l2_norms(torch.full((1, 512), 3e38)))  # the norm itself > float32 max


def test_close_to_torch_norm():
    x = torch.randn(64, 512, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(l2_norms(x), torch.linalg.vector_norm(x, dim=-1), rtol=1e-6, atol=0)


def test_same_bits_whatever_the_batch_shape_layout_or_threads():
    x = torch.randn(3, 40, 96, generator=torch.Generator().manual_seed(4))
    want = bits(l2_norms(x))
    assert np.array_equal(bits(l2_norms(x.reshape(120, 96))).reshape(3, 40), want)
    assert np.array_equal(bits(l2_norms(x[1:2])), want[1:2])
    strided = torch.empty(3, 40, 192)[..., ::2]  # not contiguous
    strided.copy_(x)
    assert np.array_equal(bits(l2_norms(strided)), want)
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert np.array_equal(bits(on_path(False, lambda: l2_norms(x))), want)
    finally:
        torch.set_num_threads(saved)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 40), st.integers(1, 300), st.integers(0, 2**32 - 1),
       st.sampled_from([1e-42, 1e-30, 1e-3, 1.0, 1e15, 1e37]))
def test_kernel_equals_torch_tree(rows, d, seed, magnitude):
    if not jit.enabled():
        pytest.skip("compiled kernels are off")
    x = torch.randn(rows, d, generator=torch.Generator().manual_seed(seed)) * magnitude
    x[0, 0] = 0.0
    kernel, vectorised = on_both(lambda: l2_norms(x))
    assert np.array_equal(bits(kernel), bits(vectorised))


@pytest.mark.parametrize("kernels", [True, False])
def test_huge_coordinates_scale_exactly_until_the_norm_leaves_float32(kernels):
    c = compression.get("qsgd", levels=3, bucket_size=4)
    x = torch.tensor([1e20, -1e20, 1e20, 0.0, 5.0])  # float32 squares of 1e20 overflow
    scales, idx, _ = on_path(kernels, lambda: c.quantize(x, torch.Generator().manual_seed(0)))
    assert float(scales[0]) == float(np.float32(np.sqrt(3.0) * np.float64(np.float32(1e20))))
    assert float(scales[1]) == 5.0 and idx[1, 0] == 3  # the tail bucket: r = 1
    with pytest.raises(ValueError, match="too large"):
        on_path(kernels, lambda: c.encode(torch.full((8,), 3e38)))  # norm 6e38 > float32 max


@pytest.mark.parametrize("d", [1, 3, 512, 513])
@pytest.mark.parametrize("n", [1, 1000, 70_001])
def test_max_magnitudes_match_amax_on_both_paths(d, n):
    """The linf scale (qsgdinf): the compiled integer max of the bit patterns is torch's
    amax of |x|, exactly, -0.0, subnormals and the short last bucket included."""
    x = torch.randn(n, generator=torch.Generator().manual_seed(d * n)) * 3
    x[:3] = torch.tensor([-0.0, 1e-42, -1e-40])[:n]
    want = bits(to_buckets(x, d).abs().amax(-1))
    for got in on_both(lambda: norms_flat(x, d, "linf")) + on_both(
            lambda: compression.quantize.bucket_scales(to_buckets(x, d), "linf")):
        assert np.array_equal(bits(got), want)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_coordinate_makes_its_max_magnitude_nan(bad):
    x = torch.ones(1536)
    x[700] = bad
    got = on_path(True, lambda: norms_flat(x, 512, "linf")).numpy()
    assert np.isnan(got[1]) and list(got[[0, 2]]) == [1.0, 1.0]

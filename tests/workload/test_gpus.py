"""GPU catalogue: datasheet figures, fallbacks and lookups."""

import pytest

from simnet.workload import gpus


def test_catalogue_holds_the_four_generations():
    assert gpus.names() == ["A100", "H100", "K80", "V100"]
    assert gpus.peak_flops("A100", "fp32") == 19.5e12 and gpus.get("a100").memory_bandwidth == 2039e9
    assert gpus.peak_flops("H100", "fp16") == pytest.approx(989.5e12)


def test_newer_gpus_are_faster_and_tensor_cores_beat_fp32():
    order = ["K80", "V100", "A100", "H100"]
    for precision in ("fp32", "fp16"):
        rates = [gpus.peak_flops(g, precision) for g in order]
        assert rates == sorted(rates)
    for g in ("A100", "H100"):
        assert gpus.peak_flops(g, "fp16") > gpus.peak_flops(g, "tf32") > gpus.peak_flops(g, "fp32")


def test_missing_units_fall_back_to_fp32():
    assert gpus.peak_flops("V100", "tf32") == gpus.peak_flops("V100", "fp32") == 15.7e12
    assert gpus.peak_flops("K80", "fp16") == gpus.peak_flops("K80") == 8.73e12 / 2


def test_unknown_names():
    with pytest.raises(gpus.GPUError, match="known: A100"):
        gpus.get("P100")
    with pytest.raises(gpus.GPUError, match="precision"):
        gpus.peak_flops("A100", "fp8")

"""GPU catalogue: vendor peak arithmetic rates and memory bandwidth, in SI units.

Figures are NVIDIA datasheet peaks (boost clocks), dense (the datasheets' "with sparsity"
tensor-core figures are halved), for ONE CUDA device, i.e. what one data-parallel worker
gets. A `None` rate means the GPU has no units for that precision; `peak_flops` then falls
back to the FP32 rate, which is what frameworks run such matmuls at.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GPU", "GPUError", "get", "names", "peak_flops"]

TERA = 1e12
GB = 1e9


class GPUError(ValueError):
    """Unknown GPU name or precision."""


@dataclass(frozen=True)
class GPU:
    """One device. Rates in FLOP/s, bandwidth in B/s, memory in bytes."""

    name: str
    fp32_flops: float
    tf32_flops: float | None
    fp16_flops: float | None
    memory_bandwidth: float
    memory_bytes: float
    source: str


_CATALOGUE = {
    # Tesla K80 datasheet (NVIDIA, 2014): per board (2x GK210) 8.73 TFLOP/s FP32 with GPU
    # Boost, 480 GB/s, 24 GB GDDR5; a board shows as two CUDA devices (AWS p2 instances count
    # each as one GPU, as the QSGD paper's experiments did), so half of each. Kepler has no
    # tensor cores and no fast FP16.
    "K80": GPU("K80", 8.73 / 2 * TERA, None, None, 480 / 2 * GB, 24 / 2 * GB,
               "NVIDIA Tesla K80 datasheet, per GK210 device (half a board)"),
    # Tesla V100 SXM2 datasheet (NVIDIA, 2017/2020): FP32 15.7 TFLOP/s, Tensor (FP16) 125
    # TFLOP/s, HBM2 900 GB/s, 16 or 32 GB (32 here). No TF32 (introduced with Ampere).
    "V100": GPU("V100", 15.7 * TERA, None, 125 * TERA, 900 * GB, 32 * GB,
                "NVIDIA Tesla V100 datasheet, SXM2"),
    # A100 80GB SXM datasheet (NVIDIA, 2021): FP32 19.5 TFLOP/s, TF32 Tensor 156 (312 with
    # sparsity), FP16 Tensor 312 (624 with sparsity), HBM2e 2,039 GB/s, 80 GB.
    "A100": GPU("A100", 19.5 * TERA, 156 * TERA, 312 * TERA, 2039 * GB, 80 * GB,
                "NVIDIA A100 datasheet, 80GB SXM"),
    # H100 SXM datasheet (NVIDIA, 2023): FP32 67 TFLOP/s, TF32 Tensor 989 and FP16 Tensor
    # 1,979 TFLOP/s *with sparsity* (so 494.5 and 989.5 dense), HBM3 3.35 TB/s, 80 GB.
    "H100": GPU("H100", 67 * TERA, 989 / 2 * TERA, 1979 / 2 * TERA, 3350 * GB, 80 * GB,
                "NVIDIA H100 Tensor Core GPU datasheet, SXM5"),
}

_PRECISIONS = ("fp32", "tf32", "fp16")


def names() -> list[str]:
    """Every GPU in the catalogue."""
    return sorted(_CATALOGUE)


def get(name: str) -> GPU:
    """Look a GPU up by name, case-insensitively ('a100' finds 'A100')."""
    gpu = _CATALOGUE.get(name.strip().upper())
    if gpu is None:
        raise GPUError(f"unknown GPU {name!r}; known: {', '.join(names())}")
    return gpu


def peak_flops(name: str, precision: str = "fp32") -> float:
    """Peak FLOP/s of `name` for matmuls in `precision` ('fp32', 'tf32' or 'fp16')."""
    if precision not in _PRECISIONS:
        raise GPUError(f"unknown precision {precision!r}; known: {', '.join(_PRECISIONS)}")
    gpu = get(name)
    rate = getattr(gpu, f"{precision}_flops")
    return gpu.fp32_flops if rate is None else rate

"""Encode/decode time on a modelled GPU, for scenarios whose compute is `flops` on a named GPU.

Measuring the codecs on this machine's CPU would charge a GPU cluster for CPU encoding, so
such scenarios model them instead as memory-bound kernels: seconds = passes x (4 bytes x
coordinates) / the GPU's memory bandwidth. A pass is one read or write of the fp32
gradient. The pass counts below are assumptions (stated, pinned into
scenario.resolved.yaml, and overridable per compressor with encode_s / decode_s), not GPU
measurements:

- none: 0 (the fp32 buffer is all-reduced in place);
- fp16: a cast, 1.5 passes each way (read fp32, write fp16);
- every other method: 6 passes to encode (norm or scale, random draws, rounding, packing)
  and 3 to decode (unpacking, scaling, writing fp32): the "within 10x a memory pass on a
  GPU" target of the compression benchmark.
"""

from __future__ import annotations

PASSES = {"none": (0.0, 0.0), "fp16": (1.5, 1.5)}
DEFAULT_PASSES = (6.0, 3.0)


def modelled_codec_s(method: str, numel: int, memory_bandwidth: float) -> tuple[float, float]:
    """(encode seconds, decode seconds) of one worker's gradient of `numel` coordinates."""
    encode, decode = PASSES.get(method, DEFAULT_PASSES)
    one_pass = 4.0 * numel / memory_bandwidth
    return encode * one_pass, decode * one_pass

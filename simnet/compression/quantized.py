"""Shared plumbing of the grid quantizers (qsgd, qsgdinf, nuqsgd): parameters, encode, decode.

A method module only says which scale (`norm`) and which grid it uses, and how `bits` maps
to `levels`. Parameters (the scenario keys):
    levels       s >= 1 (int): the grid parameter (qsgd/qsgdinf: s + 1 points, nuqsgd: s + 2).
    bucket_size  d >= 1 (int, default 512): coordinates per bucket, each with its own scale.
    encoding     "fixed" (default), "elias", "entropy" or "auto" (see `wire.py`).
    bits         sugar for levels, in the papers' convention: 1 sign bit + (bits - 1) bits of
                 level index, i.e. a grid of 2^(bits-1) points. Give levels or bits, not both.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from . import (elias, entropy, grid_kernels, jit, level_keys, norm_kernels, round_kernels,
               scratch, threads, wire)
from .base import Compressor, check_gradient, check_numel
from .quantize import Grid, bucket_scales, norms_flat, round_with, stochastic_round, to_buckets
from .threads import parallel_map
from .uniforms import fill, stream_seed

ENCODINGS = ("fixed", "elias", "entropy", "auto")
CHUNK_COORDS = 1 << 18  # coordinates per chunk of the CPU `fixed` encoder (1 MiB of float32)


def _int_param(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return value


class GridQuantizer(Compressor):
    """Per-bucket scale + unbiased stochastic rounding onto a grid, then a wire format."""

    norm: ClassVar[str] = "l2"  # "l2" or "linf"
    max_levels: ClassVar[int] = 2**16 - 1  # 17-bit fixed fields at most

    def __init__(self, levels: int | None = None, bucket_size: int = 512,
                 encoding: str = "fixed", bits: int | None = None) -> None:
        if levels is not None and bits is not None:
            raise ValueError(f"{self.name}: give either levels or bits, not both")
        if levels is None and bits is None:
            raise ValueError(f"{self.name}: give levels (s) or bits")
        if bits is not None:
            lo = self.min_bits()
            _int_param(f"{self.name} bits", bits, lo, self.max_bits())
            levels = self.levels_for_bits(bits)
        self.levels = _int_param(f"{self.name} levels", levels, 1, self.max_levels)
        self.bucket_size = _int_param(f"{self.name} bucket_size", bucket_size, 1, 2**31 - 1)
        if encoding not in ENCODINGS:
            raise ValueError(f"{self.name}: encoding must be one of {ENCODINGS}, got {encoding!r}")
        self.encoding = encoding
        self.grid: Grid = self.make_grid(self.levels)
        # auto: whether the last payload needed elias's exact size, so that the next one
        # counts elias's gap codes while it rounds (a speed hint: the bytes never depend on it)
        self._auto_sizes_elias = False
        if encoding == "entropy":
            from .entropy import check_supported  # noqa: PLC0415

            check_supported(self.grid, self.name)

    # -- what a method defines -------------------------------------------------------------
    @classmethod
    def make_grid(cls, s: int) -> Grid:
        raise NotImplementedError

    @classmethod
    def levels_for_bits(cls, bits: int) -> int:
        """qsgd/qsgdinf: s = 2^(bits-1) - 1 (grid of 2^(bits-1) points)."""
        return 2 ** (bits - 1) - 1

    @classmethod
    def min_bits(cls) -> int:
        return 2

    @classmethod
    def max_bits(cls) -> int:
        return 17

    # -- protocol --------------------------------------------------------------------------
    @property
    def fixed_bits(self) -> int:
        """Bits per coordinate in the `fixed` format: 1 sign + ceil(log2(grid size))."""
        return 1 + self.grid.index_bits

    def config(self) -> dict:
        return {"name": self.name, "levels": self.levels, "bucket_size": self.bucket_size,
                "encoding": self.encoding}

    def checked_scales(self, xb: torch.Tensor) -> torch.Tensor:
        """Per-bucket scales of [..., B, d] buckets (float32 [..., B]), checked finite."""
        return self._finite(bucket_scales(xb, self.norm), xb)

    @staticmethod
    def _finite(scales: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """scales, or ValueError when one is not finite: checked on the scales (a NaN or Inf
        coordinate makes its bucket's scale non-finite), which saves check_gradient's full
        pass over the input. With finite input, only an L2 norm beyond float32's range is
        left (its squares are summed in float64, so they cannot overflow on the way)."""
        if scales.numel() and not bool(torch.isfinite(scales).all()):
            check_gradient(x.reshape(-1))  # NaN/Inf -> ValueError naming them
            raise ValueError("gradient too large: a bucket's L2 norm exceeds the float32 range")
        return scales

    def quantize(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """[..., n] -> (scales [..., B], level indices [..., B, d], negative mask [..., B, d])."""
        d = self.bucket_size
        fast = self._kernel_grid()
        if fast is None or not self._on_cpu(x, generator):
            xb = to_buckets(x, d)
            scales = self.checked_scales(xb)
            idx, neg = stochastic_round(self._precise(xb), scales, self.grid, generator)
            return scales, idx, neg
        # compiled: the same uniforms (drawn chunk by chunk from the same stream), one pass
        if x.dim() == 1:  # read in place: no padded copy of the gradient
            x = x.contiguous()
            scales = self._scales_unpadded(x)
            flat, shape = x.numpy(), (scales.numel(), d)
        else:
            xb = to_buckets(x, d)
            scales = self.checked_scales(xb)
            flat, shape = xb.contiguous().reshape(-1).numpy(), xb.shape
        seed, sc = stream_seed(generator), scales.reshape(-1).numpy()
        idx = np.empty(sc.size * d, self._index_dtype)
        neg = np.empty(sc.size * d, np.bool_)
        idx[flat.size:], neg[flat.size:] = 0, False  # the tail's padding: level 0, as zeros
        rows = wire.chunk_rows(d, CHUNK_COORDS)

        def round_chunk(r0: int) -> None:
            part = flat[r0 * d:(r0 + rows) * d]
            at = slice(r0 * d, r0 * d + part.size)
            round_kernels.quantize_rows(part, sc[r0:r0 + rows], seed, r0 * d, d,
                                        *fast, idx[at], neg[at])

        parallel_map(round_chunk, range(0, sc.size, rows))
        return scales, torch.from_numpy(idx).view(shape), torch.from_numpy(neg).view(shape)

    def _precise(self, xb: torch.Tensor) -> torch.Tensor:
        # float32 r·s would lose the fraction that sets P(round up) beyond ~1024 levels
        return xb.double() if self.levels > 1024 else xb

    @property
    def _index_dtype(self):
        """The numpy dtype of `Grid.index_dtype`, for the kernels' level indices."""
        return np.uint8 if self.grid.index_dtype == torch.uint8 else np.int32

    def _kernel_grid(self) -> tuple[int, int] | None:
        """(kernel grid code, grid parameter s) when the compiled kernels apply, else None."""
        code = grid_kernels.grid_code(self.grid, self.levels) if jit.enabled() else None
        if code is None:
            return None
        return code, self.grid.size - (1 if code == grid_kernels.UNIFORM else 2)

    @property
    def _norm_code(self) -> int:
        """`norm_kernels`' code of this method's scale."""
        return norm_kernels.L2 if self.norm == "l2" else norm_kernels.LINF

    def _scales_unpadded(self, x: torch.Tensor) -> torch.Tensor:
        """`checked_scales` of a 1-D x without padding all of it to whole buckets (a copy of
        the gradient), the same float32 values: the norms read the short last bucket in
        place."""
        return self._finite(norms_flat(x, self.bucket_size, self.norm), x)

    def _encode_fixed_cpu(self, x: torch.Tensor, generator: torch.Generator | None) -> bytes:
        """The `fixed` payload of a CPU tensor, chunk by chunk: the same bytes as quantize ->
        wire.encode (the same uniforms, drawn per chunk from the same stream), but with every
        temporary cache-sized and reused instead of full-size (each fresh full-size array costs
        page faults comparable to a pass over the gradient). Without the compiled kernels (with
        them `_encode_fixed_compiled` does this in one pass)."""
        n, d, grid = x.numel(), self.bucket_size, self.grid
        xb = to_buckets(x, d)
        scales = self.checked_scales(xb)
        seed = stream_seed(generator)
        rows = wire.chunk_rows(d, CHUNK_COORDS)
        out, pos = wire.fixed_frame(scales, n, d, grid)
        u = np.empty(rows * d, np.float32)
        for r0 in range(0, xb.shape[0], rows):
            xc = xb[r0:r0 + rows]
            uc = u[:xc.numel()]
            fill(seed, uc, r0 * d)
            idx, neg = round_with(self._precise(xc), scales[r0:r0 + rows], grid,
                                  torch.from_numpy(uc).view(xc.shape))
            packed = wire.pack_fields(idx, neg, grid, n - r0 * d)
            out[pos:pos + packed.size] = packed
            pos += packed.size
        return out.tobytes()

    def _encode_fixed_compiled(self, x: torch.Tensor, seed: int, off: int,
                               fast: tuple[int, int]) -> bytes:
        """`_encode_fixed_cpu` with the compiled kernels (coordinate i with draw off + i of
        the stream `seed`): chunks on numba's threads (`threads.team_ready`) or the pool's,
        each scaled, rounded and packed in one pass, the gradient read in place (no padded
        copy); the header and scales are written last. `norm_kernels.ScaleNotFinite` when a
        scale is not finite."""
        n, d, grid, norm = x.numel(), self.bucket_size, self.grid, self._norm_code
        rows = wire.chunk_rows(d, CHUNK_COORDS)
        sc = np.empty(-(-n // d), np.float32)
        out = scratch.array("encode.fixed", wire.fixed_nbytes(n, d, grid), np.uint8)
        pos = wire.fixed_fields_at(n, sc.size)  # the header and scales go in last
        k = grid.index_bits + 1
        chunks = -(-sc.size // rows)
        head = (x.numpy(), sc, norm, seed, off, d, *fast, k - 1, rows,
                np.empty(0, self._index_dtype), out[pos:])
        bad = np.empty(chunks, np.int64)  # per chunk: the first bucket not finite, or -1
        threads.run_chunks("simnet-fixed", round_kernels.quantize_pack_chunks,
                           round_kernels.quantize_pack_chunk, head, bad)
        if (bad >= 0).any():
            raise norm_kernels.ScaleNotFinite(sc)
        wire.write_fixed_head(out, torch.from_numpy(sc), n)
        return out.tobytes()

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            check_gradient(x)  # raises with base's message
        return x.detach().float()

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> bytes:
        x = self._prepare(x)
        if x.dim() != 1:
            check_gradient(x)
        fast = self._fused_grid(x, generator)
        if fast is not None:  # the fused CPU encoders scale and round on the way, in one pass
            return self._encode_compiled(x.contiguous(), stream_seed(generator), 0, fast)
        if self.encoding == "fixed" and self._on_cpu(x, generator):
            return self._encode_fixed_cpu(x, generator)
        scales, idx, neg = self.quantize(x, generator)
        q = wire.Quantized(scales, idx, neg, x.numel())
        return wire.encode(q, self.grid, self.bucket_size, self.encoding)

    @staticmethod
    def _on_cpu(x: torch.Tensor, generator: torch.Generator | None) -> bool:
        """Whether x and the generator (None: torch's global one, on the CPU) are on the CPU."""
        return x.device.type == "cpu" and (generator is None or generator.device.type == "cpu")

    def _fused_grid(self, x: torch.Tensor, generator: torch.Generator | None):
        """The kernels' (grid code, s) when the fused CPU encoders take x (rows of n > 0
        coordinates; `fixed` takes n = 0 too), else None."""
        if not self._on_cpu(x, generator) or not (x.shape[-1] or self.encoding == "fixed"):
            return None
        return self._kernel_grid()

    def _encode_compiled(self, x: torch.Tensor, seed: int, off: int,
                         fast: tuple[int, int]) -> bytes:
        """The payload of a contiguous 1-D CPU tensor by the fused encoders, coordinate i
        rounded with draw off + i of the stream `seed`; ValueError when a scale is not
        finite."""
        try:
            if self.encoding == "fixed":
                return self._encode_fixed_compiled(x, seed, off, fast)
            return self._encode_fused(x, seed, off, fast)
        except norm_kernels.ScaleNotFinite as e:
            self._finite(torch.from_numpy(e.scales), x)  # raises, naming the cause
            raise

    def _encode_fused(self, x: torch.Tensor, seed: int, off: int,
                      fast: tuple[int, int]) -> bytes:
        """The `elias`, `entropy` or `auto` payload of a contiguous 1-D CPU tensor, scaled
        and rounded by the compiled kernels on the way (coordinate i with draw off + i of
        the stream `seed`); `norm_kernels.ScaleNotFinite` when a scale is not finite."""
        d, norm, flat = self.bucket_size, self._norm_code, x.numpy()
        if self.encoding == "elias":
            return elias.encode_rounding(flat, norm, seed, d, fast, self.grid, off)
        keys = scratch.array("encode.keys", x.numel(), level_keys.dtype_for(self.grid.size))
        count_gaps = self.encoding == "auto" and self._auto_sizes_elias
        scales, keys, counts, *gaps = level_keys.of_rounding(
            flat, norm, seed, d, fast, self.grid.size,
            pairs=entropy.pairs_for(x.numel(), d, self.grid.size), keys=keys, off=off,
            gap_lengths=elias.gap_lengths(d) if count_gaps else None)
        scales = torch.from_numpy(scales)
        if self.encoding == "entropy":
            return entropy.encode_keys(keys, counts, scales, self.grid, d, None)
        # (counting the gaps while rounding costs little more than a pass of their own
        # on one thread, and spares handing that pass to the pool's threads: ~0.07 ms at
        # 1 M coordinates; but it is wasted where entropy beats elias's floor)
        payload, self._auto_sizes_elias = wire.encode_auto(keys, counts, scales, d, self.grid,
                                                           gaps[0] if gaps else None)
        return payload

    def encode_batch(self, xs: torch.Tensor,
                     generator: torch.Generator | None = None) -> list[bytes]:
        """K gradients [K, n]: one quantization kernel over all rows, then K payloads. Row k's
        coordinate i takes draw k·B·d + i of one stream (B = ceil(n/d) buckets a row), as
        `quantize` draws for the [K, B, d] buckets; on CPU the fused encoders take the rows
        one by one with those draws (the same bytes, without the [K, B, d] temporaries)."""
        xs = self._prepare(xs)
        if xs.dim() != 2:
            raise ValueError(f"encode_batch expects a [K, n] tensor, got shape {tuple(xs.shape)}")
        if xs.shape[0] == 0:
            return []
        fast = self._fused_grid(xs, generator)
        if fast is not None:
            d = self.bucket_size
            seed, span = stream_seed(generator), -(-xs.shape[1] // d) * d
            return [self._encode_compiled(xs[k].contiguous(), seed, k * span, fast)
                    for k in range(xs.shape[0])]
        scales, idx, neg = self.quantize(xs, generator)
        n = xs.shape[1]
        return [wire.encode(wire.Quantized(scales[k], idx[k], neg[k], n), self.grid,
                            self.bucket_size, self.encoding) for k in range(xs.shape[0])]

    def decode(self, payload: bytes, numel: int) -> torch.Tensor:
        numel = check_numel(numel)
        try:
            return wire.decode(payload, numel, self.bucket_size, self.grid, self.encoding)
        except ValueError as e:
            raise ValueError(f"{self.name}: {e}") from None

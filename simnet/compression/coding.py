"""Bit-level coding primitives, vectorised (torch/numpy; no per-element Python loop).

Bit order everywhere: most significant bit first, both within a field and within a byte;
a stream is padded with zero bits up to a whole byte.

- `pack_fixed` / `unpack_fixed`: n fields of k bits each (torch, any device), ceil(n·k/8) bytes.
- `write_fields`: a stream of variable-width fields (value, width <= 64 bits) -> bytes.
- `BitReader`: 64-bit windows at arbitrary bit positions (57 usable bits), for vectorised reads.
- Elias omega, with DESIGN §3's convention that a code ends in `0`: 1 -> `0`, 2 -> `100`,
  3 -> `110`, 4 -> `101000`, 16 -> `10100100000`. Encoding: the groups N, then len(N)-1, then
  ... down to a group of 2 or 3, are written smallest group first, then the final `0`.
  `omega_encode` (values -> codes, lengths), `omega_read` (decode at many positions at once).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "pack_fixed", "unpack_fixed", "write_fields", "BitReader",
    "bit_length", "omega_encode", "omega_length", "omega_read", "OMEGA_MAX",
]

OMEGA_MAX = 2**32 - 1  # largest value the omega functions accept (codes <= 43 bits)
_U = np.uint64


def _pad(t: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad a 1-D tensor to a multiple of `multiple` (no copy when already there)."""
    extra = (-t.numel()) % multiple
    return torch.nn.functional.pad(t, (0, extra)) if extra else t


def pack_fixed(fields: torch.Tensor, k: int) -> torch.Tensor:
    """Pack n integer fields (each < 2^k, 1 <= k <= 32) into ceil(n·k/8) uint8, MSB first."""
    n = fields.numel()
    nbytes = -(-n * k // 8)
    f = fields.reshape(-1)
    if k == 8:
        return f.to(torch.uint8)
    if 8 % k == 0:  # k = 1, 2, 4: whole fields per byte, all in uint8
        per = 8 // k
        f = _pad(f.to(torch.uint8), per).view(-1, per)
        out = f[:, 0] << (8 - k)
        for i in range(1, per):
            out |= f[:, i] << (8 - k * (i + 1))
        return out
    if k < 8:  # 8 fields of k bits = k whole bytes; 8k <= 56 bits fits an int64 exactly
        f = _pad(f.to(torch.int64), 8).view(-1, 8)
        shifts = torch.arange(7 * k, -1, -k, device=f.device)
        v = (f << shifts).sum(1, keepdim=True)
        out = (v >> torch.arange(8 * (k - 1), -1, -8, device=f.device)) & 255
        return out.to(torch.uint8).reshape(-1)[:nbytes]
    # wide fields: expand to bits, then 8 bits -> 1 byte
    bits = (f.to(torch.int64).unsqueeze(1) >> torch.arange(k - 1, -1, -1, device=f.device)) & 1
    bits = _pad(bits.reshape(-1), 8).view(-1, 8)
    return (bits << torch.arange(7, -1, -1, device=f.device)).sum(1).to(torch.uint8)


def unpack_fixed(buf: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """Inverse of `pack_fixed`: uint8 [ceil(n·k/8)] -> fields [n] (uint8 if k <= 8, else int64).

    Padding bits are ignored here; callers check them."""
    if buf.numel() != -(-n * k // 8):
        raise ValueError(f"expected {-(-n * k // 8)} bytes for {n} fields of {k} bits")
    if k == 8:
        return buf
    if 8 % k == 0:
        shifts = torch.arange(8 - k, -1, -k, dtype=torch.uint8, device=buf.device)
        return ((buf.unsqueeze(1) >> shifts) & ((1 << k) - 1)).reshape(-1)[:n]
    b = buf.to(torch.int64)
    if k < 8:
        b = _pad(b, k).view(-1, k)
        v = (b << torch.arange(8 * (k - 1), -1, -8, device=b.device)).sum(1, keepdim=True)
        f = (v >> torch.arange(7 * k, -1, -k, device=b.device)) & ((1 << k) - 1)
        return f.reshape(-1)[:n].to(torch.uint8)
    bits = ((b.unsqueeze(1) >> torch.arange(7, -1, -1, device=b.device)) & 1).reshape(-1)
    bits = bits[: n * k].view(n, k)
    return (bits << torch.arange(k - 1, -1, -1, device=b.device)).sum(1)


def write_fields(values: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, int]:
    """Concatenate fields (value < 2^width, width <= 64) MSB first; returns (uint8 bytes, nbits).

    Fields wider than 32 bits are split into halves; a <= 32-bit field lands in at most two
    32-bit words, and the words are summed with bincount (float64 is exact below 2^53, and
    fields never overlap).
    """
    values = np.asarray(values, dtype=_U)
    widths = np.asarray(widths, dtype=np.int64)
    nbits = int(widths.sum())
    if nbits == 0:
        return np.zeros(0, np.uint8), 0
    start = np.cumsum(widths) - widths
    if widths.max() <= 32:
        v, w, p = values, widths, start
    else:  # split into <= 32-bit halves
        lo_w = np.minimum(widths, 32)
        hi_w = widths - lo_w
        lo = values & ((_U(1) << lo_w.astype(_U)) - _U(1))
        v = np.concatenate([values >> lo_w.astype(_U), lo])
        w = np.concatenate([hi_w, lo_w])
        p = np.concatenate([start, start + hi_w])
    word = p >> 5
    end = (p & 31) + w  # <= 63 for w >= 1; a 0-width field has value 0 and places nothing
    placed = v << (64 - end).astype(_U)
    nwords = (nbits + 31) // 32 + 1
    acc = np.bincount(word, weights=(placed >> _U(32)).astype(np.float64), minlength=nwords)
    acc += np.bincount(word + 1, weights=(placed & _U(0xFFFFFFFF)).astype(np.float64),
                       minlength=nwords + 1)[:nwords]
    out = acc.astype(">u4").view(np.uint8)
    return out[: (nbits + 7) // 8], nbits


class BitReader:
    """Vectorised reads from a byte buffer at arbitrary bit positions (beyond the end: zeros)."""

    def __init__(self, data: np.ndarray | bytes):
        raw = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray)) else data
        self.nbits = 8 * raw.size
        padded = np.zeros(raw.size + 8, np.uint8)
        padded[: raw.size] = raw
        # native copy of the big-endian 64-bit window starting at every byte (one pass)
        self.win = np.ndarray((raw.size + 1,), dtype=">u8", buffer=padded, strides=(1,)).astype(_U)

    def window(self, pos: np.ndarray) -> np.ndarray:
        """uint64 whose MSB is the bit at `pos` (clipped to the end); its top 57 bits are valid."""
        pos = np.clip(np.asarray(pos), 0, self.nbits).astype(_U)
        return self.win[pos >> _U(3)] << (pos & _U(7))

    def window_u64(self, pos: np.ndarray) -> np.ndarray:
        """`window` for uint64 positions already known to be <= nbits (the hot loop)."""
        return self.win[pos >> _U(3)] << (pos & _U(7))

    def read(self, pos: np.ndarray, k: int | np.ndarray) -> np.ndarray:
        """The k-bit (1 <= k <= 57) unsigned integers starting at each `pos`."""
        return self.window(pos) >> (64 - np.asarray(k, dtype=np.int64)).astype(_U)


def bit_length(v: np.ndarray) -> np.ndarray:
    """Number of binary digits of each v >= 1 (exact below 2^53)."""
    return np.frexp(np.asarray(v, dtype=np.float64))[1].astype(np.int64)


def omega_encode(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elias-omega codes of integers in [1, OMEGA_MAX]: (code as uint64, length in bits)."""
    n = np.asarray(values, dtype=np.int64)
    if n.size and (n.min() < 1 or n.max() > OMEGA_MAX):
        raise ValueError(f"omega codes integers in [1, {OMEGA_MAX}]")
    code = np.zeros(n.shape, _U)
    length = np.ones(n.shape, np.int64)  # the terminating 0
    active = np.flatnonzero(n > 1)
    n = n[active]
    while active.size:  # at most 5 rounds below 2^32: each group is ~log of the previous one
        bl = bit_length(n)
        code[active] |= n.astype(_U) << length[active].astype(_U)
        length[active] += bl
        n = bl - 1
        keep = n > 1
        active, n = active[keep], n[keep]
    return code, length


def omega_length(values: np.ndarray) -> np.ndarray:
    """Length in bits of each value's omega code."""
    return omega_encode(values)[1]


def omega_read(reader: BitReader, pos: np.ndarray, end: np.ndarray, limit: int):
    """Decode one omega code at each bit position; returns (values, new positions).

    Raises ValueError if a code runs past its `end` or its value (or any group) exceeds `limit`
    (<= OMEGA_MAX): so corrupted input cannot loop or read unbounded widths.
    """
    pos = np.asarray(pos, dtype=np.int64).copy()
    n = np.ones(pos.shape, np.int64)
    todo = np.arange(pos.size)
    max_bits = int(limit).bit_length()
    for _ in range(7):  # a value <= 2^32 needs <= 5 groups + the final 0
        if not todo.size:
            break
        p = pos[todo]
        w = reader.window(p)
        first = (w >> _U(63)).astype(bool)
        stop = ~first
        pos[todo[stop]] = p[stop] + 1
        todo, p, w = todo[first], p[first], w[first]
        k = n[todo] + 1  # the next group has N + 1 bits, so a value >= 2^N
        if k.size and k.max() > max_bits:
            raise ValueError(f"corrupt payload: Elias-omega value exceeds {limit}")
        n[todo] = (w >> (64 - k).astype(_U)).astype(np.int64)
        pos[todo] = p + k
        if n[todo].size and n[todo].max() > limit:
            raise ValueError(f"corrupt payload: Elias-omega value exceeds {limit}")
        if (pos > end).any():
            raise ValueError("corrupt payload: an Elias-omega code runs past its section")
    if todo.size:
        raise ValueError("corrupt payload: Elias-omega code too long")
    if (pos > end).any():
        raise ValueError("corrupt payload: an Elias-omega code runs past its section")
    return n, pos

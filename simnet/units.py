"""Parse quantities written with units into SI floats.

Inside simnet every quantity is SI: seconds, bytes, bytes per second. Scenario files write
them as strings ("10 Gbit/s", "5 us", "64 MiB"); plain numbers are taken as already SI.
Errors are `UnitError` (a `ValueError`) whose message names the field and the bad value.
"""

from __future__ import annotations

import math
import re

__all__ = ["UnitError", "parse_bandwidth", "parse_time", "parse_bytes", "format_bandwidth"]


class UnitError(ValueError):
    """A quantity could not be parsed; the message names the field and the value."""


_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_PATTERN = re.compile(r"^\s*" + _NUMBER + r"\s*([A-Za-z/µ]*)\s*$")

_SI_PREFIX = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_BIN_PREFIX = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40}

# Bandwidth: bits or bytes per second, with SI prefixes. "Gbps" is accepted as Gbit/s.
_BANDWIDTH = {}
for _p, _f in _SI_PREFIX.items():
    _BANDWIDTH[f"{_p}bit/s"] = _f / 8.0
    _BANDWIDTH[f"{_p}bps"] = _f / 8.0
    _BANDWIDTH[f"{_p}B/s"] = _f
for _p, _f in _BIN_PREFIX.items():
    _BANDWIDTH[f"{_p}B/s"] = _f
_BANDWIDTH["B/s"] = 1.0

_TIME = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0}

_BYTES = {f"{p}B": f for p, f in _SI_PREFIX.items()}
_BYTES.update({f"{p}B": f for p, f in _BIN_PREFIX.items()})
_BYTES.update({f"{p}bit": f / 8.0 for p, f in _SI_PREFIX.items()})


def _parse(value, table: dict[str, float], kind: str, field: str, allow_zero: bool) -> float:
    if isinstance(value, bool):
        raise UnitError(f"{field}: expected a {kind}, got {value!r}")
    if isinstance(value, (int, float)):
        number, factor = float(value), 1.0
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        if not match:
            raise UnitError(f"{field}: cannot read {value!r} as a {kind} (e.g. {_example(kind)})")
        number, unit = float(match.group(1)), match.group(2)
        if unit == "" :
            factor = 1.0
        elif unit in table:
            factor = table[unit]
        else:
            raise UnitError(
                f"{field}: unknown unit {unit!r} in {value!r} for a {kind} (e.g. {_example(kind)})"
            )
    else:
        raise UnitError(f"{field}: expected a {kind}, got {value!r}")
    result = number * factor
    if not math.isfinite(result):
        raise UnitError(f"{field}: {kind} must be finite, got {value!r}")
    if result < 0 or (result == 0 and not allow_zero):
        bound = "non-negative" if allow_zero else "positive"
        raise UnitError(f"{field}: {kind} must be {bound}, got {value!r}")
    return result


def _example(kind: str) -> str:
    return {"bandwidth": "'10 Gbit/s'", "time": "'5 us'", "size": "'64 MiB'"}[kind]


def parse_bandwidth(value, field: str = "bandwidth") -> float:
    """'10 Gbit/s' -> 1.25e9 (bytes per second). Must be positive."""
    return _parse(value, _BANDWIDTH, "bandwidth", field, allow_zero=False)


def parse_time(value, field: str = "time") -> float:
    """'5 us' -> 5e-6 (seconds). Zero is allowed (an ideal link)."""
    return _parse(value, _TIME, "time", field, allow_zero=True)


def parse_bytes(value, field: str = "size") -> float:
    """'64 MiB' -> 67108864.0 (bytes). Zero is allowed."""
    return _parse(value, _BYTES, "size", field, allow_zero=True)


def format_bandwidth(bytes_per_s: float) -> str:
    """1.25e9 -> '10 Gbit/s' (for labels)."""
    bits = bytes_per_s * 8.0
    for prefix, factor in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if bits >= factor:
            return f"{bits / factor:g} {prefix}bit/s"
    return f"{bits:g} bit/s"

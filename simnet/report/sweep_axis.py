"""Place the variants of a sweep on an x axis: numeric (SI units parsed) when the sweep has
one axis of quantities, else one categorical position per variant."""

from __future__ import annotations

from ..units import UnitError, parse_bandwidth, parse_bytes, parse_time
from .data import RunData

__all__ = ["axis_positions", "as_number"]

# (parser, axis-label unit, factor from SI): bandwidths are shown in bit/s as users write them.
_PARSERS = [(parse_bandwidth, "bit/s", 8.0), (parse_time, "s", 1.0), (parse_bytes, "B", 1.0)]


def as_number(value) -> tuple[float, str] | None:
    """(number, unit) of an axis value: 3 -> (3, ''), '1 Gbit/s' -> (1e9, 'bit/s')."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value), ""
    for parse, unit, factor in _PARSERS:
        try:
            return factor * parse(value, "sweep"), unit
        except (UnitError, ValueError, TypeError):
            continue
    return None


def axis_positions(data: RunData) -> tuple[list[float], list[str], str, bool]:
    """(x per variant, tick labels, axis label, log scale?) in data.variants order."""
    axes = data.sweep_axes()
    points = data.variant_points()
    if len(axes) == 1 and all(v in points for v in data.variants):
        axis = axes[0][0]
        parsed = [as_number(points[v][0]) for v in data.variants]
        units = {p[1] for p in parsed if p}
        if all(parsed) and len(units) == 1:
            xs = [p[0] for p in parsed]
            unit = units.pop()
            log = min(xs) > 0 and max(xs) / min(xs) >= 10
            label = axis.split(".")[-1] + (f" ({unit})" if unit else "")
            return xs, [str(points[v][0]) for v in data.variants], label, log
    label = ", ".join(a.split(".")[-1] for a, _ in axes) or "variant"
    return list(range(len(data.variants))), data.variants, label, False

"""Fit a calibration (see predict.py) from microbenchmarks on a real or emulated cluster.

Benchmarks: a one-byte ping-pong between ranks 0 and 1 gives alpha (one-way seconds per
message); a sweep of payload sizes through each collective (the hook's own code paths) gives,
per collective c, a weighted least-squares line
    t = a_c + x(n) / e_c,     x(n) = ideal transfer seconds at the nominal rate
(weights 1/t, so relative errors count). Then bandwidth_factor = e of ring-allreduce (the
collective that reaches the link's goodput), efficiency_c = e_c / bandwidth_factor, and
overhead_s[c] = a_c minus the latency the model itself charges (alpha on every message).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import yaml

from ..results import atomic_write
from .predict import collective_time, star

__all__ = ["tasks", "fit", "write", "read", "COLLECTIVES"]

COLLECTIVES = ("allgather", "ring-allreduce")
# Ideal transfer seconds of the swept sizes. None is tiny: on a 2-vCPU VM a 1 KiB collective
# took 0.5 or 4 ms by turns (a halted vCPU's wake-up), and, weighted 1/t, it dragged the fitted
# line off the bulk transfers: ring-allreduce predictions of a 0.2 s gradient came out 0.1-7.6%
# low, against within +-2% for a line fitted from 20 ms up (12 emulated runs refitted both
# ways). Smaller payloads are extrapolated.
TARGETS_S = (0.02, 0.05, 0.2, 0.6)
# Seconds of timed transfers each size gets at least (up to MAX_REPEATS): the 20 ms size, which
# pins the intercept, jitters by milliseconds on a shared host, and 25 repeats of it cost 0.5 s.
SAMPLE_BUDGET_S, MAX_REPEATS = 0.5, 25


def sizes(collective: str, workers: int, rate_bps: float, targets=TARGETS_S) -> list[int]:
    """Bytes per rank whose ideal transfer takes each target time at rate_bps."""
    unit = collective_time(star(workers, rate_bps), collective, 1_000_000) / 1e6  # s per byte
    return [max(1024, int(t / unit)) for t in targets]


def repeats_per_size(repeats: int, targets=TARGETS_S) -> list[int]:
    """Repetitions of each swept size: at least `repeats`, and enough for SAMPLE_BUDGET_S."""
    return [min(MAX_REPEATS, max(repeats, math.ceil(SAMPLE_BUDGET_S / t))) for t in targets]


def tasks(workers: int, rate_bps: float, repeats: int = 3) -> list[dict]:
    """The worker tasks of a calibration run (see bench.py)."""
    out = [{"kind": "pingpong", "repeats": 20}]
    for c in COLLECTIVES:
        out.append({"kind": "bench", "collective": c, "sizes": sizes(c, workers, rate_bps),
                    "repeats": repeats_per_size(repeats)})
    return out


def fit(results: list[dict], workers: int, rate_bps: float) -> dict:
    """The calibration block from merged benchmark results (seconds, factors)."""
    alpha = next(r["alpha_s"] for r in results if r["kind"] == "pingpong")
    ideal = star(workers, rate_bps)
    lines = {}
    for r in results:
        if r["kind"] != "bench":
            continue
        c = r["collective"]
        x = np.array([collective_time(ideal, c, n) for n in r["sizes"]])
        t = np.array(r["median_s"])
        w = 1.0 / t
        A = np.stack([np.ones_like(x), x], axis=1) * w[:, None]
        (a, slope), *_ = np.linalg.lstsq(A, t * w, rcond=None)
        lines[c] = (float(a), 1.0 / float(slope))
    ref = lines.get("ring-allreduce", max(lines.values(), key=lambda v: v[1]))
    factor = ref[1]
    with_alpha = star(workers, rate_bps, alpha / 2)
    overhead = {}
    for c, (a, _) in lines.items():
        n0 = 1024  # the latency the model charges does not depend on size on a contention-free star
        latency = collective_time(with_alpha, c, n0) - collective_time(ideal, c, n0)
        overhead[c] = a - latency
    return {"alpha_s": float(alpha), "bandwidth_factor": float(factor),
            "efficiency": {c: e / factor for c, (_, e) in lines.items()},
            "overhead_s": overhead}


def write(path: str | Path, calibration: dict, note: str = "") -> None:
    """Write `calibration:` as YAML (a comment line says where it was measured)."""
    head = f"# simnet calibration{': ' + note if note else ''}\n"
    body = yaml.safe_dump({"calibration": calibration}, sort_keys=False)
    atomic_write(path, head + body)


def read(path: str | Path) -> dict:
    """Read a calibration file (a `calibration:` block, or the bare mapping)."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    cal = data.get("calibration", data)
    missing = {"alpha_s", "bandwidth_factor", "overhead_s"} - set(cal)
    if missing:
        raise ValueError(f"{path}: calibration lacks {', '.join(sorted(missing))}")
    return cal

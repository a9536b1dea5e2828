"""Predictions for real runs: the network model with a calibration applied.

A calibration (fitted by `calibrate.fit`, stored as a `calibration:` YAML block) says how the
real software stack departs from the ideal links (all seconds, factors dimensionless):
    alpha_s            per-message latency; a star message crosses two links, so each link
                       gets alpha_s / 2 added to its latency
    bandwidth_factor   effective / nominal link rate (framing, TCP/IP headers)
    efficiency         {collective: share of the effective rate the implementation reaches}
                       (gloo's 2-rank all-gather, one duplex TCP connection, reaches ~0.65)
    overhead_s         {collective: fixed software cost per call}
predicted(collective, nbytes) = network time on the adjusted star + overhead_s[collective].
"""

from __future__ import annotations

import math

__all__ = ["collective_time", "adjust_topology", "predict_collective", "star"]

EMPTY = {"alpha_s": 0.0, "bandwidth_factor": 1.0, "efficiency": {}, "overhead_s": {}}


def star(workers: int, rate_bps: float, latency_s: float = 0.0) -> dict:
    """The emulated cluster as a topology spec: bandwidth in B/s, latency in s."""
    return {"kind": "star", "workers": workers, "bandwidth": rate_bps / 8, "latency": latency_s}


def _closed_form(topology: dict, collective: str, nbytes) -> float:
    """Contention-free star (DESIGN §4 closed forms), used until simnet.network is complete."""
    p = topology["workers"]
    B, lat = float(topology["bandwidth"]), float(topology["latency"])
    n = [float(nbytes)] * p if isinstance(nbytes, (int, float)) else [float(x) for x in nbytes]
    if p < 2:
        return 0.0
    if collective in ("allgather", "direct-allgather"):
        up = max((p - 1) * x for x in n)
        down = max(sum(n) - x for x in n)
        return 2 * lat + max(up, down) / B
    if collective in ("ring-allreduce", "allreduce", "hierarchical-allreduce"):
        return 2 * (p - 1) * (2 * lat + max(n) / p / B)
    if collective == "ring-allgather":
        return (p - 1) * (2 * lat + max(n) / B)
    raise ValueError(f"no closed form for collective {collective!r}")


def collective_time(topology: dict, collective: str, nbytes) -> float:
    """Seconds of one collective: `simnet.network.collective_time` when the network package
    provides it, else the contention-free closed form on the star."""
    try:
        from ..network import collective_time as network_time
    except ImportError:
        return _closed_form(topology, collective, nbytes)
    return float(network_time(topology=topology, collective=collective, nbytes=nbytes))


def adjust_topology(topology: dict, calibration: dict | None, collective: str) -> dict:
    """The star with the calibration's latency and rate applied for `collective`."""
    cal = {**EMPTY, **(calibration or {})}
    factor = cal["bandwidth_factor"] * cal["efficiency"].get(collective, 1.0)
    if not (factor > 0 and math.isfinite(factor)):
        raise ValueError(f"calibration: bandwidth factor for {collective} must be > 0, got {factor}")
    out = dict(topology)
    out["bandwidth"] = float(topology["bandwidth"]) * factor
    out["latency"] = float(topology.get("latency", 0.0)) + cal["alpha_s"] / 2
    return out


def predict_collective(topology: dict, collective: str, nbytes, calibration: dict | None) -> float:
    """Predicted seconds of one collective on a real (calibrated) stack."""
    cal = {**EMPTY, **(calibration or {})}
    t = collective_time(adjust_topology(topology, cal, collective), collective, nbytes)
    return t + cal["overhead_s"].get(collective, 0.0)

"""`simnet measure`: the scenario's workload as real DDP training, K gloo processes.

Runs on the emulated cluster (netns.py, links shaped to the scenario's bandwidth) when root
and namespaces allow, else on loopback (unshaped; says so). Writes, in the results format of
DESIGN §6 with variant "measured": results.jsonl (one record per compressor and iteration),
summary.json, and measurement.json (mode, rate, CPU probe, warnings).

Per iteration (seconds; per-rank figures from ddp_run.py): iteration_time_s = the slowest
rank's iteration; compute_s, encode_s = rank means; wait_s = slowest minus mean rank's
ready time (compute + codec), as the replay defines it; communication_s = the rest.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import results
from ..scenario import Scenario
from ..units import parse_bandwidth
from . import launch, netns

__all__ = ["train_tasks", "records", "run_tasks", "measure", "check_cluster"]


def check_cluster(scenario: Scenario, force: bool = False) -> None:
    """Refuse runs that would measure the CPU rather than the links (ValueError)."""
    K = scenario.cluster.workers
    cores = os.cpu_count() or 1
    if K < 2:
        raise ValueError("cluster.workers: a real run needs at least 2 workers")
    if K > cores and not force:
        raise ValueError(f"cluster.workers: {K} ranks on {cores} cores would measure CPU "
                         f"contention; use --force to run anyway")


def rate_bps(scenario: Scenario) -> float:
    return 8 * parse_bandwidth(scenario.cluster.topology.bandwidth, "cluster.topology.bandwidth")


def train_tasks(scenario: Scenario, iterations: int | None = None, eval_every: int | None = None) -> list[dict]:
    data = scenario.model_dump(mode="json", exclude_none=True)
    data.pop("sweep", None)
    n = iterations or scenario.run.iterations
    return [{"kind": "train", "scenario": data, "compressor": spec.model_dump(mode="json", exclude_none=True),
             "iterations": n, "eval_every": eval_every if eval_every is not None else scenario.run.eval_every}
            for spec in scenario.compressors]


def run_tasks(tasks: list[dict], workers: int, rate: float, emulate: bool, timeout_s: float) -> dict:
    """Run worker tasks emulated (shaped to `rate` bit/s) or on loopback; merged results."""
    if emulate:
        return netns.run_emulated(tasks, workers, rate, timeout_s)
    return {"results": launch.run_local(tasks, workers, timeout_s), "warnings": [
        "loopback run: links are not shaped, so the scenario's bandwidth is not applied"]}


def records(train: dict, label: str, variant: str = "measured") -> list[dict]:
    """Results records (DESIGN §6) from one merged `train` task result."""
    ranks = train["ranks"]
    out, clock = [], 0.0
    for per_rank in zip(*ranks):
        K = len(per_rank)
        times = [r["end_s"] - r["start_s"] for r in per_rank]
        ready = [r["compute_s"] + r["encode_s"] for r in per_rank]
        total = max(times)
        compute = sum(r["compute_s"] for r in per_rank) / K
        codec = sum(r["encode_s"] for r in per_rank) / K
        wait = max(ready) - sum(ready) / K
        clock += total
        rec = {"variant": variant, "compressor": label, "iteration": per_rank[0]["iteration"],
               "sim_time_s": clock, "iteration_time_s": total, "compute_s": compute,
               "encode_s": codec, "communication_s": total - compute - codec - wait,
               "wait_s": wait, "payload_bytes": sum(r["payload_bytes"] for r in per_rank),
               "loss": sum(r["loss"] for r in per_rank) / K}
        if "accuracy" in per_rank[0]:
            rec["eval_loss"], rec["accuracy"] = per_rank[0]["eval_loss"], per_rank[0]["accuracy"]
        out.append(rec)
    return out


def measure(scenario: Scenario, out_dir: str | Path, iterations: int | None = None,
            emulate: bool | None = None, force: bool = False, timeout_s: float = 600.0) -> dict:
    """Measure every compressor of `scenario`; write the results files; return the summary.

    emulate: True = emulated cluster (error if unavailable), False = loopback, None = emulated
    when available.
    """
    check_cluster(scenario, force)
    K, rate = scenario.cluster.workers, rate_bps(scenario)
    ok, why = netns.available()
    if emulate and not ok:
        raise RuntimeError(f"emulated cluster unavailable: {why}")
    emulate = ok if emulate is None else emulate
    if emulate and rate > netns.MAX_RATE_BPS and not force:
        raise ValueError(f"cluster.topology.bandwidth: {rate / 1e6:.0f} Mbit/s is above the "
                         f"{netns.MAX_RATE_BPS / 1e6:.0f} Mbit/s an emulated link measures "
                         "faithfully here; use --force or --loopback")
    run = run_tasks(train_tasks(scenario, iterations), K, rate, emulate, timeout_s)
    recs, summary = [], []
    for spec, train in zip(scenario.compressors, run["results"]):
        rs = records(train, spec.display_name())
        recs.extend(rs)
        collective = next((r["collective"] for r in train["ranks"][0] if r["collective"]), "")
        summary.append(results.summarise(
            rs, samples_per_iteration=K * scenario.workload.batch_size, numel=train["numel"],
            workers=K, target_accuracy=scenario.run.target_accuracy, collective=collective))
    results.add_speedups(summary, has_target=scenario.run.target_accuracy is not None)
    out_dir = Path(out_dir)
    results.write_records(out_dir / "results.jsonl", recs)
    results.write_json(out_dir / "summary.json", summary)
    info = {"mode": "emulated" if emulate else "loopback", "workers": K, "rate_bps": rate,
            "probe_bps": run.get("probe_bps"), "warnings": run.get("warnings", [])}
    results.write_json(out_dir / "measurement.json", info)
    return {"summary": summary, **info}

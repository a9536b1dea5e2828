"""Results files: the contract between the engine and the report (DESIGN §6).

This module is the only writer of results files. Every write is atomic (temp file in the
same folder, then rename), so an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Iterable

__all__ = ["atomic_write", "write_records", "read_records", "summarise", "write_json",
           "read_json", "RECORD_FIELDS", "SUMMARY_FIELDS"]

RECORD_FIELDS = ("variant", "compressor", "iteration", "sim_time_s", "iteration_time_s",
                 "compute_s", "encode_s", "communication_s", "wait_s", "payload_bytes", "loss",
                 "accuracy", "eval_loss")
SUMMARY_FIELDS = ("variant", "compressor", "collective", "throughput_samples_per_s",
                  "mean_iteration_time_s", "bytes_per_iteration", "bits_per_coordinate",
                  "final_loss", "final_accuracy", "time_to_target_s", "speedup_vs_none",
                  "throughput_speedup_vs_none")


def atomic_write(path: str | Path, text: str) -> None:
    """Write text to path via a temp file and rename: readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | Path, data) -> None:
    atomic_write(path, json.dumps(data, indent=2) + "\n")


def read_json(path: str | Path):
    return json.loads(Path(path).read_text())


def write_records(path: str | Path, records: Iterable[dict]) -> None:
    """One JSON object per line, keys in RECORD_FIELDS order."""
    lines = [json.dumps({k: r[k] for k in RECORD_FIELDS if k in r}) for r in records]
    atomic_write(path, "\n".join(lines) + ("\n" if lines else ""))


def read_records(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def summarise(records: list[dict], *, samples_per_iteration: int, numel: int, workers: int,
              target_accuracy: float | None, collective: str) -> dict:
    """Summary row of one (variant, compressor) from its per-iteration records.

    final_loss / final_accuracy are the last test-set evaluation; time_to_target_s is the
    simulated time of the first evaluation at or above the target (None if never reached).
    """
    times = [r["iteration_time_s"] for r in records]
    mean_time = sum(times) / len(times)
    bytes_per_it = sum(r["payload_bytes"] for r in records) / len(records)
    evaluated = [r for r in records if r.get("accuracy") is not None]
    last = evaluated[-1] if evaluated else records[-1]
    reached = None
    if target_accuracy is not None:
        reached = next((r["sim_time_s"] for r in evaluated if r["accuracy"] >= target_accuracy), None)
    return {
        "variant": records[0]["variant"],
        "compressor": records[0]["compressor"],
        "collective": collective,
        "throughput_samples_per_s": samples_per_iteration / mean_time,
        "mean_iteration_time_s": mean_time,
        "bytes_per_iteration": bytes_per_it,
        "bits_per_coordinate": 8.0 * bytes_per_it / (workers * numel),
        "final_loss": last.get("eval_loss", last["loss"]),
        "final_accuracy": last.get("accuracy"),
        "time_to_target_s": reached,
    }


def add_speedups(rows: list[dict], baseline: str = "none", has_target: bool = False) -> None:
    """Speedups over the fp32 baseline of the same variant.

    speedup_vs_none: with a target accuracy, baseline time-to-target / this time-to-target
    (None if either misses it); without a target, the throughput ratio.
    throughput_speedup_vs_none: always the throughput ratio.
    """
    by_variant = {r["variant"]: r for r in rows if r["compressor"] == baseline}
    for row in rows:
        base = by_variant.get(row["variant"])
        if base is None:
            row["speedup_vs_none"] = row["throughput_speedup_vs_none"] = None
            continue
        ratio = row["throughput_samples_per_s"] / base["throughput_samples_per_s"]
        row["throughput_speedup_vs_none"] = ratio
        if has_target:
            a, b = base["time_to_target_s"], row["time_to_target_s"]
            row["speedup_vs_none"] = (a / b) if (a is not None and b) else None
        else:
            row["speedup_vs_none"] = ratio

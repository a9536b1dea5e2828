"""The engine: couples scenario, training, network replay and results, in phases.

    1. pin      measure what the scenario leaves to measurement (compute time) and pin it
    2. train    one real training run per compressor (cached by what determines it)
    3. replay   simulate each trace on every variant of the sweep
    4. write    results.jsonl, summary.json, scenario.resolved.yaml, provenance.json,
                trace.json and report.html
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import __version__, results
from .replay import replay
from .scenario import CompressorSpec, Scenario, dump, expand_sweep
from .training import (Trace, choose_collective, measure_codec, measure_compute, pick_device,
                       setup_workload, trace_key, train)
from .workload.workers import Workers

__all__ = ["run", "RunOutput", "pin_measurements"]


@dataclass
class RunOutput:
    out_dir: Path
    summary: list[dict]
    resolved: Scenario
    wall_s: float
    files: list[Path] = field(default_factory=list)


class Progress:
    """Callbacks the CLI uses to draw progress; the default does nothing."""

    def start(self, label: str, total: int) -> None: ...
    def advance(self, label: str, done: int) -> None: ...
    def finish(self, label: str) -> None: ...


def pin_measurements(scenario: Scenario) -> Scenario:
    """Pin what the scenario leaves to measurement on this device: `compute: measured`
    becomes fixed seconds, and each compressor gets its encode_s / decode_s (seconds for
    one worker's real gradient), measured on a gradient of the initial model."""
    data = scenario.model_dump(mode="json", exclude_none=True)
    if scenario.cluster.compute.kind == "measured":
        data["cluster"]["compute"] = {"kind": "fixed", "seconds": measure_compute(scenario)}
    unpinned = [i for i, c in enumerate(scenario.compressors) if c.encode_s is None or c.decode_s is None]
    if unpinned:
        dataset, model, device = setup_workload(scenario)
        probe = Workers(model, dataset, 1, scenario.workload.batch_size,
                        np.random.SeedSequence(54321), device)
        grad = probe.gradients()[0][0]
        for i in unpinned:
            encode_s, decode_s = measure_codec(scenario.compressors[i], grad, device)
            data["compressors"][i].setdefault("encode_s", encode_s)
            data["compressors"][i].setdefault("decode_s", decode_s)
    return Scenario.model_validate(data)


def _train_all(scenario: Scenario, progress: Progress) -> dict[str, Trace]:
    traces: dict[str, Trace] = {}
    for spec in scenario.compressors:
        key = trace_key(scenario, spec)
        if key in traces:
            continue
        label = f"train {spec.display_name()}"
        progress.start(label, scenario.run.iterations)
        traces[key] = train(scenario, spec, progress=lambda i, lab=label: progress.advance(lab, i))
        progress.finish(label)
    return traces


def _records(variant: str, name: str, trace: Trace, timings) -> list[dict]:
    out, clock = [], 0.0
    for i, (timing, payload, loss) in enumerate(zip(timings, trace.payload_bytes, trace.loss), 1):
        clock += timing.iteration_time_s
        rec = {"variant": variant, "compressor": name, "iteration": i, "sim_time_s": clock,
               "iteration_time_s": timing.iteration_time_s, "compute_s": timing.compute_s,
               "encode_s": timing.encode_s, "communication_s": timing.communication_s,
               "wait_s": timing.wait_s, "payload_bytes": sum(payload), "loss": loss}
        if i in trace.evals:
            rec["eval_loss"], rec["accuracy"] = trace.evals[i]
        out.append(rec)
    return out


def run(scenario: Scenario, out_dir: str | Path, progress: Progress | None = None,
        source: str = "<scenario>") -> RunOutput:
    """Run a scenario end to end and write its results files into out_dir."""
    started = time.perf_counter()
    progress = progress or Progress()
    out_dir = Path(out_dir)
    variants = expand_sweep(scenario, source)  # validate every sweep point before any work
    for variant in variants:
        for spec in variant.scenario.compressors:
            choose_collective(variant.scenario, spec)

    scenario = pin_measurements(scenario)
    traces = _train_all(scenario, progress)
    variants = expand_sweep(scenario, source)

    records: list[dict] = []
    summary: list[dict] = []
    timelines: dict[str, list[dict]] = {}
    for variant in variants:
        vs = variant.scenario
        for spec in vs.compressors:
            trace = traces.get(trace_key(vs, spec)) or train(vs, spec)
            traces[trace_key(vs, spec)] = trace
            collective = choose_collective(vs, spec)
            timings, timeline = replay(vs, trace, collective, spec.encode_s, spec.decode_s)
            recs = _records(variant.name, spec.display_name(), trace, timings)
            records.extend(recs)
            timelines[f"{variant.name} / {spec.display_name()}"] = timeline
            summary.append(results.summarise(
                recs, samples_per_iteration=vs.cluster.workers * vs.workload.batch_size,
                numel=trace.numel, workers=vs.cluster.workers,
                target_accuracy=vs.run.target_accuracy, collective=collective))
    results.add_speedups(summary, has_target=scenario.run.target_accuracy is not None)

    out_dir.mkdir(parents=True, exist_ok=True)
    results.write_records(out_dir / "results.jsonl", records)
    results.write_json(out_dir / "summary.json", summary)
    results.atomic_write(out_dir / "scenario.resolved.yaml", dump(scenario))
    wall = time.perf_counter() - started
    results.write_json(out_dir / "provenance.json", _provenance(scenario, wall, source))
    results.write_json(out_dir / "timeline.json", timelines)
    from .report import write_report  # the report reads the results files only

    write_report(out_dir)
    return RunOutput(out_dir, summary, scenario, wall)


def _provenance(scenario: Scenario, wall_s: float, source: str) -> dict:
    device = pick_device(scenario.workload.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    return {"simnet": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "device": f"{device.type}: {name}", "seed": scenario.seed, "scenario": source,
            "wall_time_s": wall_s, "torch_threads": torch.get_num_threads()}

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

import numpy as np
import torch

from . import __version__, results
from .replay import replay
from .scenario import Scenario, Variant, dump, expand_sweep
from .state import RunState, TraceCache
from .training import (Trace, choose_collective, flops_compute_s, measure_codec, measure_compute, pick_device,
                       setup_workload, trace_key, train)
from .codec_model import modelled_codec_s
from .workload import gpus
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
    one worker's real gradient), measured on a gradient of the initial model, or modelled
    on the GPU when compute is `flops` (simnet.codec_model)."""
    data = scenario.model_dump(mode="json", exclude_none=True)
    compute = scenario.cluster.compute
    if compute.kind == "measured":
        data["cluster"]["compute"] = {"kind": "fixed", "seconds": measure_compute(scenario)}
    elif compute.kind == "flops" and compute.seconds is None:
        data["cluster"]["compute"]["seconds"] = flops_compute_s(scenario)[0]
    unpinned = [i for i, c in enumerate(scenario.compressors) if c.encode_s is None or c.decode_s is None]
    if unpinned:
        dataset, model, device = setup_workload(scenario)
        probe = Workers(model, dataset, 1, scenario.workload.batch_size,
                        np.random.SeedSequence(54321), device)
        grad = probe.gradients()[0][0]
        for i in unpinned:
            spec = scenario.compressors[i]
            if compute.kind == "flops":  # a modelled GPU: do not charge it this CPU's codec
                bandwidth = gpus.get(compute.gpu).memory_bandwidth
                encode_s, decode_s = modelled_codec_s(spec.name, probe.numel, bandwidth)
            else:
                encode_s, decode_s = measure_codec(spec, grad, device)
            data["compressors"][i].setdefault("encode_s", encode_s)
            data["compressors"][i].setdefault("decode_s", decode_s)
    return Scenario.model_validate(data)


def train_all(variants: list[Variant], progress: Progress, cache: TraceCache) -> dict[str, Trace]:
    """One training run per distinct trace key over all variants (train once, simulate many)."""
    traces: dict[str, Trace] = {}
    for variant in variants:
        vs = variant.scenario
        for spec in vs.compressors:
            key = trace_key(vs, spec)
            if key in traces:
                continue
            cached = cache.load(key)
            if cached is not None:
                traces[key] = cached
                continue
            label = f"train {spec.display_name()}" + (f" [{variant.name}]" if len(variants) > 1 else "")
            progress.start(label, vs.run.iterations)
            traces[key] = train(vs, spec, progress=lambda i, lab=label: progress.advance(lab, i))
            progress.finish(label)
            cache.store(key, traces[key])
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


def simulate_variant(name: str, scenario_json: dict, traces: dict[str, Trace]) -> dict:
    """Replay every compressor's trace on one variant (picklable: runs in a process pool or
    on a Dask worker). Returns {"records", "summary", "timelines", "links"}."""
    vs = Scenario.model_validate(scenario_json)
    records, summary, timelines, links = [], [], {}, {}
    for spec in vs.compressors:
        trace = traces[trace_key(vs, spec)]
        collective = choose_collective(vs, spec)
        timings, timeline, link_bytes = replay(vs, trace, collective, spec.encode_s, spec.decode_s)
        recs = _records(name, spec.display_name(), trace, timings)
        records.extend(recs)
        timelines[f"{name} / {spec.display_name()}"] = timeline
        links[f"{name} / {spec.display_name()}"] = link_bytes
        summary.append(results.summarise(
            recs, samples_per_iteration=vs.cluster.workers * vs.workload.batch_size,
            numel=trace.numel, workers=vs.cluster.workers,
            target_accuracy=vs.run.target_accuracy, collective=collective))
    return {"records": records, "summary": summary, "timelines": timelines, "links": links}


def simulate_all(variants: list[Variant], traces: dict[str, Trace], state: RunState,
                  progress: Progress, jobs: int, scheduler: str | None) -> list[dict]:
    """Simulate the variants not finished yet; each result is saved atomically on arrival,
    so an interrupted sweep resumes where it stopped."""
    done = {i: state.load_variant(i, v) for i, v in enumerate(variants)}
    todo = [i for i, result in done.items() if result is None]
    progress.start("simulate", len(variants))
    progress.advance("simulate", len(variants) - len(todo))

    def needed(i: int) -> dict[str, Trace]:
        vs = variants[i].scenario
        return {trace_key(vs, c): traces[trace_key(vs, c)] for c in vs.compressors}

    def args(i: int):
        return variants[i].name, variants[i].scenario.model_dump(mode="json"), needed(i)

    for i, result in _map(todo, args, jobs, scheduler):
        state.save_variant(i, variants[i], result)
        done[i] = result
        progress.advance("simulate", sum(r is not None for r in done.values()))
    progress.finish("simulate")
    return [done[i] for i in range(len(variants))]


def _map(todo: list[int], args, jobs: int, scheduler: str | None):
    """Yield (index, result) of simulate_variant: inline, on a process pool, or on Dask."""
    if scheduler:
        from dask.distributed import Client, as_completed

        with Client(scheduler) as client:
            futures = {client.submit(simulate_variant, *args(i), pure=False): i for i in todo}
            for future in as_completed(futures):
                yield futures[future], future.result()
    elif jobs > 1 and len(todo) > 1:
        from concurrent.futures import ProcessPoolExecutor, as_completed as completed

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(simulate_variant, *args(i)): i for i in todo}
            for future in completed(futures):
                yield futures[future], future.result()
    else:
        for i in todo:
            yield i, simulate_variant(*args(i))


def run(scenario: Scenario, out_dir: str | Path, progress: Progress | None = None,
        source: str = "<scenario>", jobs: int = 1, scheduler: str | None = None) -> RunOutput:
    """Run a scenario end to end and write its results files into out_dir.

    Resumable: pinned measurements, traces and finished variants are kept under
    out_dir/.simnet/, so running the same scenario into the same folder again redoes only
    what is missing. `jobs` > 1 simulates variants on a local process pool; `scheduler`
    (a dask.distributed address) runs them on a Dask cluster.
    """
    started = time.perf_counter()
    progress = progress or Progress()
    out_dir = Path(out_dir)
    for variant in expand_sweep(scenario, source):  # validate every point before any work
        for spec in variant.scenario.compressors:
            choose_collective(variant.scenario, spec)

    state = RunState(out_dir, scenario)
    scenario = state.pinned() or state.save_pinned(pin_measurements(scenario))
    variants = expand_sweep(scenario, source)
    traces = train_all(variants, progress, TraceCache(state.folder / "traces"))
    parts = simulate_all(variants, traces, state, progress, jobs, scheduler)

    records = [r for part in parts for r in part["records"]]
    summary = [row for part in parts for row in part["summary"]]
    timelines = {k: v for part in parts for k, v in part["timelines"].items()}
    links = {k: v for part in parts for k, v in part.get("links", {}).items()}
    results.add_speedups(summary, has_target=scenario.run.target_accuracy is not None)
    results.write_records(out_dir / "results.jsonl", records)
    results.write_json(out_dir / "summary.json", summary)
    results.atomic_write(out_dir / "scenario.resolved.yaml", dump(scenario))
    results.write_json(out_dir / "timeline.json", timelines)
    results.write_json(out_dir / "links.json", links)
    wall = time.perf_counter() - started
    results.write_json(out_dir / "provenance.json", _provenance(scenario, wall, source))
    from .report import write_report  # the report reads the results files only

    write_report(out_dir)
    return RunOutput(out_dir, summary, scenario, wall)


def _provenance(scenario: Scenario, wall_s: float, source: str) -> dict:
    device = pick_device(scenario.workload.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    return {"simnet": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "device": f"{device.type}: {name}", "seed": scenario.seed, "scenario": source,
            "wall_time_s": wall_s, "torch_threads": torch.get_num_threads()}

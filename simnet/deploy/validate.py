"""`simnet validate`: predicted vs measured on the emulated cluster, per compressor.

One emulated run (K ranks, links shaped to the scenario's bandwidth) does, in order:
calibration microbenchmarks (unless a calibration is given), then per compressor the real
first-iteration payloads through the hook's collective (timed alone) and a few real DDP
iterations. Predictions:
  collective  the calibrated network model on the bytes the hook put on the wire
  iteration   what `simnet run` would pin (compute from `measure_compute`, encode/decode
              from the codec measurement), measured by each rank on the cluster itself,
              one sample after every timed iteration, composed as the engine does: per
              iteration the slowest rank's compute + encode + decodes (all-gather decodes
              K payloads), median over iterations, + the predicted collective.
The emulated links have no added delay (no netem): the scenario's latency is replaced by
the calibrated per-message alpha. Relative error = (predicted - measured) / measured.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from .. import results
from ..scenario import Scenario
from . import calibrate, measure, netns
from .predict import predict_collective, star

__all__ = ["validate", "format_table"]


def _payload_tasks(scenario: Scenario, repeats: int) -> list[dict]:
    data = scenario.model_dump(mode="json", exclude_none=True)
    data.pop("sweep", None)
    return [{"kind": "payload", "scenario": data, "repeats": repeats,
             "compressor": s.model_dump(mode="json", exclude_none=True)}
            for s in scenario.compressors]


def _measured_iteration(train: dict) -> float:
    """Median over iterations (the first, warm-up, left out) of the slowest rank's time."""
    its = [max(r["end_s"] - r["start_s"] for r in per_rank) for per_rank in zip(*train["ranks"])]
    return statistics.median(its[1:] if len(its) > 1 else its)


def _pinned_costs(train: dict) -> tuple[float, float, float]:
    """(compute, encode, decode) seconds as `simnet run` would pin them, measured by the
    ranks themselves (mean over ranks of each rank's median)."""
    pins = train["pinned"]
    return tuple(statistics.fmean(p[k] for p in pins) for k in ("compute_s", "encode_s", "decode_s"))


def _slowest_rank_s(train: dict, decodes: int) -> float:
    """Median over iterations of the slowest rank's compute + encode + `decodes` decodes, from
    the pin samples each rank took after every iteration: the engine's rule (a collective
    starts when its last worker is ready) applied to the measured per-rank costs."""
    per_rank = [list(zip(p["samples"]["compute_s"], p["samples"]["encode_s"],
                         p["samples"]["decode_s"])) for p in train["pinned"]]
    slowest = [max(c + e + decodes * d for c, e, d in its) for its in zip(*per_rank)]
    return statistics.median(slowest)


def _row(name, what, collective, nbytes, predicted, measured) -> dict:
    return {"compressor": name, "what": what, "collective": collective, "wire_bytes": nbytes,
            "predicted_s": predicted, "measured_s": measured,
            "rel_error": (predicted - measured) / measured}


def validate(scenario: Scenario, out_dir: str | Path | None = None, calibration: dict | None = None,
             iterations: int = 5, repeats: int = 9, force: bool = False,
             timeout_s: float = 600.0) -> dict:
    """Run prediction and measurement; returns (and writes) the validation report."""
    measure.check_cluster(scenario, force)
    K, rate = scenario.cluster.workers, measure.rate_bps(scenario)
    if rate > netns.MAX_RATE_BPS and not force:
        raise ValueError(f"cluster.topology.bandwidth: {rate / 1e6:.0f} Mbit/s is above the "
                         f"{netns.MAX_RATE_BPS / 1e6:.0f} Mbit/s an emulated link measures "
                         "faithfully here; use --force")
    tasks = [] if calibration else calibrate.tasks(K, rate)
    n_cal = len(tasks)
    trains = measure.train_tasks(scenario, iterations, 0)
    for t in trains:
        t["pin"] = True
    tasks += _payload_tasks(scenario, repeats) + trains
    run = measure.run_tasks(tasks, K, rate, True, timeout_s)
    res = run["results"]
    cal = calibration or calibrate.fit(res[:n_cal], K, rate)
    topo = star(K, rate)
    n = len(scenario.compressors)
    payloads, trains = res[n_cal:n_cal + n], res[n_cal + n:]
    rows = []
    for spec, pay, train in zip(scenario.compressors, payloads, trains):
        name, c = spec.display_name(), pay["collective"]
        wire = [pay["wire_bytes"]] * K
        comm = predict_collective(topo, c, wire, cal)
        rows.append(_row(name, "collective", c, pay["wire_bytes"], comm, pay["median_s"]))
        compute, enc, dec = _pinned_costs(train)
        decodes = K if c == "allgather" else 1
        ranks = _slowest_rank_s(train, decodes)
        row = _row(name, "iteration", c, pay["wire_bytes"], ranks + comm,
                   _measured_iteration(train))
        row["predicted_parts_s"] = {"compute": compute, "encode": enc, "communication": comm,
                                    "decode": decodes * dec,
                                    "slowest_rank": ranks - compute - enc - decodes * dec}
        rows.append(row)
    report = {"workers": K, "rate_bps": rate, "calibration": cal, "rows": rows,
              "probe_bps": run.get("probe_bps"), "warnings": run.get("warnings", [])}
    if out_dir is not None:
        results.write_json(Path(out_dir) / "validation.json", report)
    return report


def format_table(report: dict) -> str:
    """The validation rows as a fixed-width text table."""
    wide = max([len("compressor")] + [len(r["compressor"]) for r in report["rows"]]) + 2
    head = f"{'compressor':<{wide}}{'what':<11}{'collective':<16}{'bytes':>10}{'predicted s':>13}" \
           f"{'measured s':>12}{'error':>9}"
    lines = [f"emulated star: {report['workers']} ranks, {report['rate_bps'] / 1e6:g} Mbit/s", head]
    for r in report["rows"]:
        lines.append(f"{r['compressor']:<{wide}}{r['what']:<11}{r['collective']:<16}{r['wire_bytes']:>10}"
                     f"{r['predicted_s']:>13.4f}{r['measured_s']:>12.4f}{100 * r['rel_error']:>8.1f}%")
    lines += [f"warning: {w}" for w in report.get("warnings", [])]
    return "\n".join(lines)

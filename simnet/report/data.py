"""Load a run's results files (DESIGN §6) into one object; nothing here re-runs anything.

Units follow the results files: seconds, bytes, samples/s. Optional files (provenance.json,
timeline.json, links.json) may be missing: the report then says what it could not draw.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

__all__ = ["RunData", "load_run", "short_label", "ReportInputError"]

# Compact names of compressor parameters, for tables and legends that must stay narrow.
_ABBREV = {"levels": "s", "bucket_size": "d", "bits": "b", "rank": "r", "error_feedback": "ef"}
_LABEL = re.compile(r"^(?P<name>[^()]+)\((?P<params>.*)\)$")


class ReportInputError(ValueError):
    """A results folder that cannot be reported on (missing or malformed files)."""


def short_label(compressor: str) -> str:
    """'qsgd(levels=7,bucket_size=512,encoding=elias)' -> 'qsgd s=7 d=512 elias'."""
    m = _LABEL.match(compressor)
    if not m:
        return compressor
    parts = [m["name"]]
    for item in filter(None, m["params"].split(",")):
        key, _, value = item.partition("=")
        if key == "encoding":
            parts.append(value)
        elif key == "error_feedback":
            parts.append("ef" if value == "True" else "no-ef")
        else:
            parts.append(f"{_ABBREV.get(key, key)}={value}")
    return " ".join(parts)


@dataclass
class RunData:
    """Everything the report draws, read from one results folder."""

    out: Path
    summary: list[dict]
    records: list[dict]
    scenario: dict
    scenario_text: str
    provenance: dict = field(default_factory=dict)
    timelines: dict = field(default_factory=dict)
    links: dict = field(default_factory=dict)
    validation: dict = field(default_factory=dict)
    _groups: dict | None = field(default=None, repr=False)

    @property
    def variants(self) -> list[str]:
        return list(dict.fromkeys(r["variant"] for r in self.summary))

    @property
    def compressors(self) -> list[str]:
        return list(dict.fromkeys(r["compressor"] for r in self.summary))

    @property
    def target(self) -> float | None:
        return (self.scenario.get("run") or {}).get("target_accuracy")

    def rows(self, variant: str) -> list[dict]:
        return [r for r in self.summary if r["variant"] == variant]

    def series(self, variant: str, compressor: str) -> list[dict]:
        """Per-iteration records of one (variant, compressor), in iteration order."""
        if self._groups is None:  # group once: records can be 10^5 lines for long sweeps
            self._groups = {}
            for r in self.records:
                self._groups.setdefault((r["variant"], r["compressor"]), []).append(r)
            for recs in self._groups.values():
                recs.sort(key=lambda r: r["iteration"])
        return self._groups.get((variant, compressor), [])

    def timeline(self, variant: str, compressor: str) -> list[dict] | None:
        """Per-worker phases of the first iteration (timeline.json keys 'variant / compressor')."""
        return self.timelines.get(f"{variant} / {compressor}")

    def sweep_axes(self) -> list[tuple[str, list]]:
        """[(dotted axis, values)] of the scenario's sweep: section, in file order."""
        return [(k, list(v)) for k, v in (self.scenario.get("sweep") or {}).items()]

    def variant_points(self) -> dict[str, tuple]:
        """Variant name -> its tuple of axis values, named the way the engine names variants."""
        axes = self.sweep_axes()
        points = {}
        for combo in itertools.product(*(values for _, values in axes)):
            name = ", ".join(f"{axis.split('.')[-1]}={value}" for (axis, _), value in zip(axes, combo))
            points[name] = combo
        return {v: points[v] for v in self.variants if v in points}

    def topology_spec(self, variant: str | None = None) -> dict:
        """The network package's topology spec (unit strings allowed) of a variant."""
        cluster = dict(self.scenario.get("cluster") or {})
        spec = {k: v for k, v in (cluster.get("topology") or {}).items() if v is not None}
        spec["workers"] = cluster.get("workers", 1)
        point = self.variant_points().get(variant or "", ())
        for (axis, _), value in zip(self.sweep_axes(), point):
            if axis.startswith("cluster.topology."):
                spec[axis.removeprefix("cluster.topology.")] = value
            elif axis == "cluster.workers":
                spec["workers"] = value
        return spec


def _read_json(path: Path, required: bool):
    if not path.exists():
        if required:
            raise ReportInputError(f"{path}: missing (run `simnet run` first)")
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ReportInputError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None


def load_run(out_dir: str | Path) -> RunData:
    """Read a results folder; ReportInputError names the file that is missing or broken."""
    out = Path(out_dir)
    if not out.is_dir():
        raise ReportInputError(f"{out}: no such results folder")
    summary = _read_json(out / "summary.json", required=True)
    if not isinstance(summary, list) or not summary:
        raise ReportInputError(f"{out / 'summary.json'}: expected a non-empty list of rows")
    path = out / "results.jsonl"
    if not path.exists():
        raise ReportInputError(f"{path}: missing (run `simnet run` first)")
    records = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise ReportInputError(f"{path}: line {n} is not valid JSON") from None
    scen_path = out / "scenario.resolved.yaml"
    text = scen_path.read_text() if scen_path.exists() else ""
    try:
        scenario = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        raise ReportInputError(f"{scen_path}: not valid YAML") from None
    return RunData(out, summary, records, scenario, text,
                   provenance=_read_json(out / "provenance.json", False),
                   timelines=_read_json(out / "timeline.json", False),
                   links=_read_json(out / "links.json", False),
                   validation=_read_json(out / "validation.json", False))

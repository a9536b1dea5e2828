"""What a run keeps under OUT/.simnet/ so that an interrupted run or sweep resumes.

- pinned.json: the scenario with measurements pinned, tagged with a hash of the scenario
  as given, so a resumed run reuses the same measured figures (and stays bit-identical).
- traces/<key>.pkl: training traces by trace key (train once, simulate many).
- variants/<index>.json: one finished variant's records, summary rows and timelines,
  tagged with a hash of the variant's resolved scenario and its traces' keys.
Every file is written atomically, so a kill at any instant leaves either the old state or
the new one, never a torn file.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

from .results import atomic_write
from .scenario import Scenario, Variant
from .training import Trace, trace_key

__all__ = ["RunState", "TraceCache"]


def _hash(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class TraceCache:
    """Training traces on disk, by trace key."""

    def __init__(self, folder: Path):
        self.folder = folder

    def load(self, key: str) -> Trace | None:
        path = self.folder / f"{key}.pkl"
        if not path.exists():
            return None
        try:
            trace = pickle.loads(path.read_bytes())
        except Exception:  # a cache entry from another version: recompute it
            return None
        return trace if isinstance(trace, Trace) else None

    def store(self, key: str, trace: Trace) -> None:
        path = self.folder / f"{key}.pkl"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(trace))
        tmp.replace(path)


class RunState:
    """Resumable state of one run folder."""

    def __init__(self, out_dir: Path, scenario: Scenario):
        self.folder = Path(out_dir) / ".simnet"
        self.source_hash = _hash(scenario.model_dump(mode="json"))

    def pinned(self) -> Scenario | None:
        path = self.folder / "pinned.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        if data.get("source_hash") != self.source_hash:
            return None
        return Scenario.model_validate(data["scenario"])

    def save_pinned(self, scenario: Scenario) -> Scenario:
        atomic_write(self.folder / "pinned.json", json.dumps(
            {"source_hash": self.source_hash, "scenario": scenario.model_dump(mode="json")}))
        return scenario

    @staticmethod
    def _variant_hash(variant: Variant) -> str:
        vs = variant.scenario
        return _hash({"scenario": vs.model_dump(mode="json"), "name": variant.name,
                      "traces": [trace_key(vs, c) for c in vs.compressors]})

    def load_variant(self, index: int, variant: Variant) -> dict | None:
        path = self.folder / "variants" / f"{index}.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return data["result"] if data.get("hash") == self._variant_hash(variant) else None

    def save_variant(self, index: int, variant: Variant, result: dict) -> None:
        atomic_write(self.folder / "variants" / f"{index}.json",
                     json.dumps({"hash": self._variant_hash(variant), "result": result}))

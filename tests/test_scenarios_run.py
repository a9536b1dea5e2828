"""Every shipped scenario runs end to end (shortened to a few iterations)."""

from pathlib import Path

import pytest
import yaml

from simnet import engine
from simnet.scenario import loads

SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_runs_shortened(path, tmp_path):
    data = yaml.safe_load(path.read_text())
    data["run"] = {**data.get("run", {}), "iterations": 3, "eval_every": 3}
    if data["workload"].get("dataset") == "synthetic":  # paper-scale: CI-sized
        data["workload"]["dataset_options"].update(image_size=32, samples=8)
        data["workload"]["batch_size"] = 2  # BatchNorm needs two samples at 1x1
        data["cluster"]["topology"]["workers_per_leaf"] = 2
        data["cluster"]["workers"] = 4
        data["cluster"]["stragglers"]["workers"] = [1]
        data["run"]["iterations"] = data["run"]["eval_every"] = 1
        for spec in data["compressors"]:  # skip timing 25.6 M-coordinate codecs
            spec.update(encode_s=0.1, decode_s=0.05)
    if data.get("sweep"):  # keep two points of the first axis
        axis, values = next(iter(data["sweep"].items()))
        data["sweep"] = {axis: values[:2]}
    result = engine.run(loads(data, str(path)), tmp_path)
    variants = len(next(iter(data["sweep"].values()))) if data.get("sweep") else 1
    assert len(result.summary) == variants * len(data["compressors"])
    for row in result.summary:
        assert row["throughput_samples_per_s"] > 0 and row["bytes_per_iteration"] > 0
    assert (tmp_path / "report.html").exists()

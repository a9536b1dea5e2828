import json
import subprocess
import sys

import pytest
import yaml


def simnet(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "simnet.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("patch, needle", [
    ({"cluster": {"workers": 2, "unknown_key": 1}}, "cluster.unknown_key"),
    ({"cluster": {"topology": {"bandwidth": "10 Gbit"}}}, "cluster.topology.bandwidth"),
    ({"cluster": {"topology": {"bandwidth": "-1 Gbit/s"}}}, "'-1 Gbit/s'"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, patch, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(patch))
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("[]")  # something already written must survive
    proc = simnet("run", str(path), "--out", str(out))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(path) in lines[0] and needle in lines[0]
    assert "Traceback" not in proc.stderr
    assert (out / "summary.json").read_text() == "[]"


def test_missing_file_exits_2(tmp_path):
    proc = simnet("check", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2 and "nope.yaml" in proc.stderr


def test_schema_is_json_and_validates_scenarios():
    import jsonschema
    from pathlib import Path

    proc = simnet("schema")
    assert proc.returncode == 0
    schema = json.loads(proc.stdout)
    for f in sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(f.read_text()), schema)

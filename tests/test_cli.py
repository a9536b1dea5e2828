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


# --- in-process checks of the command line (no training: engine.run is replaced) ----------

def cli(monkeypatch, capsys, *args):
    """Run simnet's main() in this process; returns (exit code, stdout, stderr)."""
    from simnet import cli as cli_module

    monkeypatch.setattr(sys, "argv", ["simnet", *args])
    with pytest.raises(SystemExit) as exc:
        cli_module.main()
    out, err = capsys.readouterr()
    return exc.value.code, out, err


QUICKSTART = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.yaml")


def fake_summary():
    base = {"variant": "base", "collective": "allgather", "throughput_samples_per_s": 1243.1,
            "mean_iteration_time_s": 0.0515, "bytes_per_iteration": 20448.0,
            "bits_per_coordinate": 4.26, "final_loss": 0.36, "final_accuracy": 0.9,
            "time_to_target_s": 0.52, "speedup_vs_none": 1.32, "throughput_speedup_vs_none": 1.33}
    names = ["none", "qsgd(levels=7,bucket_size=512)", "qsgdinf(levels=7,bucket_size=512)",
             "nuqsgd(levels=6,bucket_size=512)"]
    return [dict(base, compressor=n) for n in names]


def test_help_explains_every_command_with_an_example(monkeypatch, capsys):
    code, out, _ = cli(monkeypatch, capsys, "--help")
    assert code == 0
    for command in ("run", "sweep", "report", "schema", "check"):
        assert f"simnet {command}" in out, command  # an example line per command
        code, sub, _ = cli(monkeypatch, capsys, command, "--help")
        assert code == 0 and "Example: simnet " + command in sub, command


def test_failed_run_exits_1_with_one_line(monkeypatch, capsys, tmp_path):
    import simnet.engine

    def boom(*a, **k):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(simnet.engine, "run", boom)
    code, out, err = cli(monkeypatch, capsys, "run", QUICKSTART, "--out", str(tmp_path), "-q")
    assert code == 1
    assert err.strip().count("\n") == 0 and "CUDA out of memory" in err and "Traceback" not in err
    with pytest.raises(RuntimeError):  # --debug: the exception (and so its traceback) escapes
        cli(monkeypatch, capsys, "run", QUICKSTART, "--out", str(tmp_path), "--debug")


def test_quiet_run_prints_nothing_and_table_fits_when_piped(monkeypatch, capsys, tmp_path):
    import simnet.engine

    result = simnet.engine.RunOutput(tmp_path, fake_summary(), None, 1.0)
    monkeypatch.setattr(simnet.engine, "run", lambda *a, **k: result)
    code, out, err = cli(monkeypatch, capsys, "run", QUICKSTART, "--out", str(tmp_path), "--quiet")
    assert code == 0 and out == "" and err == ""
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = cli(monkeypatch, capsys, "run", QUICKSTART, "--out", str(tmp_path))
    assert code == 0
    lines = out.splitlines()
    assert "…" not in out and max(len(line) for line in lines) <= 80, out
    assert "qsgdinf s=7 d=512" in out and "1.32×" in out
    assert "report.html" in err


def test_report_and_sweep_bad_input_exit_2(monkeypatch, capsys, tmp_path):
    code, _, err = cli(monkeypatch, capsys, "report", str(tmp_path / "none"))
    assert code == 2 and "no such results folder" in err
    code, _, err = cli(monkeypatch, capsys, "sweep", QUICKSTART)
    assert code == 2 and "no sweep" in err
    code, _, err = cli(monkeypatch, capsys, "run", "--no-such-option")
    assert code == 2


def test_schema_rejects_a_bad_scenario(monkeypatch, capsys):
    import jsonschema

    code, out, _ = cli(monkeypatch, capsys, "schema")
    schema = json.loads(out)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"cluster": {"wrokers": 3}}, schema)

"""Calibration fit (oracle: synthetic times from known parameters), predictions, CLI wiring."""

import typer
from typer.testing import CliRunner

from simnet.deploy import calibrate
from simnet.deploy.commands import register
from simnet.deploy.predict import _closed_form, predict_collective, star

TRUE = {"alpha_s": 3e-4, "bandwidth_factor": 0.95, "efficiency": {"allgather": 0.8, "ring-allreduce": 1.0},
        "overhead_s": {"allgather": 2e-3, "ring-allreduce": 1e-3}}


def synthetic(workers, rate):
    out = [{"kind": "pingpong", "alpha_s": TRUE["alpha_s"]}]
    for c in calibrate.COLLECTIVES:
        sizes = calibrate.sizes(c, workers, rate)
        out.append({"kind": "bench", "collective": c, "sizes": sizes,
                    "median_s": [predict_collective(star(workers, rate), c, n, TRUE) for n in sizes]})
    return out


def test_fit_recovers_known_parameters():
    for workers, rate in [(2, 50e6), (3, 100e6)]:
        got = calibrate.fit(synthetic(workers, rate), workers, rate)
        assert abs(got["bandwidth_factor"] - 0.95) < 1e-6
        for c in calibrate.COLLECTIVES:
            assert abs(got["efficiency"][c] - TRUE["efficiency"][c]) < 1e-6
            assert abs(got["overhead_s"][c] - TRUE["overhead_s"][c]) < 1e-7


def test_small_sizes_get_more_repeats_up_to_the_cap():
    budget, cap = calibrate.SAMPLE_BUDGET_S, calibrate.MAX_REPEATS
    assert calibrate.repeats_per_size(3, (0.02, 0.05, 0.2, 0.6)) == [25, 10, 3, 3]
    assert calibrate.repeats_per_size(7, (0.001, 0.1, 1.0)) == [cap, max(7, round(budget / 0.1)), 7]
    tasks = calibrate.tasks(2, 50e6)
    for t in tasks[1:]:
        assert len(t["repeats"]) == len(t["sizes"]) == len(calibrate.TARGETS_S)


def test_closed_forms_match_design():
    B, lat, n = 1e6, 1e-5, 4e6
    for p in (2, 3, 8):
        topo = {"kind": "star", "workers": p, "bandwidth": B, "latency": lat}
        a = 2 * lat  # a star message crosses two links
        assert abs(_closed_form(topo, "ring-allreduce", n) - (2 * (p - 1) * a + 2 * (p - 1) / p * n / B)) < 1e-12
        assert abs(_closed_form(topo, "allgather", n) - (a + (p - 1) * n / B)) < 1e-12


def test_calibration_file_roundtrip(tmp_path):
    calibrate.write(tmp_path / "c.yaml", TRUE, "test")
    assert calibrate.read(tmp_path / "c.yaml") == TRUE


def test_cli_registers_and_refuses_too_many_ranks(tmp_path):
    app = typer.Typer()
    register(app)
    scenario = tmp_path / "s.yaml"
    scenario.write_text("cluster: {workers: 64}\ncompressors: [{name: none}]\n")
    result = CliRunner().invoke(app, ["measure", str(scenario), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "64 ranks" in result.output or "64 ranks" in str(result.stderr_bytes or b"")
    for cmd in ("measure", "calibrate", "validate"):
        assert CliRunner().invoke(app, [cmd, "--help"]).exit_code == 0


def test_validation_table_columns_line_up_for_long_names():
    from simnet.deploy.validate import format_table

    rows = [{"compressor": name, "what": "collective", "collective": "allgather", "wire_bytes": 10,
             "predicted_s": 1.0, "measured_s": 1.1, "rel_error": -1 / 11}
            for name in ("none", "qsgd(levels=7,bucket_size=512)")]
    lines = format_table({"workers": 2, "rate_bps": 5e7, "rows": rows}).splitlines()[1:]
    head, body = lines[0], lines[1:]
    assert {line.index("collective ") for line in body} == {head.index("what")}
    assert all(line.endswith("%") for line in body)
    assert "-9.1%" in lines[-1]

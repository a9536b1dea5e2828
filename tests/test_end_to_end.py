"""End to end: a tiny scenario through training, network replay, results and report."""

import json

import pytest

from simnet import engine
from simnet.results import SUMMARY_FIELDS, read_records
from simnet.scenario import load, loads
from tests.conftest import tiny_scenario


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run1")
    result = engine.run(loads(tiny_scenario()), out)
    return out, result


def test_writes_every_results_file(first_run):
    out, _ = first_run
    for name in ("results.jsonl", "summary.json", "scenario.resolved.yaml", "provenance.json",
                 "report.html", "trace.json", "summary.md"):
        assert (out / name).stat().st_size > 0, name


def test_records_and_summary_are_consistent(first_run):
    out, result = first_run
    records = read_records(out / "results.jsonl")
    assert len(records) == 2 * 30  # compressors x iterations
    summary = json.loads((out / "summary.json").read_text())
    assert [row["compressor"] for row in summary] == ["none", "qsgd(levels=7,bucket_size=128)"]
    for row in summary:
        assert set(SUMMARY_FIELDS) <= set(row)
        recs = [r for r in records if r["compressor"] == row["compressor"]]
        assert recs[-1]["sim_time_s"] == pytest.approx(sum(r["iteration_time_s"] for r in recs))
        for r in recs:  # the split adds up to the iteration time
            parts = r["compute_s"] + r["encode_s"] + r["communication_s"] + r["wait_s"]
            assert parts == pytest.approx(r["iteration_time_s"], rel=1e-9)
            assert min(r["compute_s"], r["encode_s"], r["communication_s"], r["wait_s"]) >= 0
    none, qsgd = summary
    # 4-bit QSGD sends far fewer bytes than fp32 (32 bits/coord) and so communicates faster.
    assert none["bits_per_coordinate"] == pytest.approx(32.0)
    assert qsgd["bits_per_coordinate"] < 6
    assert qsgd["throughput_samples_per_s"] > none["throughput_samples_per_s"]
    assert none["speedup_vs_none"] in (1.0, None)


def test_resolved_scenario_pins_measurements(first_run):
    out, _ = first_run
    resolved = load(out / "scenario.resolved.yaml")
    assert resolved.cluster.compute.kind == "fixed" and resolved.cluster.compute.seconds > 0
    assert all(c.encode_s is not None and c.decode_s is not None for c in resolved.compressors)


def test_rerun_of_resolved_scenario_is_bit_identical(first_run, tmp_path):
    out, _ = first_run
    engine.run(load(out / "scenario.resolved.yaml"), tmp_path)
    for name in ("results.jsonl", "summary.json", "scenario.resolved.yaml"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_report_has_plots_and_table(first_run):
    out, _ = first_run
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 2
    assert "speedup vs none" in page and "qsgd(levels=7,bucket_size=128)" in page
    events = json.loads((out / "trace.json").read_text())["traceEvents"]
    assert {"compute", "communicate"} <= {e["name"] for e in events if e["ph"] == "X"}
    assert all(e["dur"] >= 0 for e in events if e["ph"] == "X")


def test_links_json_counts_the_bytes_each_link_carries(first_run):
    out, _ = first_run
    links = json.loads((out / "links.json").read_text())
    records = read_records(out / "results.jsonl")
    qsgd = "base / qsgd(levels=7,bucket_size=128)"
    per_worker = sum(r["payload_bytes"] for r in records if r["compressor"] in qsgd) / 30 / 4
    # Direct all-gather on a star: each worker's uplink carries its payload to 3 others.
    uplinks = [n for link, n in links[qsgd].items() if link.startswith("w")]
    assert len(uplinks) == 4
    assert sum(uplinks) == pytest.approx(3 * 4 * per_worker, rel=1e-9)

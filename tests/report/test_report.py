"""report.html and summary.md of real tiny runs: every section, a plot per compressor and
per variant, images that decode, and a report built from the results files alone."""

import base64
import json
import re
import shutil
import struct

import pytest

from simnet.report import ReportInputError, figures_net, load_run, write_report
from simnet.report.data import short_label
from simnet.report.sweep_axis import axis_positions

ALWAYS = ["brief", "how-to-read", "summary", "convergence", "per-compressor", "throughput",
          "breakdown", "topology", "timeline", "scenario"]


def sections(page: str) -> list[str]:
    return re.findall(r"<section id='([^']+)'>", page)


def images(page: str) -> dict[str, bytes]:
    """alt text -> decoded PNG bytes of every embedded image."""
    found = re.findall(r"<img alt='([^']*)' src='data:image/png;base64,([^']+)'>", page)
    return {alt.replace("&#x27;", "'"): base64.b64decode(data) for alt, data in found}


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_single_run_has_every_section_and_a_plot_per_compressor(single_dir):
    page = (single_dir / "report.html").read_text()
    assert sections(page) == ALWAYS  # no sweep section: one variant
    imgs = images(page)
    summary = json.loads((single_dir / "summary.json").read_text())
    for comp in {r["compressor"] for r in summary}:
        assert f"per-compressor: {comp}" in imgs, comp
        assert short_label(comp) in page
    assert "convergence: base" in imgs and "timeline: base" in imgs and "topology: base" in imgs
    for alt, data in imgs.items():
        w, h = png_size(data)
        assert w > 200 and h > 100, alt
    assert "src='http" not in page and 'src="http' not in page  # self-contained


def test_sweep_report_has_sweep_section_and_a_plot_per_variant(sweep_dir):
    page = (sweep_dir / "report.html").read_text()
    assert sections(page) == ALWAYS[:3] + ["sweep"] + ALWAYS[3:]
    imgs = images(page)
    variants = ["bandwidth=10 Mbit/s", "bandwidth=1 Gbit/s"]
    for v in variants:
        assert f"convergence: {v}" in imgs and f"timeline: {v}" in imgs
    assert "speedup against the swept axis" in imgs
    data = load_run(sweep_dir)
    xs, ticks, label, log = axis_positions(data)
    assert xs == [1e7, 1e9] and ticks == ["10 Mbit/s", "1 Gbit/s"] and log
    assert label == "bandwidth (bit/s)"


def test_summary_md_has_a_row_per_variant_and_compressor(sweep_dir):
    md = (sweep_dir / "summary.md").read_text()
    summary = json.loads((sweep_dir / "summary.json").read_text())
    rows = [line for line in md.splitlines() if line.startswith("| bandwidth=")]
    assert len(rows) == len(summary) == 4
    assert "speedup vs none" in md and "time to target (s)" in md
    assert md.count("\n") < 40  # short


def test_report_reads_results_files_only(single_dir, tmp_path, monkeypatch):
    copy = tmp_path / "copy"
    shutil.copytree(single_dir, copy)
    for name in ("report.html", "summary.md", "trace.json"):
        (copy / name).unlink()

    def forbidden(*a, **k):
        raise AssertionError("the report must not re-run anything")

    import simnet.engine
    import simnet.training

    monkeypatch.setattr(simnet.engine, "run", forbidden)
    monkeypatch.setattr(simnet.training, "train", forbidden)
    write_report(copy)
    for name in ("report.html", "summary.md", "trace.json"):
        assert (copy / name).read_bytes() == (single_dir / name).read_bytes(), name


def test_missing_results_file_names_it(single_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(single_dir, copy)
    (copy / "results.jsonl").unlink()
    with pytest.raises(ReportInputError, match="results.jsonl"):
        write_report(copy)
    with pytest.raises(ReportInputError, match="no such results folder"):
        write_report(tmp_path / "nowhere")


def test_links_json_colours_the_topology(single_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(single_dir, copy)
    (copy / "links.json").unlink()
    write_report(copy)
    assert "no links.json" in (copy / "report.html").read_text()
    summary = json.loads((copy / "summary.json").read_text())
    links = {f"base / {r['compressor']}": {"w0->sw0": r["bytes_per_iteration"] / 4,
                                          "sw0->w1": r["bytes_per_iteration"] / 4} for r in summary}
    (copy / "links.json").write_text(json.dumps(links))
    png, caption = figures_net.topology(load_run(copy), "base")
    assert "share of each direction" in caption
    assert png_size(png)[0] > 400  # one panel per compressor


@pytest.mark.parametrize("name, short", [
    ("none", "none"),
    ("qsgd(levels=7,bucket_size=512)", "qsgd s=7 d=512"),
    ("nuqsgd(levels=6,bucket_size=512,encoding=elias)", "nuqsgd s=6 d=512 elias"),
    ("topk(ratio=0.01,error_feedback=False)", "topk ratio=0.01 no-ef"),
    ("my label", "my label"),
])
def test_short_label(name, short):
    assert short_label(name) == short


def test_validation_json_adds_predicted_vs_measured(single_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(single_dir, copy)
    assert "Predicted vs measured" not in (copy / "report.html").read_text()
    (copy / "validation.json").write_text(json.dumps({
        "workers": 2, "rate_bps": 5e7, "warnings": [],
        "rows": [{"compressor": "none", "what": "collective", "collective": "ring-allreduce",
                  "wire_bytes": 2592808, "predicted_s": 0.4338, "measured_s": 0.4380,
                  "rel_error": -0.0096}]}))
    write_report(copy)
    page = (copy / "report.html").read_text()
    assert "Predicted vs measured" in page and "0.4338" in page and "-1.0%" in page

"""report.html rendered by headless Chromium: every image loads, no console error occurs.

Skips when no Chromium is installed (.ci/run installs Debian's `chromium`). The screenshot
is kept as a test artifact in $SIMNET_TEST_ARTIFACTS (default reports/test-artifacts/).
"""

import os
from pathlib import Path

import pytest

from simnet.report.browser import find_chromium, probe, screenshot

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="no Chromium binary (apt-get install chromium, or set SIMNET_CHROMIUM): "
           "report.html not rendered in a browser")

ARTIFACTS = Path(os.environ.get("SIMNET_TEST_ARTIFACTS")
                 or Path(__file__).resolve().parents[2] / "reports" / "test-artifacts")


def test_report_renders_with_every_image_and_no_console_error(sweep_dir):
    result = probe(sweep_dir / "report.html")
    assert result["images"] >= 8
    assert result["broken"] == [] and all(w > 0 for w in result["widths"])
    assert result["errors"] == [] and result["console"] == []
    assert "summary" in result["sections"] and "sweep" in result["sections"]
    shot = screenshot(sweep_dir / "report.html", ARTIFACTS / "report-sweep.png", 1200, 2400)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


def test_probe_sees_a_broken_image_and_a_script_error(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><head></head><body><img alt='gone' src='missing.png'>"
                    "<script>undefinedFunction()</script></body></html>")
    result = probe(page)
    assert result["broken"] == ["gone"]
    assert any("undefinedFunction" in e for e in result["errors"])
    assert result["console"]

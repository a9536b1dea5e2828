"""Look at report.html the way a person would: headless Chromium renders it, reports broken
images and console errors, and takes screenshots. No dependency beyond a Chromium binary.

    python -m simnet.report.browser reports/quickstart/report.html docs/report.png

Chromium runs with a fresh profile and with its background networking off (it reaches
nothing: the report is self-contained).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["find_chromium", "probe", "screenshot", "PROBE_SCRIPT"]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio", "--disable-extensions"]

# Injected first in <head>: records script errors, failed resources (capture phase) and
# console.error calls, then on load writes a JSON verdict into the DOM for --dump-dom.
PROBE_SCRIPT = """<script>
window.__simnetErrors = [];
window.addEventListener('error', function (e) {
  __simnetErrors.push(e.message || ('failed to load ' + (e.target && (e.target.src || e.target.href))));
}, true);
(function () { var ce = console.error; console.error = function () {
  __simnetErrors.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
  return ce.apply(console, arguments); }; })();
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var out = {images: imgs.length, errors: __simnetErrors,
             broken: imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                         .map(function (i) { return i.alt; }),
             widths: imgs.map(function (i) { return i.naturalWidth; }),
             sections: Array.prototype.map.call(document.querySelectorAll('section[id]'),
                                                function (s) { return s.id; })};
  var pre = document.createElement('pre'); pre.id = 'simnet-probe';
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
});
</script>"""


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary ($SIMNET_CHROMIUM first), or None."""
    for name in (os.environ.get("SIMNET_CHROMIUM"), "chromium", "chromium-browser",
                 "google-chrome", "google-chrome-stable"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _chromium(args: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError("no Chromium found (apt-get install chromium, or set SIMNET_CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="simnet-chromium-") as profile:
        return subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout_s)


def probe(html_path: str | Path, timeout_s: float = 60) -> dict:
    """Render a page and return {images, broken, widths, errors, sections, console}.

    broken: alt texts of images with naturalWidth 0; errors: script errors, failed loads,
    console.error calls; console: Chromium's own console log lines (any is suspicious for
    a report that has no script of its own).
    """
    page = Path(html_path).read_text()
    with tempfile.TemporaryDirectory(prefix="simnet-probe-") as tmp:
        copy = Path(tmp) / "page.html"
        copy.write_text(page.replace("<head>", "<head>" + PROBE_SCRIPT, 1))
        proc = _chromium(["--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000",
                          "--dump-dom", copy.as_uri()], timeout_s)
    m = re.search(r'<pre id="simnet-probe">(.*?)</pre>', proc.stdout, re.S)
    if not m:
        raise RuntimeError(f"chromium rendered no probe result (exit {proc.returncode}): "
                           f"{proc.stderr[-500:]}")
    import html

    result = json.loads(html.unescape(m.group(1)))
    result["console"] = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return result


def screenshot(html_path: str | Path, png_path: str | Path, width: int = 1200,
               height: int = 1800, timeout_s: float = 60) -> Path:
    """PNG of the top width×height pixels (CSS px) of a page."""
    png_path = Path(png_path).resolve()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    proc = _chromium([f"--window-size={width},{height}", f"--screenshot={png_path}",
                      Path(html_path).resolve().as_uri()], timeout_s)
    if not png_path.exists():
        raise RuntimeError(f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-500:]}")
    return png_path


if __name__ == "__main__":
    if len(sys.argv) not in (3, 5):
        sys.exit("usage: python -m simnet.report.browser REPORT.html OUT.png [WIDTH HEIGHT]")
    size = [int(v) for v in sys.argv[3:5]] or [1200, 1800]
    print(screenshot(sys.argv[1], sys.argv[2], *size))

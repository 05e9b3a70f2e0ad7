"""A real browser opens the smoke study's report.html: headless Chromium (Debian's package,
installed by .ci/run where apt works), no console errors, every image and animation
decoded, the tables there; a screenshot is kept under pytest's tmp folder."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--allow-file-access-from-files", "--enable-logging=stderr", "--v=0"]

# The report holds no script; a wrapper page loads it in a frame and, once the frame has
# loaded (every data-URI image included), writes what it found into its own DOM, which
# --dump-dom prints.
PROBE = """<!DOCTYPE html><html><body><pre id="out">pending</pre>
<iframe id="f" src="REPORT" style="width:1280px;height:900px"></iframe><script>
document.getElementById('f').addEventListener('load', () => {
  const d = document.getElementById('f').contentDocument;
  const imgs = [...d.images];
  document.getElementById('out').textContent = 'RESULT' + JSON.stringify({
    images: imgs.length,
    broken: imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt),
    gifs: imgs.filter(i => i.src.startsWith('data:image/gif')).length,
    tables: d.querySelectorAll('table').length,
    headings: [...d.querySelectorAll('h2')].map(h => h.textContent),
    external: [...d.querySelectorAll('[src],[href]')].map(e => e.getAttribute('src') ||
      e.getAttribute('href')).filter(u => !u.startsWith('data:')),
  }) + 'END';
});
</script></body></html>"""


def chromium(*args, profile) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def test_report_renders_in_chromium(smoke, tmp_path):
    report = smoke / "report.html"
    probe = smoke / "probe.html"
    probe.write_text(PROBE.replace("REPORT", report.name))
    try:
        r = chromium("--virtual-time-budget=10000", "--dump-dom", probe.as_uri(),
                     profile=tmp_path / "profile1")
    finally:
        probe.unlink()
    found = re.search(r"RESULT(.*?)END", r.stdout, re.S)
    assert found, r.stdout[-2000:] + r.stderr[-2000:]
    page = json.loads(found.group(1))
    assert page["broken"] == [], page
    assert page["gifs"] == 2 and page["images"] >= 6  # 2 animations, skill and loss plots
    assert page["tables"] >= 8 and page["external"] == []
    for h in ("Data and split", "Methods", "Results", "Cases", "Training curves",
              "Conventions", "Manifest"):
        assert h in page["headings"]
    console = [line for line in r.stderr.splitlines()
               if "CONSOLE" in line or "Failed to load resource" in line]
    assert console == [], console
    shot = tmp_path / "report.png"
    chromium("--window-size=1280,3000", f"--screenshot={shot}", report.as_uri(),
             profile=tmp_path / "profile2")
    assert shot.stat().st_size > 10_000
    print(f"screenshot of the report: {shot}")

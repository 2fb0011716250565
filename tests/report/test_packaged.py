"""The report renders when marketlab is imported from a zip (the wheel on a cluster)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import marketlab

SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
import marketlab
from marketlab.report.html import render_document
from marketlab.report.model import Section
assert marketlab.__file__.startswith(sys.argv[1]), marketlab.__file__
html = render_document("T <x>", "sub", [Section("quality", "Data quality", ["<p>ok</p>"])], [("rows", 541909)])
print(html)
"""


def test_report_template_is_read_from_a_zipped_package(tmp_path):
    # Spark ships the wheel to the driver and executors as a zip on sys.path: package files
    # must be read through importlib.resources, not from a directory next to __file__.
    pkg = Path(marketlab.__file__).parent
    archive = tmp_path / "marketlab.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in pkg.rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts:
                zf.write(f, f.relative_to(pkg.parent))
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(archive)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    html = proc.stdout
    assert "<style>" in html and "font-family" in html  # the packaged CSS is inlined
    assert "T &lt;x&gt;" in html and "<p>ok</p>" in html  # title escaped, fragments as markup
    assert 'id="quality"' in html and "541,909" in html

"""The exploration notebooks: .py (py:percent) and .ipynb in sync, each runs top to bottom.

Every notebook is executed with nbclient in a kernel of this virtualenv ("python3"),
against the small test lake and against an empty lake (each section must then print
``skipped: ...`` instead of failing). One kernel serves all runs: each run starts with
``%reset -f`` and sets MARKETLAB_CONF / MARKETLAB_SET, so nothing leaks between
notebooks but the Spark session (one JVM start instead of eight).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NB_DIR = ROOT / "notebooks"
NAMES = ["01_data_quality", "02_customers_segments", "03_demand_forecast", "04_campaign_uplift"]
SPARK = ["spark.master=local[1]", "spark.conf.spark.ui.enabled=false", "spark.conf.spark.sql.shuffle.partitions=2",
         "spark.log_level=ERROR"]


def test_every_notebook_is_paired():
    assert sorted(p.stem for p in NB_DIR.glob("*.py")) == NAMES
    assert sorted(p.stem for p in NB_DIR.glob("*.ipynb")) == NAMES
    assert 'formats = "ipynb,py:percent"' in (NB_DIR / "jupytext.toml").read_text()


@pytest.mark.parametrize("name", NAMES)
def test_py_and_ipynb_are_in_sync(name):
    import jupytext

    py = jupytext.read(NB_DIR / f"{name}.py")
    ipynb = jupytext.read(NB_DIR / f"{name}.ipynb")
    cells = lambda nb: [(c.cell_type, c.source.strip()) for c in nb.cells]  # noqa: E731
    assert cells(py) == cells(ipynb), f"{name}: run `make notebooks-sync` (jupytext --sync notebooks/*.py)"
    assert ipynb.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert ipynb.metadata["kernelspec"]["name"] == "python3"
    raw = json.loads((NB_DIR / f"{name}.ipynb").read_text())
    assert all(not c.get("outputs") for c in raw["cells"] if c["cell_type"] == "code"), "commit notebooks without outputs"


@pytest.fixture(scope="module")
def kernel():
    """One python3 kernel (this venv's interpreter) for every notebook run of the module."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import start_new_kernel

    spec = KernelSpecManager().get_kernel_spec("python3")
    exe = spec.argv[0]
    if exe not in ("python", "python3") and Path(exe).resolve() != Path(sys.executable).resolve():
        pytest.skip(f"kernel python3 runs {exe}, not this venv's {sys.executable}: run `make install`")
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=120, cwd=str(NB_DIR))
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def run_notebook(name: str, kernel, conf: Path, overrides: list[str], out: Path) -> nbformat.NotebookNode:
    """Execute the notebook top to bottom in ``kernel`` with the given conf; save the executed copy."""
    from nbclient import NotebookClient

    nb = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
    from marketlab.privacy import SECRET_ENV
    from report.small_lake import SECRET

    # The small lake's keys were made with the report tests' secret: the notebooks join on them.
    env = {"MARKETLAB_CONF": str(conf), "MARKETLAB_SET": ";".join(overrides), SECRET_ENV: SECRET}
    setup = nbformat.v4.new_code_cell(
        f"%reset -f\nimport os as _os\n_os.environ.update({env!r})\ndel _os")
    nb.cells.insert(0, setup)
    km, kc = kernel
    client = NotebookClient(nb, km=km, kc=kc, timeout=600, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(NB_DIR)}})
    try:
        client.execute(cleanup_kc=False)
    finally:
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
    return nb


def _outputs(nb) -> tuple[list, str]:
    outs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outs if o.output_type == "stream")
    return outs, text


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_on_the_small_lake(name, kernel, small_lake, tmp_path):
    nb = run_notebook(name, kernel, ROOT / "conf" / "test.yaml", [*small_lake.overrides, *SPARK],
                      tmp_path / f"{name}.ipynb")
    outs, text = _outputs(nb)
    assert not [o for o in outs if o.output_type == "error"]
    assert f"lake: {small_lake.lake_root}" in text
    images = [o for o in outs if "image/png" in o.get("data", {})]
    assert len(images) >= 2, f"{name}: expected plots"
    # every table the notebook reads exists in the small lake (bronze is not part of it)
    skipped = [ln for ln in text.splitlines() if ln.startswith("skipped") and "bronze." not in ln]
    assert not skipped, skipped


@pytest.mark.parametrize("name", NAMES)
def test_notebook_skips_sections_of_an_empty_lake(name, kernel, tmp_path):
    nb = run_notebook(name, kernel, ROOT / "conf" / "test.yaml",
                      [f"lake_root={tmp_path / 'empty'}", f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}", *SPARK],
                      tmp_path / f"{name}.ipynb")
    outs, text = _outputs(nb)
    assert not [o for o in outs if o.output_type == "error"]
    assert "skipped: table" in text and "does not exist" in text

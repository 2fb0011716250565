"""Source file names are names: a ':' or Hadoop glob characters in a configured path load that
file, and only the source's explicit ``pattern`` globs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from conftest import DATA, make_settings
from marketlab.errors import ConfError
from marketlab.ingest.run import run as ingest
from marketlab.tables import Lake

RETAIL = DATA / "online_retail/online_retail.csv.gz"


def _retail_lines(n: int, skip: int = 0) -> list[str]:
    """Header + ``n`` records of the vendored file, starting after record ``skip``."""
    with gzip.open(RETAIL, "rt", encoding="utf-8") as fh:
        lines = [next(fh).rstrip("\n") for _ in range(skip + n + 1)]
    return [lines[0], *lines[1 + skip:]]


def _write(path: Path, n: int, skip: int = 0) -> list[str]:
    """Write a file of ``n`` records and return their invoice numbers (first field)."""
    lines = _retail_lines(n, skip)
    path.write_text("\n".join(lines) + "\n")
    return sorted(ln.split(",", 1)[0] for ln in lines[1:])


def _lake(spark, tmp_path: Path, path: Path, **source) -> Lake:
    overrides = [f"sources.online_retail.path={json.dumps(str(path))}", "jobs.ingest.sources=[online_retail]"]
    overrides += [f"sources.online_retail.{k}={json.dumps(v)}" for k, v in source.items()]
    return Lake(spark, make_settings(tmp_path, overrides))


def _loaded(lake: Lake) -> list[str]:
    return sorted(r.invoice_no for r in lake.read("bronze.orders").select("invoice_no").collect())


@pytest.mark.parametrize("name", ["orders_2011-12-09T12:00.csv", "orders[1].csv", "orders{a,b}.csv",
                                  "orders\\x.csv", "orders?*.csv", "orders 100%.csv"])
def test_a_configured_file_loads_exactly_its_rows(spark, tmp_path, name):
    src = tmp_path / "in"
    src.mkdir()
    expected = _write(src / name, 37)
    _write(src / "orders1.csv", 50, skip=37)  # what a glob reading of `orders[1].csv` would match
    _write(src / "ordersa.csv", 20, skip=87)   # ... and of `orders{a,b}.csv`, `orders?*.csv`
    lake = _lake(spark, tmp_path, src / name)
    summary = ingest(lake, lake.settings.jobs.ingest)
    assert [(Path(f.file).name, f.status, f.records, f.bronze_rows, f.rejected_rows) for f in summary.files] == \
        [(name, "ok", 37, 37, 0)]
    assert _loaded(lake) == expected
    assert {r._source_file for r in lake.read("bronze.orders").select("_source_file").distinct().collect()} == \
        {f"file:{src / name}"}
    # A rerun knows the file: nothing is loaded twice.
    again = ingest(lake, lake.settings.jobs.ingest)
    assert [f.status for f in again.files] == ["skipped"] and lake.read("bronze.orders").count() == 37


def test_a_folder_with_odd_names_loads_every_file_once(spark, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    expected = []
    for i, name in enumerate(["a_2011-12-09T12:00.csv", "b[1].csv", "b1.csv", "c{a,b}.csv"]):
        expected += _write(src / name, 10 + i, skip=100 * i)
    lake = _lake(spark, tmp_path, src)
    summary = ingest(lake, lake.settings.jobs.ingest)
    assert sorted((Path(f.file).name, f.status, f.bronze_rows) for f in summary.files) == [
        ("a_2011-12-09T12:00.csv", "ok", 10), ("b1.csv", "ok", 12), ("b[1].csv", "ok", 11), ("c{a,b}.csv", "ok", 13)]
    assert summary.totals() == {"records": 46, "bronze_rows": 46, "rejected_rows": 0}
    assert _loaded(lake) == sorted(expected)


def test_only_the_pattern_setting_globs(spark, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    wanted = _write(src / "orders_1.csv", 15) + _write(src / "orders_2011-12-09T12:00.csv", 16, skip=15)
    _write(src / "returns_1.csv", 17, skip=31)
    lake = _lake(spark, tmp_path, src, pattern="orders_*.csv")
    summary = ingest(lake, lake.settings.jobs.ingest)
    assert sorted(Path(f.file).name for f in summary.files if f.status == "ok") == \
        ["orders_1.csv", "orders_2011-12-09T12:00.csv"]
    assert _loaded(lake) == sorted(wanted)


def test_a_glob_as_path_is_a_missing_file_with_a_hint(spark, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    _write(src / "orders1.csv", 5)
    lake = _lake(spark, tmp_path, src / "orders*.csv")
    summary = ingest(lake, lake.settings.jobs.ingest)
    (res,) = summary.files
    assert res.status == "failed"
    assert "no such file or folder" in res.message and "`pattern`" in res.message
    assert not lake.exists("bronze.orders")


def test_a_pattern_is_file_names_only(tmp_path):
    with pytest.raises(ConfError, match="sources.online_retail.pattern: .*no '/'"):
        make_settings(tmp_path, ["sources.online_retail.pattern=sub/*.csv"])

"""``Lake.history`` and ``marketlab history TABLE``: each version with the job and MLflow run that wrote it."""

from __future__ import annotations

import subprocess
import sys

import mlflow
import pytest

from conftest import ROOT
from marketlab.tables import Lake, TableNotFoundError, UnknownTableError
from marketlab.tracking import job_run

MARKETLAB = [sys.executable, "-m", "marketlab.cli"]
TABLE = "silver.adjustments"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*MARKETLAB, *args], capture_output=True, text=True, cwd=ROOT, timeout=180)


@pytest.fixture()
def written(spark, fresh_lake):
    """v0 outside a job, v1 and v2 (a merge) inside one job run."""
    lake = fresh_lake
    lake.write(spark.createDataFrame([(1, "a"), (2, "b")], "id long, v string"), TABLE)
    with job_run(lake.settings, "clean", lake) as run:
        lake.write(spark.createDataFrame([(1, "a"), (2, "b"), (3, "c")], "id long, v string"), TABLE)
        lake.merge(spark.createDataFrame([(3, "C"), (4, "d")], "id long, v string"), TABLE, keys=["id"])
    assert lake.commit_info == {}  # only commits inside the run carry it
    return lake, run.info.run_id


def test_history_lists_versions_newest_first_with_the_writing_job_and_run(written):
    lake, run_id = written
    hist = Lake(lake.spark, lake.settings).history(TABLE)
    assert [c.version for c in hist] == [2, 1, 0]
    assert [c.operation for c in hist] == ["MERGE", "WRITE", "WRITE"]
    assert [(c.job, c.run_id) for c in hist] == [("clean", run_id), ("clean", run_id), (None, None)]
    assert hist[1].rows_written == 3 and hist[2].rows_written == 2 and hist[1].mode == "Overwrite"
    assert hist[0].rows_written is not None and hist[0].timestamp >= hist[2].timestamp
    assert [c.version for c in lake.history(TABLE, limit=1)] == [2]


def test_history_of_an_unknown_or_unwritten_table_is_one_clear_error(fresh_lake):
    with pytest.raises(UnknownTableError, match=r"no table 'silver.adjustment' in the catalog; did you mean silver.adjustments"):
        fresh_lake.history("silver.adjustment")
    with pytest.raises(TableNotFoundError, match="table 'gold.segments' does not exist"):
        fresh_lake.history("gold.segments")


def test_cli_history_prints_each_version(written):
    lake, run_id = written
    st = lake.settings
    out = _cli("history", TABLE, "--conf", "conf/test.yaml", "--set", f"lake_root={st.lake_root}",
               "--set", "spark.conf.spark.driver.memory=1g", "--limit", "2")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["version", "timestamp", "(UTC)"]
    assert len(lines) == 3
    assert lines[1].split()[0] == "2" and "MERGE" in lines[1] and lines[1].endswith(f"clean        {run_id}")
    assert lines[2].split()[0] == "1" and "WRITE" in lines[2] and run_id in lines[2]
    assert mlflow.get_run(run_id).data.params[f"wrote.{TABLE}"] == "2"  # the same run logged the lineage


def test_cli_history_unknown_table_is_one_line_and_exit_2():
    out = _cli("history", "nowhere.zzz", "--conf", "conf/test.yaml")
    assert out.returncode == 2
    assert out.stderr.strip() == "marketlab history: no table 'nowhere.zzz' in the catalog (see conf/base/catalog.yaml)"
    assert "Traceback" not in out.stderr

"""A full disk under the lake: one clear line and exit 75, no torn table, and the rerun after
space is freed completes. The lake lives on a real 6 MiB tmpfs (needs root and mount; skipped
with the reason otherwise)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from conftest import ROOT, make_settings
from marketlab.errors import DiskFullError, disk_full
from marketlab.runtime import job_argv, run_job
from marketlab.tables import Lake

TABLE = "gold.item_features"


@pytest.fixture()
def small_disk(tmp_path):
    mount = tmp_path / "lake"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _rows(spark, n: int):
    # sha2 of the id: incompressible text, so the Parquet size is about 64 bytes a row
    return spark.range(n).select(F.col("id").cast("string").alias("item_id"),
                                 F.sha2(F.col("id").cast("string"), 256).alias("description"))


def test_a_full_disk_is_one_line_and_leaves_the_last_version(spark, tmp_path, small_disk, capsys):
    argv = job_argv(str(ROOT / "conf" / "test.yaml"), [f"lake_root={small_disk}",
                    f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
                    f"mlflow.artifact_root={tmp_path / 'artifacts'}"])
    settings = make_settings(tmp_path, [f"lake_root={small_disk}"])
    lake = Lake(spark, settings)
    assert lake.write(_rows(spark, 1_000), TABLE) == 0
    before = sorted(r.item_id for r in lake.read(TABLE).collect())

    capsys.readouterr()
    rc = run_job("fill", lambda ctx: ctx.lake.write(_rows(ctx.spark, 400_000), TABLE), argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == DiskFullError.exit_code == 75
    assert err and err[-1].startswith(f"marketlab fill: no space left on device under {small_disk} (")
    assert "MiB free of 6.0 MiB" in err[-1] and "last committed versions" in err[-1]
    assert not any("Traceback" in line or "at org.apache" in line for line in err)

    fresh = Lake(spark, settings)
    assert fresh.version(TABLE) == 0
    assert sorted(r.item_id for r in fresh.read(TABLE).collect()) == before
    assert sorted(p.name for p in (Path(settings.table_path(TABLE)) / "_delta_log").glob("*.json")) \
        == ["00000000000000000000.json"]

    # The aborted write's data files stay on disk (no commit references them; VACUUM removes
    # them), so "free space" is a bigger disk here; the rerun then commits normally.
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    assert run_job("fill", lambda ctx: ctx.lake.write(_rows(ctx.spark, 400_000), TABLE), argv) == 0
    assert Lake(spark, settings).read(TABLE).count() == 400_000


def test_disk_full_is_found_in_the_exception_chain_only():
    try:
        try:
            raise OSError(28, "No space left on device")
        except OSError as inner:
            raise RuntimeError("write failed") from inner
    except RuntimeError as exc:
        assert disk_full(exc) == "No space left on device"
    assert disk_full(RuntimeError("java.io.IOException: Disk quota exceeded")) == "Disk quota exceeded"
    assert disk_full(ValueError("no space for doubt")) is None

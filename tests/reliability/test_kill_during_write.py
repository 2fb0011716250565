"""SIGKILL the pipeline while it writes a Delta table: the table keeps its last good version,
and a rerun gives exactly the tables of the uninterrupted run.

The kill is real: `marketlab pipeline` runs in its own process group (driver + JVM), a
watcher polls the output table folders of the stage, and the moment a new data file of a
not-yet-committed version appears in a randomly chosen output table (Delta writes data
files first and commits the ``_delta_log/<version>.json`` last), the whole group gets
SIGKILL.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from conftest import ROOT
from marketlab.config import load_settings
from marketlab.pipeline import stage
from marketlab.pipeline_runner import run_pipeline
from marketlab.errors import GateFailedError
from marketlab.tables import Lake, gated_tables

CONF = str(ROOT / "conf" / "test.yaml")


def _data_files(table_dir: Path) -> set[str]:
    return {str(p) for p in table_dir.rglob("*.parquet") if "_delta_log" not in p.parts}


def _commits(table_dir: Path) -> set[str]:
    return {p.name for p in (table_dir / "_delta_log").glob("*.json")}


# When a row was computed and by which MLflow run: differs between any two runs by design.
VOLATILE = {"checked_at", "run_id", "evaluated_at", "scored_at", "made_at", "exported_at"}


def _fingerprint(df: DataFrame) -> tuple[int, int]:
    """Order-independent content hash (row count, sum of row hashes) without run stamps."""
    cols = sorted(c for c in df.columns if c not in VOLATILE)
    row = df.select(F.xxhash64(*[F.col(c).cast("string") for c in cols]).alias("h")).agg(
        F.count("*").alias("n"), F.sum(F.col("h").cast("decimal(38,0)")).alias("s")).first()
    return int(row["n"]), int(row["s"] or 0)


def _current(table: str, df: DataFrame) -> DataFrame:
    """The rows that describe the tables as they are now.

    quality.results is a history keyed by (table, version, expectation): every run adds the
    results for the versions it wrote, so compare the verdicts on each table's latest version.
    Not the version number, nor the volume check's observed change and its wording: those
    describe the table's history (a rerun has a previous version to compare with).
    """
    if table != "quality.results":
        return df
    latest = df.groupBy("table").agg(F.max("version").alias("version"))
    return df.join(latest, ["table", "version"]).select(
        "table", "expectation", "kind", "column", "severity", "passed", "offending", "rows")


def _kill_during_write(cmd: list[str], watch: dict[str, Path], target: str, timeout: float = 600) -> dict:
    """Run ``cmd``; SIGKILL its process group once ``target`` has new uncommitted data files."""
    before = {t: (_data_files(d), _commits(d)) for t, d in watch.items()}
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    tdir = watch[target]
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"the job finished before it wrote {target}: rc={proc.returncode}\n"
                                     f"{proc.stderr.read()[-2000:]}")
            new_files = _data_files(tdir) - before[target][0]
            if new_files and _commits(tdir) == before[target][1]:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=60)
                return {"new_files": len(new_files), "committed": _commits(tdir) != before[target][1]}
            time.sleep(0.002)
        raise AssertionError(f"no write to {target} within {timeout} s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stderr.close()


@pytest.mark.slow
@pytest.mark.parametrize("stage_name,seed", [("clean", 1), ("segments", 2)])
def test_sigkill_mid_write_keeps_versions_and_rerun_is_identical(spark, pipeline_lake, tmp_path, stage_name, seed):
    _, _, overrides, root = pipeline_lake
    copy = tmp_path / "lake-copy"
    shutil.copytree(root, copy)
    moved = tuple(o.replace(str(root), str(copy)) for o in overrides)
    settings = load_settings(CONF, list(moved))
    lake = Lake(spark, settings)
    ref_settings = load_settings(CONF, list(overrides))
    ref = Lake(spark, ref_settings)
    outputs = [t for t in stage(stage_name).outputs if not t.startswith("ops.")]
    reference = {t: _fingerprint(_current(t, ref.read(t))) for t in outputs}
    versions = {t: lake.version(t) for t in outputs}

    # A random output table of the stage; overwrite of a whole table is one commit, so the
    # kill lands between its data files and its commit.
    rng = random.Random(seed)
    target = rng.choice([t for t in outputs if not t.startswith(("quality.", "silver._"))])
    watch = {t: Path(settings.table_path(t)) for t in outputs}
    cmd = [sys.executable, "-m", "marketlab.cli", "pipeline", "--conf", CONF, "--only", stage_name, "--force",
           *[a for o in moved for a in ("--set", o)]]
    killed = _kill_during_write(cmd, watch, target)
    assert killed["new_files"] > 0 and not killed["committed"]

    # Every output is at a committed version: the target at its old one, and each table
    # reads back exactly the uninterrupted run's rows. Read past the gate: a silver table
    # the killed clean rewrote before its gate ran has no quality result yet, and is
    # refused to every job (asserted below) until the rerun gates it.
    fresh = Lake(spark, settings)
    assert fresh.version(target) == versions[target]
    for t in outputs:
        assert fresh.version(t) >= versions[t]
        assert _fingerprint(_current(t, fresh.read_ungated(t))) == reference[t], t
    ungated = [t for t in gated_tables(settings) if t in outputs and fresh.gate_problem(t, fresh.version(t))]
    for t in ungated:
        with pytest.raises(GateFailedError, match="no data-quality result"):
            fresh.read(t)

    # Rerun the stage (forced: with every output still at its old version the runner
    # would rightly call it up to date).
    res = run_pipeline(CONF, moved, only=(stage_name,), force=True)
    assert res.exit_code == 0 and res.by_stage()[stage_name].status == "ok"
    after = Lake(spark, settings)
    for t in outputs:
        assert after.version(t) > versions[t], t
        assert _fingerprint(_current(t, after.read(t))) == reference[t], t

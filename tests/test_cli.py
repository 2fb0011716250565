"""The console script: help, job listing, spark-submit command, a job run end to end."""

from __future__ import annotations

import subprocess
import sys

import mlflow
from mlflow.tracking import MlflowClient

from conftest import ROOT, make_settings

MARKETLAB = [sys.executable, "-m", "marketlab.cli"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*MARKETLAB, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_help_and_list():
    out = _cli("--help")
    assert out.returncode == 0
    for command in ("run", "pipeline", "submit", "list", "mlflow-ui"):
        assert command in out.stdout
    listed = _cli("list")
    assert listed.returncode == 0 and "ingest" in listed.stdout and "pipeline: ingest -> clean" in listed.stdout


def test_submit_prints_spark_submit_command(tmp_path):
    wheel = tmp_path / "marketlab-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    out = _cli("submit", "ingest", "--conf", "conf/cluster.yaml", "--wheel", str(wheel),
               "--master", "spark://127.0.0.1:7077", "--set", "jobs.ingest.sources=[hillstrom]")
    assert out.returncode == 0, out.stderr
    cmd = out.stdout.strip()
    assert "bin/spark-submit --master spark://127.0.0.1:7077" in cmd
    assert f"--py-files {wheel}" in cmd and "delta-spark_4.2_2.13-4.4.0.jar" in cmd
    assert cmd.endswith(f"jobs/ingest.py --conf {ROOT / 'conf' / 'cluster.yaml'} --set 'jobs.ingest.sources=[hillstrom]'")


def test_submit_unknown_job_and_bad_conf_are_clear_errors():
    out = _cli("submit", "nope", "--conf", "conf/cluster.yaml", "--wheel", "x.whl")
    assert out.returncode != 0 and "no job file" in out.stderr and "Traceback" not in out.stderr
    out = _cli("submit", "ingest", "--conf", "conf/cluster.yaml", "--set", "spark.mode=yarn")
    assert out.returncode != 0 and "spark.mode" in out.stderr and "Traceback" not in out.stderr


def test_job_run_logs_versions_and_counts_to_mlflow(spark, tmp_path):
    """`marketlab run ingest` in-process on the real Hillstrom file; the MLflow run holds lineage."""
    from marketlab.runtime import run_job_file

    overrides = (f"lake_root={tmp_path / 'lake'}", f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
                 f"mlflow.artifact_root={tmp_path / 'artifacts'}", "jobs.ingest.sources=[hillstrom]")
    assert run_job_file(str(ROOT / "conf" / "test.yaml"), "ingest", overrides) == 0
    settings = make_settings(tmp_path)
    mlflow.set_tracking_uri(settings.tracking_uri())
    runs = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("marketlab-test").experiment_id],
        "tags.`marketlab.job` = 'ingest'")
    assert len(runs) == 1
    run = runs[0]
    assert run.data.params["wrote.bronze.campaign_log"] == "0"
    assert run.data.metrics["hillstrom.records"] == 64_000
    assert run.data.metrics["hillstrom.bronze_rows"] == 64_000
    assert run.data.metrics["files_failed"] == 0
    # a failing job is a clear message and exit code 2, not a traceback
    bad = (*overrides[:3], "jobs.ingest.sources=[nope]")
    assert run_job_file(str(ROOT / "conf" / "test.yaml"), "ingest", bad) == 2

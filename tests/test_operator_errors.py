"""Operator mistakes: one clear line on stderr, exit code 2, no traceback, in seconds (issue 24).

Each case runs the ``marketlab`` console script as an operator would; every check happens
before a Spark session starts, so none of these starts a JVM.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from conftest import ROOT

MARKETLAB = [sys.executable, "-m", "marketlab.cli"]


def _run(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.monotonic()
    out = subprocess.run([*MARKETLAB, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)
    return out, time.monotonic() - t0


def _one_line(out: subprocess.CompletedProcess, prefix: str) -> str:
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(prefix), lines[0]
    return lines[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ingest(tmp_path, *sets: str) -> tuple[subprocess.CompletedProcess, float]:
    base = [f"lake_root={tmp_path / 'lake'}", f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
            f"mlflow.artifact_root={tmp_path / 'artifacts'}"]
    args = [a for s in (*base, *sets) for a in ("--set", s)]
    return _run("run", "ingest", "--conf", "conf/test.yaml", *args)


def test_bad_yaml_in_a_conf_file(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf" / "base", conf / "base")
    (conf / "mine.yaml").write_text("lake_root: lake\nspark:\n  master: [local\n")
    out, _ = _run("run", "ingest", "--conf", str(conf / "mine.yaml"))
    line = _one_line(out, f"marketlab ingest: {conf / 'mine.yaml'}: not valid YAML: ")
    assert "at line" in line
    # a broken base file is named too
    (conf / "mine.yaml").write_text("lake_root: lake\n")
    (conf / "base" / "params" / "quality.yaml").write_text("jobs: {quality: [\n")
    out, _ = _run("run", "ingest", "--conf", str(conf / "mine.yaml"))
    _one_line(out, f"marketlab ingest: {conf / 'base' / 'params' / 'quality.yaml'}: not valid YAML: ")


def test_an_override_that_is_not_yaml(tmp_path):
    out, _ = _ingest(tmp_path, "jobs.ingest.sources=[hillstrom")
    _one_line(out, "marketlab ingest: override 'jobs.ingest.sources=[hillstrom': the value is not valid YAML: ")


def test_conf_pointing_at_a_missing_file(tmp_path):
    missing = tmp_path / "elsewhere" / "conf" / "nope.yaml"
    out, _ = _run("run", "ingest", "--conf", str(missing))
    assert _one_line(out, "marketlab ingest: ") == f"marketlab ingest: conf file not found: {missing}"
    out, _ = _run("history", "silver.sessions", "--conf", str(missing))
    assert _one_line(out, "marketlab history: ") == f"marketlab history: conf file not found: {missing}"


def test_a_conf_outside_the_project_runs_the_projects_jobs(tmp_path):
    conf = tmp_path / "mine.yaml"  # no conf/ and jobs/ around it: the job is found, the conf is what is judged
    conf.write_text(f"base: {ROOT / 'conf' / 'base'}\nspark: {{master: nope}}\n")
    out, _ = _run("run", "ingest", "--conf", str(conf))
    line = _one_line(out, f"marketlab ingest: invalid configuration ({conf}): spark.master: ")
    assert "no job" not in line


def test_a_bogus_spark_master(tmp_path):
    out, secs = _ingest(tmp_path, "spark.master=spark//nowhere")
    line = _one_line(out, "marketlab ingest: invalid configuration ")
    assert "spark.master" in line and "'spark//nowhere' is not a Spark master URL" in line
    assert secs < 30


@pytest.mark.parametrize("value", ["lots", "4 gigs", "-1g"])
def test_an_invalid_driver_memory(tmp_path, value):
    out, secs = _ingest(tmp_path, f"spark.conf.spark.driver.memory={value}")
    line = _one_line(out, "marketlab ingest: invalid configuration ")
    assert f"spark.driver.memory='{value}' is not a memory size" in line
    assert secs < 30


def test_a_missing_jars_folder(tmp_path):
    out, _ = _ingest(tmp_path, f"spark.jars_dir={tmp_path / 'no-jars'}")
    _one_line(out, f"marketlab ingest: no Delta Lake jars in {tmp_path / 'no-jars'} (spark.jars_dir)")


def test_a_read_only_lake_root(tmp_path):
    if os.geteuid() == 0:  # root writes through permission bits: a folder no one can create instead
        root = "/proc/marketlab-lake"
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        root = str(ro / "lake")
    out, secs = _ingest(tmp_path, f"lake_root={root}")
    _one_line(out, f"marketlab ingest: lake_root {root} is not writable: ")
    assert secs < 30  # before any file is parsed or a session starts


def test_a_lake_root_under_a_regular_file(tmp_path):
    (tmp_path / "file").write_text("x")
    out, _ = _ingest(tmp_path, f"lake_root={tmp_path / 'file' / 'lake'}")
    assert _one_line(out, "marketlab ingest: ") == (
        f"marketlab ingest: lake_root {tmp_path / 'file' / 'lake'} cannot be a folder: {tmp_path / 'file'} is a regular file")


def test_an_unreachable_mlflow_server_fails_fast(tmp_path):
    uri = f"http://127.0.0.1:{_free_port()}"
    out, secs = _ingest(tmp_path, f"mlflow.tracking_uri={uri}", "mlflow.connect_timeout_s=2")
    line = _one_line(out, f"marketlab ingest: MLflow tracking server {uri} unreachable within 2 s")
    assert "start it or set mlflow.tracking_uri" in line
    assert secs < 30  # MLflow's own retries took 254 s


def test_a_server_that_does_not_answer_in_time(tmp_path):
    """A port that accepts connections but never answers: the bounded timeout, not MLflow's retries."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        uri = f"http://127.0.0.1:{srv.getsockname()[1]}"
        out, secs = _ingest(tmp_path, f"mlflow.tracking_uri={uri}", "mlflow.connect_timeout_s=2")
    line = _one_line(out, f"marketlab ingest: MLflow tracking server {uri} unreachable within 2 s")
    assert "no answer" in line or "timed out" in line
    assert secs < 30

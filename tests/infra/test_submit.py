"""spark-submit command building and pipeline submission order (no cluster needed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT
from marketlab.cluster import build_wheel, wheel_is_fresh
from marketlab.pipeline import STAGES
from marketlab.submit import build_submit_command, select_stages, submit_pipeline

CONF = str(ROOT / "conf" / "cluster.yaml")


@pytest.fixture()
def wheel(tmp_path):
    w = tmp_path / "marketlab-0.1.0-py3-none-any.whl"
    w.write_bytes(b"")
    return str(w)


def _conf_of(cmd: list[str]) -> dict[str, str]:
    out = {}
    for i, arg in enumerate(cmd):
        if arg == "--conf" and "=" in cmd[i + 1] and not cmd[i + 1].endswith(".yaml"):
            key, value = cmd[i + 1].split("=", 1)
            out[key] = value
    return out


def test_command_ships_the_wheel_to_executors_and_names_the_interpreters(wheel):
    cmd = build_submit_command("clean", CONF, master="spark://127.0.0.1:7077", wheel=wheel,
                               overrides=("spark.conf.spark.sql.shuffle.partitions=3",), python="/opt/py/bin/python")
    conf = _conf_of(cmd)
    assert cmd[cmd.index("--py-files") + 1] == wheel
    assert conf["spark.executorEnv.PYTHONPATH"] == "marketlab-0.1.0-py3-none-any.whl"
    assert conf["spark.pyspark.python"] == "/opt/py/bin/python"
    assert conf["spark.pyspark.driver.python"]
    assert conf["spark.sql.shuffle.partitions"] == "3"          # the --set reached spark-submit
    assert conf["spark.driver.memory"] == "2g"                   # conf/cluster.yaml spark.conf
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert cmd[cmd.index("--name") + 1] == "marketlab-clean"
    assert cmd[-5:] == [str(ROOT / "jobs" / "clean.py"), "--conf", CONF, "--set",
                        "spark.conf.spark.sql.shuffle.partitions=3"]


def test_driver_jvm_options_of_the_conf_keep_the_log4j_setting(wheel):
    log4j = f"-Dlog4j2.configurationFile=file:{ROOT / 'conf' / 'log4j2.properties'}"
    assert _conf_of(build_submit_command("clean", CONF, wheel=wheel))["spark.driver.extraJavaOptions"] == log4j
    cmd = build_submit_command("clean", CONF, wheel=wheel,
                               overrides=("spark.conf.spark.driver.extraJavaOptions=-XX:TieredStopAtLevel=1 -Dx=1",))
    assert _conf_of(cmd)["spark.driver.extraJavaOptions"] == f"{log4j} -XX:TieredStopAtLevel=1 -Dx=1"


def test_env_archive_becomes_the_executors_python(wheel):
    cmd = build_submit_command("ingest", CONF, wheel=wheel, env_archive="dist/marketlab-env.tar.gz")
    assert cmd[cmd.index("--archives") + 1] == "dist/marketlab-env.tar.gz#environment"
    conf = _conf_of(cmd)
    assert conf["spark.pyspark.python"] == "./environment/bin/python"
    assert conf["spark.pyspark.driver.python"] != "./environment/bin/python"


def test_a_standalone_master_of_the_cluster_root_gets_the_secret_as_a_properties_file(wheel, tmp_path, monkeypatch):
    from marketlab.cluster import ensure_secrets

    monkeypatch.setenv("MARKETLAB_CLUSTER_ROOT", str(tmp_path))
    assert "--properties-file" not in build_submit_command("clean", CONF, wheel=wheel)  # no secrets yet
    auth = ensure_secrets(tmp_path, env={})["spark"]
    secret = next(ln.split()[1] for ln in auth.read_text().splitlines() if ln.startswith("spark.authenticate.secret"))
    cmd = build_submit_command("clean", CONF, master="spark://127.0.0.1:7077", wheel=wheel)
    assert cmd[cmd.index("--properties-file") + 1] == str(auth)
    assert not any(secret in arg for arg in cmd)  # what `ps` would show
    # another cluster manager is not the loopback cluster: its file is not passed there
    assert "--properties-file" not in build_submit_command("clean", CONF, master="k8s://https://k:443", wheel=wheel)


def test_submitted_drivers_get_the_cluster_mlflow_credentials(tmp_path, monkeypatch):
    from marketlab.cluster import ensure_secrets, mlflow_credentials
    from marketlab.config import load_settings
    from marketlab.submit import submit_environment

    monkeypatch.setenv("MARKETLAB_CLUSTER_ROOT", str(tmp_path))
    for var in ("MLFLOW_TRACKING_USERNAME", "MARKETLAB_MLFLOW_ADMIN_USER", "MARKETLAB_MLFLOW_ADMIN_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    settings = load_settings(CONF)
    assert "MLFLOW_TRACKING_PASSWORD" not in submit_environment(settings)  # no server secrets: nothing to pass
    ensure_secrets(tmp_path, env={})
    env = submit_environment(settings)
    assert env["MLFLOW_TRACKING_USERNAME"] == "admin" and len(env["MLFLOW_TRACKING_PASSWORD"]) >= 24
    assert env == {**env, **mlflow_credentials(tmp_path)} and env["SPARK_LOCAL_IP"]
    # credentials the caller set already win over the file
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "someone")
    assert "MLFLOW_TRACKING_PASSWORD" not in submit_environment(settings)


def test_printed_submit_command_shows_neither_secret(wheel, tmp_path):
    import os

    from marketlab.cluster import ensure_secrets, mlflow_credentials

    paths = ensure_secrets(tmp_path, env={})
    secret = next(ln.split()[1] for ln in paths["spark"].read_text().splitlines()
                  if ln.startswith("spark.authenticate.secret"))
    env = {**os.environ, "MARKETLAB_CLUSTER_ROOT": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "marketlab.cli", "submit", "clean", "--wheel", wheel], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"--properties-file {paths['spark']}" in out.stdout
    assert secret not in out.stdout and mlflow_credentials(tmp_path)["MLFLOW_TRACKING_PASSWORD"] not in out.stdout


def test_pipeline_submission_goes_in_stage_order_and_stops_at_the_first_failure(wheel):
    seen = []

    def runner(cmd):
        job = [a for a in cmd if a.endswith(".py")][-1].rsplit("/", 1)[-1][:-3]
        seen.append(job)
        return 3 if job == "features" else 0

    res = submit_pipeline(CONF, wheel=wheel, runner=runner, echo=lambda _: None)
    assert seen == ["ingest", "clean", "features"]
    assert [(r.stage, r.status) for r in res] == [("ingest", "ok"), ("clean", "ok"), ("features", "failed (3)")]

    seen.clear()
    res = submit_pipeline(CONF, wheel=wheel, runner=lambda c: seen.append(c) or 0, echo=lambda _: None,
                          from_stage="segments", only=("segments", "effect"))
    assert [r.stage for r in res] == ["segments", "effect"] and len(seen) == 2
    assert [s.name for s in select_stages()] == [s.name for s in STAGES]
    with pytest.raises(KeyError, match="nope"):
        select_stages(only=("nope",))


def test_cli_pipeline_submit_reports_unknown_stage_cleanly(wheel):
    out = subprocess.run([sys.executable, "-m", "marketlab.cli", "pipeline-submit", "--wheel", wheel, "--only", "nope"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "unknown stage" in out.stderr and "Traceback" not in out.stderr


def test_wheel_is_built_from_a_clean_copy_and_holds_the_package(tmp_path):
    import zipfile

    wheel = build_wheel(ROOT, tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "marketlab/__init__.py" in names and "marketlab/submit.py" in names
    assert not any(n.startswith(("tests/", "jobs/")) for n in names)
    assert wheel_is_fresh(wheel, ROOT)
    assert not wheel_is_fresh(tmp_path / "missing.whl", ROOT)

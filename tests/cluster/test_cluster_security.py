"""The loopback cluster refuses what is not authenticated (the cluster of conftest.py, shared
with test_cluster_pipeline.py).

Spark: a driver without the shared secret, or with a wrong one, never registers with the
master, and a driver given the secret by ``marketlab submit`` (``--properties-file``) runs
without the secret ever being on a command line; the REST submission server is off. MLflow:
the basic-auth app answers 401 without credentials and a run logged with them lands. The
secret files are 0600.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT
from marketlab.cluster import applications, mlflow_auth_file, mlflow_flask_key_file, spark_auth_file

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(900)]

CONF = ROOT / "conf" / "cluster.yaml"
# Registration with the master is retried 3 x 20 s before the driver gives up (Spark's
# StandaloneAppClient); a JVM start on the loaded 2-core machine adds up to a minute.
REFUSAL_TIMEOUT_S = 240
TINY_APP = """\
from pyspark.sql import SparkSession

spark = SparkSession.builder.getOrCreate()
print("COUNT", spark.range(1000).count())
spark.stop()
"""


def _secret(cluster) -> str:
    lines = Path(cluster["auth_file"]).read_text().splitlines()
    return next(ln.split()[1] for ln in lines if ln.startswith("spark.authenticate.secret"))


def _cmdlines() -> list[str]:
    out = []
    for proc in Path("/proc").iterdir():
        try:
            out.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:  # not a process, or gone
            continue
    return out


def _start(cmd: list[str], env: dict, logs: Path) -> subprocess.Popen:
    """``cmd`` in its own process group, stdout/stderr to files (a full pipe would stall it)."""
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "out", "w") as out, open(logs / "err", "w") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, start_new_session=True)
    proc.logs = logs  # type: ignore[attr-defined]
    return proc


def _bare_submit(cluster, app: Path, name: str, logs: Path, *conf: str) -> subprocess.Popen:
    """A plain spark-submit of ``app`` (no properties file)."""
    from marketlab.submit import spark_submit_bin

    cmd = [spark_submit_bin(), "--master", cluster["master"], "--name", name, "--conf", "spark.ui.enabled=false",
           "--conf", f"spark.pyspark.python={sys.executable}", *[a for c in conf for a in ("--conf", c)], str(app)]
    return _start(cmd, cluster["env"], logs / name)


def _finish(proc: subprocess.Popen, timeout: float) -> tuple[int | None, str, str]:
    """Exit code (None: killed at ``timeout``), stdout, stderr."""
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        code = None
    return code, (proc.logs / "out").read_text(errors="replace"), (proc.logs / "err").read_text(errors="replace")


def test_a_driver_without_the_secret_is_refused_and_one_with_it_runs(cluster, wheel, tmp_path):
    from marketlab.config import load_settings
    from marketlab.submit import submit_command

    app = tmp_path / "tiny.py"
    app.write_text(TINY_APP)
    # The refused ones wait out their registration retries meanwhile.
    none = _bare_submit(cluster, app, "security-no-secret", tmp_path, "spark.authenticate=false")
    wrong = _bare_submit(cluster, app, "security-wrong-secret", tmp_path, "spark.authenticate=true",
                         "spark.authenticate.secret=" + "0" * 64)
    settings = load_settings(CONF, [f"lake_root=file://{cluster['root']}/lake"])
    cmd = submit_command(app, settings, name="security-with-secret", master=cluster["master"], wheel=str(wheel),
                         python=sys.executable, auth_file=cluster["auth_file"])
    secret = _secret(cluster)
    assert not any(secret in arg for arg in cmd)
    ok = _start(cmd, cluster["env"], tmp_path / "security-with-secret")
    seen_in_ps = []
    while ok.poll() is None:  # the driver JVM, its Python and the executors as they come
        seen_in_ps += [c[:200] for c in _cmdlines() if secret in c]
        time.sleep(0.5)
    code, out, err = _finish(ok, 600)
    assert code == 0 and "COUNT 1000" in out, err[-4000:]
    assert not seen_in_ps, seen_in_ps

    for proc in (none, wrong):
        code, out, err = _finish(proc, REFUSAL_TIMEOUT_S)
        causes = sorted({ln.strip()[:160] for ln in err.splitlines() if ln.startswith("Caused by")})
        print(proc.logs.name, "exit", code, causes)
        assert code != 0 and "COUNT" not in out, f"exit {code}: {err[-3000:]}"
        if code is not None:  # None: still retrying at the timeout, which is a refusal too
            assert "All masters are unresponsive" in err, err[-3000:]
    # what the master answered: a handshake the driver did not do, a secret that did not match
    assert "Expected SaslMessage" in (none.logs / "err").read_text()
    assert "Mismatched response" in (wrong.logs / "err").read_text()
    names = {a["name"] for a in applications(cluster["ui"])}
    assert "security-with-secret" in names
    assert not names & {"security-no-secret", "security-wrong-secret"}, names  # never registered


def test_the_rest_submission_server_is_off(cluster):
    port = cluster["ports"]["MARKETLAB_MASTER_REST_PORT"]
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.settimeout(5)
        sock.connect(("127.0.0.1", port))


def test_secret_files_are_private_and_in_no_command_line(cluster):
    root = cluster["root"]
    assert stat.S_IMODE((root / "secrets").stat().st_mode) == 0o700
    files = [spark_auth_file(root), mlflow_auth_file(root), mlflow_flask_key_file(root),
             root / "conf" / "spark-defaults.conf"]  # the daemons' copy of the secret
    assert {str(f): stat.S_IMODE(f.stat().st_mode) for f in files} == {str(f): 0o600 for f in files}
    password = cluster["mlflow_auth"]["MLFLOW_TRACKING_PASSWORD"]
    running = _cmdlines()
    assert any(str(root) in c for c in running)  # the daemons are there to look at
    assert not [c[:200] for c in running if _secret(cluster) in c or password in c]


def _get(url: str, auth: tuple[str, str] | None = None) -> int:
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 (loopback)
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_mlflow_needs_credentials_and_a_run_logged_with_them_lands(cluster, monkeypatch):
    from mlflow.tracking import MlflowClient

    creds = cluster["mlflow_auth"]
    user, password = creds["MLFLOW_TRACKING_USERNAME"], creds["MLFLOW_TRACKING_PASSWORD"]
    url = cluster["mlflow"] + "/api/2.0/mlflow/experiments/search?max_results=1"
    assert _get(url) == 401
    assert _get(url, (user, password + "x")) == 401
    assert _get(url, (user, password)) == 200
    for var, value in creds.items():
        monkeypatch.setenv(var, value)
    client = MlflowClient(tracking_uri=cluster["mlflow"])
    exp = client.create_experiment("security-check")
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "answer", 42.0)
    client.set_terminated(run.info.run_id)
    [found] = client.search_runs([exp], filter_string="metrics.answer = 42")
    assert found.info.run_id == run.info.run_id and found.info.status == "FINISHED"

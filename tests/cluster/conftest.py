"""One loopback cluster for every module of tests/cluster (starting one costs about a minute).

``cluster`` builds nothing: it starts infra/cluster/up.sh under a temporary
MARKETLAB_CLUSTER_ROOT on free ports (Spark with its shared secret, MLflow with basic auth)
and always stops it with infra/cluster/down.sh; ``wheel`` is the marketlab wheel the
drivers and executors import. Both are package-scoped, so test_cluster_pipeline.py and
test_cluster_security.py share them (conftest.py of tests/ puts tests/cluster in one
xdist group).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT
from marketlab.cluster import build_wheel, free_port, mlflow_credentials, spark_auth_file, wheel_is_fresh
from marketlab.privacy import SECRET_ENV

UP = ROOT / "infra" / "cluster" / "up.sh"
DOWN = ROOT / "infra" / "cluster" / "down.sh"


def tail(path: Path, n: int = 40) -> str:
    """Last ``n`` lines of a log, for failure messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return f"({path} unreadable)"


@pytest.fixture(scope="package")
def wheel(tmp_path_factory) -> Path:
    """dist/ wheel when it is newer than lib/, else a fresh build in a temp folder."""
    dist = sorted((ROOT / "dist").glob("marketlab-*.whl"), key=os.path.getmtime)
    if dist and wheel_is_fresh(dist[-1], ROOT):
        return dist[-1]
    return build_wheel(ROOT, tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="package")
def cluster(tmp_path_factory):
    """The running cluster: ``root``, ``env`` (for subprocesses: the root, the ports, a
    pseudonym secret; no credentials, the submit path finds those itself), ``master``,
    ``ui``, ``mlflow``, ``ports``, ``auth_file`` (the Spark secret's properties file),
    ``mlflow_auth`` (MLFLOW_TRACKING_USERNAME/_PASSWORD) and ``up_seconds``."""
    root = tmp_path_factory.mktemp("cluster")
    ports = {"MARKETLAB_MASTER_PORT": free_port(), "MARKETLAB_MASTER_UI_PORT": free_port(),
             "MARKETLAB_MASTER_REST_PORT": free_port(), "MARKETLAB_MLFLOW_PORT": free_port(),
             "MARKETLAB_WORKER_UI_PORT": 0}
    env = {**os.environ, "MARKETLAB_CLUSTER_ROOT": str(root), "MARKETLAB_PYTHON": sys.executable,
           "SPARK_LOCAL_IP": "127.0.0.1", **{k: str(v) for k, v in ports.items()},
           # cluster mode keys customers only with a given secret (the drivers run in client mode)
           SECRET_ENV: secrets.token_hex(32)}
    for var in ("SPARK_MASTER", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                "MARKETLAB_MLFLOW_ADMIN_USER", "MARKETLAB_MLFLOW_ADMIN_PASSWORD"):
        env.pop(var, None)
    info = {"root": root, "env": env, "ports": ports, "master": f"spark://127.0.0.1:{ports['MARKETLAB_MASTER_PORT']}",
            "ui": f"http://127.0.0.1:{ports['MARKETLAB_MASTER_UI_PORT']}",
            "mlflow": f"http://127.0.0.1:{ports['MARKETLAB_MLFLOW_PORT']}", "auth_file": str(spark_auth_file(root))}
    t0 = time.perf_counter()
    try:
        up = subprocess.run(["bash", str(UP)], env=env, capture_output=True, text=True, timeout=420)
        info["up_seconds"] = time.perf_counter() - t0
        if up.returncode:
            logs = "\n".join(f"--- {p.name}\n{tail(p)}" for p in sorted((root / "logs").glob("*.log")))
            pytest.fail(f"up.sh failed ({up.returncode}):\n{up.stdout}\n{up.stderr}\n{logs}")
        info["mlflow_auth"] = mlflow_credentials(root, env={})
        yield info
    finally:
        down = subprocess.run(["bash", str(DOWN)], env=env, capture_output=True, text=True, timeout=120)
        print(down.stdout, down.stderr)
        # nothing of ours may outlive the fixture
        leftover = subprocess.run(["pgrep", "-f", str(root)], capture_output=True, text=True).stdout.split()
        assert not leftover, f"processes still running under {root}: {leftover}"

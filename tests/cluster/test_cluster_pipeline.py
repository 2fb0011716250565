"""The pipeline on a real loopback Spark standalone cluster (master + 2 workers + MLflow server).

The package fixtures of conftest.py build the marketlab wheel and start the cluster (one for
this module and test_cluster_security.py). Stages are spark-submitted in STAGES order (`marketlab
pipeline-submit`) on the vendored data with conf/cluster.yaml, the `fast` profile and the
overrides below; executors get marketlab from the wheel only.

Which stages: every stage of the pipeline costs a Spark application of its own (a driver
JVM, two executor JVMs, their warm-up) on 2 shared cores, and the whole pipeline takes
far longer than the few minutes this test may take in `make test` (see docs/CLUSTER.md).
By default it runs ingest -> clean -> features: the real data end to end into
bronze/silver/gold, with marketlab code (ingest's record validation, cleaning rules) in
the executors. MARKETLAB_CLUSTER_STAGES=all (or a comma list, e.g.
ingest,clean,features,inventory for one SciPy LP per warehouse in executor map tasks)
runs more; each extra stage costs 1.5-3 min here (docs/CLUSTER.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from marketlab.cluster import applications, master_state
from marketlab.config import load_settings
from marketlab.pipeline import STAGES, select_stages

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(2400)]

CONF = ROOT / "conf" / "cluster.yaml"
UP = ROOT / "infra" / "cluster" / "up.sh"
PROBE = ROOT / "infra" / "cluster" / "probe.py"

# On top of the `fast` profile: 2 executor cores in all, so few shuffle partitions, and the
# LSTM on a handful of series for a few steps (it trains on both executors with Horovod).
# Every stage starts fresh driver and executor JVMs that live a minute or two: C1-only JIT
# and the serial collector spend less of the 2 cores on compiling and collecting
# (ingest -> features 387 s instead of 432 s, one standalone run each, 2026-12-01; inside a
# whole suite run the stage times vary by more than that).
CLUSTER_EXTRA = [
    "spark.conf.spark.sql.shuffle.partitions=4",
    "jobs.forecast.max_series=12", "jobs.forecast.train.steps_per_epoch=4", "jobs.forecast.train.batch_size=64",
    "jobs.forecast.train.lstm_units=8", "jobs.forecast.train.dense_units=8",
    "jobs.recommend.als.max_iter=4", "jobs.recommend.als.rank=8",
    "jobs.effect.bootstrap=0", "jobs.strategy.bootstrap=5", "jobs.evaluation.bootstrap_resamples=100",
    *(f"spark.conf.spark.{side}.extraJavaOptions=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC" for side in ("driver", "executor")),
]
STAGE_TIMEOUT_S = 900
DEFAULT_STAGES = ("ingest", "clean", "features")


def selected_stages() -> list:
    """STAGES limited by MARKETLAB_CLUSTER_STAGES (``all`` or a comma list; default DEFAULT_STAGES)."""
    want = os.environ.get("MARKETLAB_CLUSTER_STAGES", ",".join(DEFAULT_STAGES)).strip()
    if want == "all":
        return list(STAGES)
    return select_stages(only=[n.strip() for n in want.split(",") if n.strip()])


SELECTED = selected_stages()


def fast_overrides() -> list[str]:
    try:
        from marketlab.profiles import profile_overrides

        profile = profile_overrides("fast", CONF)
    except Exception:  # noqa: BLE001  (no profile support: the extras alone)
        profile = []
    extra = list(CLUSTER_EXTRA)
    if "forecast" not in {st.name for st in SELECTED}:
        extra.append("jobs.inventory.forecast_source=seasonal_naive")
    return [*profile, *extra]


def _overrides(cluster) -> list[str]:
    root = cluster["root"]
    return [f"lake_root=file://{root}/lake", f"mlflow.tracking_uri={cluster['mlflow']}",
            f"mlflow.artifact_root=file://{root}/mlartifacts", *fast_overrides()]


def test_cluster_is_up_with_two_workers_and_mlflow(cluster):
    state = master_state(cluster["ui"])
    assert state["status"] == "ALIVE" and state["url"] == cluster["master"]
    assert [w["state"] for w in state["workers"]] == ["ALIVE", "ALIVE"]
    assert all(w["cores"] == 1 for w in state["workers"])
    for name in ("master", "worker-1", "worker-2", "mlflow"):
        assert (cluster["root"] / "pids" / f"{name}.pid").is_file()
    # a second up.sh is a no-op
    again = subprocess.run(["bash", str(UP)], env=cluster["env"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "already running" in again.stdout, again.stderr
    print(f"cluster up in {cluster['up_seconds']:.1f}s")


def test_executors_import_marketlab_from_the_wheel_and_spark_submit_settings_win(cluster, wheel):
    """The probe app: executors load marketlab from the fetched wheel, never from lib/;
    get_spark (cluster mode) keeps the app name and settings spark-submit set."""
    from marketlab.submit import submit_command

    settings = load_settings(CONF, _overrides(cluster) + ["spark.conf.spark.sql.shuffle.partitions=7"])
    cmd = submit_command(PROBE, settings, name="marketlab-probe", master=cluster["master"], wheel=str(wheel),
                         python=sys.executable, app_args=["--conf", str(CONF)], auth_file=cluster["auth_file"])
    out = subprocess.run(cmd, env=cluster["env"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    probe = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("PROBE "))[6:])
    assert probe["master"] == cluster["master"]
    assert len(probe["executors"]) == 2  # one per worker
    lib = str(ROOT / "lib")
    for ex in probe["executors"]:
        assert not ex["marketlab"].startswith(lib), ex
        assert f"{wheel.name}/marketlab/__init__.py" in ex["marketlab"], ex
        assert ex["cwd"].startswith(str(cluster["root"] / "work")), ex
    assert f"{wheel.name}/marketlab/__init__.py" in probe["driver"]["marketlab"]
    # spark-submit said 7 partitions and the name; the conf file says 16 and "marketlab"
    assert probe["app_name"] == "marketlab-probe"
    assert probe["conf"]["spark.sql.shuffle.partitions"] == "7"
    assert probe["conf"]["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"


@pytest.fixture(scope="module")
def pipeline_run(cluster, wheel):
    cmd = [sys.executable, "-m", "marketlab.cli", "pipeline-submit", "--conf", str(CONF), "--master", cluster["master"],
           "--wheel", str(wheel), "--python", sys.executable, "--timeout", str(STAGE_TIMEOUT_S)]
    for st in SELECTED:
        cmd += ["--only", st.name]
    for item in _overrides(cluster):
        cmd += ["--set", item]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=cluster["env"], capture_output=True, text=True, cwd=ROOT,
                         timeout=STAGE_TIMEOUT_S * len(SELECTED))
    secs = time.perf_counter() - t0
    print(out.stdout)
    print(f"pipeline-submit: {secs:.0f}s")
    return out, secs


def test_every_selected_stage_runs_on_the_cluster(pipeline_run):
    out, _ = pipeline_run
    assert out.returncode == 0, f"{out.stdout}\n{out.stderr[-6000:]}"
    # stdout is only the result table (stage, status, seconds): the jobs' output goes to stderr.
    rows = [line.split() for line in out.stdout.splitlines() if line.strip()]
    assert all(len(r) >= 3 and r[-1].endswith("s") for r in rows), out.stdout
    done = {r[0]: r[1] for r in rows}
    assert done == {st.name: "ok" for st in SELECTED}


def test_master_lists_one_finished_application_per_job(cluster, pipeline_run):
    # the probe and test_cluster_security.py's `security-*` applications are not stages
    apps = [a for a in applications(cluster["ui"]) if a["name"].startswith("marketlab-") and a["name"] != "marketlab-probe"]
    assert sorted(a["name"] for a in apps) == sorted(f"marketlab-{st.job_name}" for st in SELECTED)
    assert all(a["completed"] and a["state"] == "FINISHED" for a in apps), apps


def test_mlflow_server_has_one_finished_run_per_job(cluster, pipeline_run, monkeypatch):
    from mlflow.tracking import MlflowClient

    for var, value in cluster["mlflow_auth"].items():
        monkeypatch.setenv(var, value)
    client = MlflowClient(tracking_uri=cluster["mlflow"])
    exp = client.get_experiment_by_name(load_settings(CONF).mlflow.experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    top = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    by_job: dict[str, list] = {}
    for r in top:
        by_job.setdefault(r.data.tags.get("marketlab.job"), []).append(r.info.status)
    assert by_job == {st.job_name: ["FINISHED"] for st in SELECTED}
    assert all(r.info.status == "FINISHED" for r in runs)
    assert all(r.info.artifact_uri.startswith(f"file://{cluster['root']}") for r in top)


def test_tables_written_by_the_cluster(cluster, pipeline_run, request):
    """Read back with the suite's local session (after the cluster run: no JVM overlap)."""
    from marketlab.tables import Lake

    spark = request.getfixturevalue("spark")
    settings = load_settings(CONF, _overrides(cluster))
    lake = Lake(spark, settings)
    names = {st.name for st in SELECTED}
    if "ingest" in names:
        assert lake.read("bronze.orders").count() == 541909
        assert lake.read("bronze.campaign_log").count() == 64000
        assert lake.read("bronze.sessions").count() == 12330
    for st in SELECTED:
        for table in st.outputs:
            assert lake.exists(table), f"{st.name} did not write {table}"
    if "clean" in names:
        assert lake.read("silver.order_lines").count() > 500_000
    if "inventory" in names:
        plan = lake.read("gold.inventory_plan")
        assert plan.count() > 0 and plan.select("warehouse").distinct().count() >= 2
    if "segments" in names:
        assert lake.read("gold.segments").select("customer_key").distinct().count() > 4000

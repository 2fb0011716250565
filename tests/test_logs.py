"""Logging set-up: py4j's resend notice is dropped, real failures are kept."""

import logging

from marketlab.logs import Py4JRetryFilter

# What py4j's GatewayClient.send_command does (java_gateway.py), compiled under its path so
# the records carry py4j's file name as they do in a job.
PY4J_CODE = compile(
    "import logging\n"
    "def resend():\n"
    "    try:\n"
    "        raise ConnectionResetError(104, 'Connection reset by peer')\n"
    "    except ConnectionResetError:\n"
    "        logging.info('Exception while sending command.', exc_info=True)\n"
    "def fail():\n"
    "    try:\n"
    "        raise ConnectionResetError(104, 'Connection reset by peer')\n"
    "    except ConnectionResetError:\n"
    "        logging.exception('Exception while sending command.')\n",
    "/venv/lib/python3.11/site-packages/py4j/java_gateway.py", "exec")


class _Keep(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_py4j_resend_notice_is_dropped_and_its_failure_kept():
    ns: dict = {}
    exec(PY4J_CODE, ns)
    root = logging.getLogger()
    handler, level = _Keep(), root.level
    handler.addFilter(Py4JRetryFilter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        ns["resend"]()
        ns["fail"]()
        logging.info("Exception while sending command.")  # the same words from elsewhere
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert [(r.levelname, r.pathname.endswith("py4j/java_gateway.py")) for r in handler.records] == [
        ("ERROR", True), ("INFO", False)]


def test_a_job_logs_only_json_lines_when_conf_asks(tmp_path):
    """A real ingest job (one small file) in its own process with ``logging.format: json``:
    every line it writes, on stdout and stderr, is one JSON object with the keys of the
    contract; its summary line carries the MLflow run's figures. The lake and the MLflow
    store it created are owner-only."""
    import json
    import os
    import stat
    import subprocess
    import sys

    from conftest import DATA, ROOT
    from marketlab.logs import JSON_KEYS

    with open(DATA / "hillstrom/hillstrom.csv", newline="") as fh:
        rows = [next(fh) for _ in range(51)]  # header + 50 records
    src = tmp_path / "hillstrom_small.csv"
    src.write_text("".join(rows))
    overrides = [f"lake_root={tmp_path / 'lake'}", f"mlflow.tracking_uri=sqlite:///{tmp_path / 'ml' / 'mlflow.db'}",
                 f"mlflow.artifact_root={tmp_path / 'ml' / 'artifacts'}", "logging.format=json",
                 "jobs.ingest.sources=[hillstrom]", f"sources.hillstrom.path={src}"]
    argv = [sys.executable, str(ROOT / "jobs" / "ingest.py"), "--conf", str(ROOT / "conf" / "test.yaml")]
    argv += [a for o in overrides for a in ("--set", o)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib"), "MARKETLAB_LOG_LEVEL": "INFO"}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    records = []
    for line in lines:
        rec = json.loads(line)  # fails on any line that is not one JSON object
        assert isinstance(rec, dict) and set(JSON_KEYS) <= set(rec), line
        records.append(rec)
    (summary,) = [r for r in records if r.get("summary")]
    assert summary["message"].startswith("ingest: 1 files ok") and "50 records = 50 bronze" in summary["message"]
    assert (summary["job"], summary["stage"], summary["level"]) == ("ingest", "ingest", "INFO")
    assert summary["figures"]["hillstrom.records"] == 50 and summary["figures"]["files_ok"] == 1
    assert summary["mlflow_run_id"] and summary["run_id"]
    in_job = [r for r in records if r["job"] == "ingest"]
    assert {r["run_id"] for r in in_job} == {summary["run_id"]}
    assert any(r["logger"] == "marketlab.ingest.run" and "50 bronze" in r["message"] for r in in_job)
    assert not proc.stdout.strip() or all(json.loads(ln).get("summary") for ln in proc.stdout.splitlines() if ln.strip())
    # Owner-only: nothing the job created is open to the group or others.
    for top in (tmp_path / "lake", tmp_path / "ml"):
        paths = [top, *top.rglob("*")]
        assert len(paths) >= 3  # the folder, and what the job put in it
        loose = [str(p) for p in paths if p.lstat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)]
        assert loose == [], loose[:5]

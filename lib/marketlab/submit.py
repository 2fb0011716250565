"""Build (and run) spark-submit commands of jobs for a cluster; submit the whole pipeline.

The driver runs in client mode on this machine; executors get

* the marketlab code from the built wheel (``--py-files``; a wheel is a zip, and since
  PySpark only puts ``.zip``/``.egg``/``.jar`` py-files on the executors' path by itself,
  the wheel's file name is also put on ``spark.executorEnv.PYTHONPATH``, relative to the
  executor's working directory where Spark fetches it), so executors never depend on a
  checkout of the repository;
* the Delta Lake jars (``--jars``) and the Delta session extensions;
* a Python interpreter: either a packed environment (``--env-archive``, a venv-pack
  tar.gz unpacked as ``./environment`` on each executor) or an interpreter path that
  exists on every worker (``--python``, default ``$PYSPARK_PYTHON`` or this Python).

On a standalone master (``spark://``) with a ``secrets/spark-auth.conf`` under
``$MARKETLAB_CLUSTER_ROOT`` (the loopback cluster, :mod:`marketlab.cluster`), the command
reads that file with ``--properties-file``: in standalone client mode the driver only takes
the shared secret from its own ``spark.authenticate.secret`` (an ``_SPARK_AUTH_SECRET``
environment variable is not enough), and a ``--conf`` would show it in ``ps``. Submitted
drivers get ``MLFLOW_TRACKING_USERNAME`` / ``_PASSWORD`` in their environment
(:func:`submit_environment`).
"""

from __future__ import annotations

import glob
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import pyspark

from marketlab.cluster import cluster_root, mlflow_credentials, spark_auth_file
from marketlab.config import Settings, load_settings
from marketlab.pipeline import select_stages
from marketlab.spark import SESSION_CONF, bind_conf, bind_environment, delta_jars

DEFAULT_MASTER = "spark://127.0.0.1:7077"


def spark_submit_bin() -> str:
    """spark-submit of $SPARK_HOME, else the one shipped in the pyspark package."""
    home = os.environ.get("SPARK_HOME") or str(Path(pyspark.__file__).parent)
    return str(Path(home) / "bin" / "spark-submit")


def find_wheel(root: str | os.PathLike) -> str:
    """Newest ``dist/marketlab-*.whl`` under ``root``.

    Raises:
        FileNotFoundError: None built yet.
    """
    wheels = sorted(glob.glob(str(Path(root) / "dist" / "marketlab-*.whl")), key=os.path.getmtime)
    if not wheels:
        raise FileNotFoundError("no marketlab wheel in dist/: run `make wheel` first")
    return wheels[-1]


def cluster_auth_file(master: str) -> str | None:
    """The loopback cluster's ``spark-auth.conf`` for a standalone ``master``, if there is one."""
    path = spark_auth_file(cluster_root())
    return str(path) if master.startswith("spark://") and path.is_file() else None


def submit_environment(settings: Settings) -> dict[str, str]:
    """Environment entries a submitted driver needs on top of this process's.

    :func:`marketlab.spark.bind_environment`, and the cluster's MLflow credentials
    (:func:`marketlab.cluster.mlflow_credentials`) unless ``MLFLOW_TRACKING_USERNAME`` is
    set already.
    """
    env = bind_environment(settings)
    if not os.environ.get("MLFLOW_TRACKING_USERNAME"):
        env.update(mlflow_credentials())
    return env


def submit_command(app_file: str | os.PathLike, settings: Settings, *, name: str, master: str | None = None,
                   wheel: str | None = None, env_archive: str | None = None, python: str | None = None,
                   app_args: Sequence[str] = (), auth_file: str | None = None) -> list[str]:
    """spark-submit argv for any Python main file with the marketlab wheel, Delta and conf.

    Args:
        app_file: The main file (``jobs/<job>.py``, ``infra/cluster/probe.py``).
        settings: Loaded settings; ``spark.conf`` entries are passed as ``--conf`` so that
            settings read at JVM start (``spark.driver.memory``, executor sizes) apply.
        name: Application name (what the master lists).
        master: Master URL; default ``$SPARK_MASTER`` or ``spark://127.0.0.1:7077``.
        wheel: marketlab wheel (default: newest ``dist/marketlab-*.whl``).
        env_archive: Packed environment (``make pack-env``) for executors.
        python: Executors' interpreter when no archive is given (default ``$PYSPARK_PYTHON``
            or this interpreter); it must exist on every worker.
        app_args: Arguments after the main file.
        auth_file: Spark properties file with ``spark.authenticate.secret``, passed as
            ``--properties-file`` (default :func:`cluster_auth_file`; ``""`` for none).
    """
    root = Path(settings.project_root)
    wheel = wheel or find_wheel(root)
    master = master or os.environ.get("SPARK_MASTER", DEFAULT_MASTER)
    driver_python = os.environ.get("PYSPARK_DRIVER_PYTHON") or sys.executable
    # The client-mode driver listens where conf says (spark.bind_address); run the command
    # with :func:`marketlab.spark.bind_environment` too, which places the driver's UI.
    conf: dict[str, str] = {**SESSION_CONF, **bind_conf(settings), "spark.pyspark.driver.python": driver_python}
    # The wheel as a path entry of the executors' Python workers (see the module doc).
    executor_path = [os.path.basename(wheel)]
    if env_archive:
        conf["spark.pyspark.python"] = "./environment/bin/python"
    else:
        conf["spark.pyspark.python"] = python or os.environ.get("PYSPARK_PYTHON") or sys.executable
    conf.update(settings.spark.conf)
    log4j = root / "conf" / "log4j2.properties"
    if log4j.is_file():
        # Kept next to any driver JVM options the conf sets (one --conf key holds them all).
        own = str(conf.get("spark.driver.extraJavaOptions", "")).strip()
        conf["spark.driver.extraJavaOptions"] = " ".join(filter(None, [f"-Dlog4j2.configurationFile=file:{log4j}", own]))
    extra_path = conf.pop("spark.executorEnv.PYTHONPATH", "")
    conf["spark.executorEnv.PYTHONPATH"] = os.pathsep.join([*executor_path, *filter(None, [extra_path])])
    cmd = [spark_submit_bin(), "--master", master, "--deploy-mode", "client", "--name", name,
           "--py-files", wheel, "--jars", ",".join(delta_jars(settings))]
    auth_file = cluster_auth_file(master) if auth_file is None else auth_file
    if auth_file:
        cmd += ["--properties-file", auth_file]
    if env_archive:
        cmd += ["--archives", f"{env_archive}#environment"]
    for key in sorted(conf):
        cmd += ["--conf", f"{key}={conf[key]}"]
    return [*cmd, str(app_file), *app_args]


def build_submit_command(job: str, conf: str, master: str | None = None, wheel: str | None = None,
                         env_archive: str | None = None, overrides: tuple[str, ...] = (),
                         python: str | None = None) -> list[str]:
    """spark-submit argv for ``jobs/<job>.py`` with the lib wheel, Delta jars and conf.

    Args:
        job: Job file stem.
        conf: Cluster conf file (validated here, read by the driver in client mode).
        master: Master URL; default ``$SPARK_MASTER`` or ``spark://127.0.0.1:7077``.
        wheel: marketlab wheel for executors (default: newest ``dist/marketlab-*.whl``).
        env_archive: A packed environment (venv-pack) unpacked as ``environment`` on
            executors; its Python becomes the executors' interpreter.
        overrides: ``key=value`` conf overrides passed on to the job.
        python: Executors' interpreter without an archive (see :func:`submit_command`).

    Raises:
        FileNotFoundError: Job file or wheel missing.
        ConfigError: The conf does not validate.
    """
    settings = load_settings(conf, list(overrides))
    job_file = Path(settings.project_root) / "jobs" / f"{job}.py"
    if not job_file.is_file():
        raise FileNotFoundError(f"no job file {job_file}")
    args = ["--conf", str(Path(conf).resolve())]
    for item in overrides:
        args += ["--set", item]
    return submit_command(job_file, settings, name=f"marketlab-{job}", master=master, wheel=wheel,
                          env_archive=env_archive, python=python, app_args=args)


@dataclass
class StageSubmit:
    """Outcome of one stage submitted by :func:`submit_pipeline`."""

    stage: str
    status: str  # ok | failed (<code>)
    seconds: float = 0.0
    exit_code: int = 0


def submit_pipeline(conf: str, *, master: str | None = None, wheel: str | None = None,
                    env_archive: str | None = None, python: str | None = None, overrides: tuple[str, ...] = (),
                    only: Sequence[str] = (), from_stage: str | None = None, timeout_s: float | None = None,
                    echo: Callable[[str], None] = print,
                    runner: Callable[[list[str]], int] | None = None) -> list[StageSubmit]:
    """spark-submit every stage's job in pipeline order; stop at the first failure.

    Each stage is its own Spark application (``marketlab-<job>``) and MLflow run.

    Args:
        conf: Cluster conf file.
        timeout_s: Per-stage limit; a stage over it is killed and counts as failed (124).
        echo: Progress output.
        runner: Runs one argv and returns its exit code (tests inject a fake).

    Returns:
        One :class:`StageSubmit` per selected stage that was reached.

    Raises:
        FileNotFoundError: A selected stage's job file or the wheel is missing.
    """
    settings = load_settings(conf, list(overrides))
    wheel = wheel or find_wheel(settings.project_root)

    def _run(cmd: list[str]) -> int:
        try:
            # The jobs' own stdout (their JSON summaries, Spark's banner) goes to stderr so that
            # this command's stdout is only the per-stage result table, which callers parse.
            try:
                out = sys.stderr.fileno()
            except (AttributeError, OSError, ValueError):  # a captured stream without a descriptor
                out = None
            env = {**os.environ, **submit_environment(settings)}
            return subprocess.run(cmd, timeout=timeout_s, stdout=out, env=env).returncode
        except subprocess.TimeoutExpired:
            return 124

    run = runner or _run
    results: list[StageSubmit] = []
    for st in select_stages(only, from_stage):
        cmd = build_submit_command(st.job_name, conf, master=master, wheel=wheel, env_archive=env_archive,
                                   overrides=overrides, python=python)
        echo(f"== {st.name}: {st.description}\n$ {shlex.join(cmd)}")
        t0 = time.perf_counter()
        code = run(cmd)
        secs = time.perf_counter() - t0
        results.append(StageSubmit(st.name, "ok" if code == 0 else f"failed ({code})", secs, code))
        echo(f"== {st.name}: {'ok' if code == 0 else f'FAILED with exit code {code}'} in {secs:.1f}s")
        if code:
            break
    return results

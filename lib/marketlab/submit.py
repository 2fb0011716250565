"""Build the spark-submit command of a job for a cluster."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pyspark

from marketlab.config import load_settings
from marketlab.spark import delta_jars


def spark_submit_bin() -> str:
    """spark-submit of $SPARK_HOME, else the one shipped in the pyspark package."""
    home = os.environ.get("SPARK_HOME") or str(Path(pyspark.__file__).parent)
    return str(Path(home) / "bin" / "spark-submit")


def build_submit_command(job: str, conf: str, master: str | None = None, wheel: str | None = None,
                         env_archive: str | None = None, overrides: tuple[str, ...] = ()) -> list[str]:
    """spark-submit argv for ``jobs/<job>.py`` with the lib wheel, Delta jars and conf.

    Args:
        job: Job file stem.
        conf: Cluster conf file (validated here, read by the driver in client mode).
        master: Master URL; default ``$SPARK_MASTER`` or ``spark://127.0.0.1:7077``.
        wheel: marketlab wheel for executors (default: newest ``dist/marketlab-*.whl``).
        env_archive: A packed environment (venv-pack) unpacked as ``environment`` on
            executors; its Python becomes the executors' interpreter.
        overrides: ``key=value`` conf overrides passed on to the job.

    Raises:
        FileNotFoundError: Job file or wheel missing.
        ConfigError: The conf does not validate.
    """
    settings = load_settings(conf, list(overrides))
    root = Path(settings.project_root)
    job_file = root / "jobs" / f"{job}.py"
    if not job_file.is_file():
        raise FileNotFoundError(f"no job file {job_file}")
    if wheel is None:
        wheels = sorted(glob.glob(str(root / "dist" / "marketlab-*.whl")), key=os.path.getmtime)
        if not wheels:
            raise FileNotFoundError("no marketlab wheel in dist/: run `make wheel` first")
        wheel = wheels[-1]
    master = master or os.environ.get("SPARK_MASTER", "spark://127.0.0.1:7077")
    cmd = [spark_submit_bin(), "--master", master, "--deploy-mode", "client", "--name", f"marketlab-{job}",
           "--py-files", wheel, "--jars", ",".join(delta_jars(settings)),
           "--conf", "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
           "--conf", "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
           "--conf", "spark.sql.session.timeZone=UTC"]
    if env_archive:
        cmd += ["--archives", f"{env_archive}#environment",
                "--conf", "spark.executorEnv.PYSPARK_PYTHON=./environment/bin/python"]
    cmd += [str(job_file), "--conf", str(Path(conf).resolve())]
    for item in overrides:
        cmd += ["--set", item]
    return cmd

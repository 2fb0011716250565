"""``marketlab`` console script: list jobs, run one or the pipeline locally, submit to a cluster."""

from __future__ import annotations

import ast
import os
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import click

from marketlab.config import ConfigError, load_settings
from marketlab.pipeline import STAGES

DEFAULT_CONF = "conf/local.yaml"


def _project_root(conf: str) -> Path:
    return Path(conf).resolve().parent.parent


def _jobs_dir(conf: str) -> Path:
    return _project_root(conf) / "jobs"


def _job_doc(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return doc.strip().splitlines()[0] if doc else ""


def run_job_file(conf: str, job: str, overrides: tuple[str, ...] = (), extra: tuple[str, ...] = ()) -> int:
    """Run ``jobs/<job>.py`` in this process, as spark-submit would run it as the main file.

    Returns:
        The job's exit code.
    """
    path = _jobs_dir(conf) / f"{job}.py"
    if not path.is_file():
        raise click.ClickException(f"no job '{job}': {path} does not exist (see `marketlab list`)")
    argv = [str(path), "--conf", conf, *[a for o in overrides for a in ("--set", o)], *extra]
    old = sys.argv
    sys.argv = argv
    try:
        runpy.run_path(str(path), run_name="__main__")
        return 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """MarketLab: raw shop data -> Delta lake -> models -> marketing strategies.

    Jobs run in Spark local mode here; `submit` builds the spark-submit command for a cluster.
    """


@main.command("list")
@click.option("--conf", default=DEFAULT_CONF, show_default=True)
def list_jobs(conf: str) -> None:
    """List the jobs (jobs/*.py) and the pipeline stages."""
    jobs = sorted(_jobs_dir(conf).glob("*.py"))
    click.echo("jobs:")
    for path in jobs:
        if not path.name.startswith("_"):
            click.echo(f"  {path.stem:<12} {_job_doc(path)}")
    click.echo("pipeline: " + " -> ".join(s.name for s in STAGES))


@main.command("run", context_settings={"ignore_unknown_options": True})
@click.argument("job")
@click.option("--conf", default=DEFAULT_CONF, show_default=True, help="environment conf file")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a conf value (repeatable)")
@click.argument("extra", nargs=-1, type=click.UNPROCESSED)
def run(job: str, conf: str, overrides: tuple[str, ...], extra: tuple[str, ...]) -> None:
    """Run one job in local mode (arguments after JOB go to the job)."""
    sys.exit(run_job_file(conf, job, overrides, extra))


@main.command("pipeline")
@click.option("--conf", default=DEFAULT_CONF, show_default=True)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE")
@click.option("--only", multiple=True, help="run only these stages (repeatable)")
def pipeline(conf: str, overrides: tuple[str, ...], only: tuple[str, ...]) -> None:
    """Run the stage graph in order (stages without a job file yet are skipped)."""
    from marketlab.pipeline_runner import run_pipeline

    sys.exit(run_pipeline(conf, overrides, only))


@main.command("submit")
@click.argument("job")
@click.option("--conf", default="conf/cluster.yaml", show_default=True)
@click.option("--master", default=None, help="spark master URL (default: $SPARK_MASTER or spark://127.0.0.1:7077)")
@click.option("--wheel", default=None, help="built marketlab wheel (default: newest dist/*.whl)")
@click.option("--env-archive", default=None, help="packed Python env (venv-pack tar.gz) shipped as the executors' Python")
@click.option("--execute", is_flag=True, help="run the command instead of printing it")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE")
def submit(job: str, conf: str, master: str | None, wheel: str | None, env_archive: str | None,
           execute: bool, overrides: tuple[str, ...]) -> None:
    """Print (or --execute) the spark-submit command of JOB for a cluster."""
    from marketlab.submit import build_submit_command

    try:
        cmd = build_submit_command(job, conf, master=master, wheel=wheel, env_archive=env_archive, overrides=overrides)
    except (ConfigError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    if not execute:
        click.echo(shlex.join(cmd))
        return
    sys.exit(subprocess.call(cmd))


@main.command("mlflow-ui")
@click.option("--conf", default=DEFAULT_CONF, show_default=True)
def mlflow_ui(conf: str) -> None:
    """Serve the MLflow UI for the configured store (127.0.0.1 unless conf says otherwise)."""
    try:
        settings = load_settings(conf)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    from marketlab.tracking import configure_mlflow

    configure_mlflow(settings)
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", settings.tracking_uri(),
           "--default-artifact-root", settings.artifact_root(),
           "--host", settings.mlflow.ui_host, "--port", str(settings.mlflow.ui_port)]
    click.echo(f"MLflow UI on http://{settings.mlflow.ui_host}:{settings.mlflow.ui_port}  (Ctrl-C stops)")
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()

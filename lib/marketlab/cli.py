"""``marketlab`` console script: list jobs, run one or the pipeline locally, submit to a cluster."""

from __future__ import annotations

import ast
import os
import shlex
import subprocess
import sys
from pathlib import Path

import click

from marketlab.config import ConfigError, load_settings
from marketlab.errors import UserError
from marketlab.pipeline import STAGES
from marketlab.runtime import DEFAULT_CONF, jobs_dir, run_job_file


def _fail(command: str, exc: UserError) -> None:
    """A :class:`UserError` as the harness prints it: one line, the error's exit code."""
    click.echo(f"marketlab {command}: {exc}", err=True)
    sys.exit(int(getattr(exc, "exit_code", 2)))


def _job_doc(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return doc.strip().splitlines()[0] if doc else ""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """MarketLab: raw shop data -> Delta lake -> models -> marketing strategies.

    Jobs run in Spark local mode here; `submit` builds the spark-submit command for a cluster.
    """


@main.command("list")
@click.option("--conf", default=DEFAULT_CONF, show_default=True)
def list_jobs(conf: str) -> None:
    """List the jobs (jobs/*.py) and the pipeline stages."""
    jobs = sorted(jobs_dir(conf).glob("*.py"))
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
@click.option("--from", "from_stage", default=None, help="start at this stage")
@click.option("--force", is_flag=True, help="re-run stages even when they are up to date")
@click.option("--profile", default=None, help="conf/profiles/<name>.yaml overrides, e.g. 'fast'")
@click.option("--parallel", type=click.IntRange(1, 16), default=None,
              help="stages at once (default: pipeline.max_parallel_stages; 1 = one after another)")
def pipeline(conf: str, overrides: tuple[str, ...], only: tuple[str, ...], from_stage: str | None, force: bool,
             profile: str | None, parallel: int | None) -> None:
    """Run the stage graph (each stage once its inputs are written), skipping up-to-date stages."""
    from marketlab.pipeline_runner import run_pipeline
    from marketlab.profiles import profile_overrides

    try:
        overrides = (*profile_overrides(profile, conf), *overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(run_pipeline(conf, overrides, only, force=force, from_stage=from_stage, max_parallel=parallel).exit_code)


@main.command("submit")
@click.argument("job")
@click.option("--conf", default="conf/cluster.yaml", show_default=True)
@click.option("--master", default=None, help="spark master URL (default: $SPARK_MASTER or spark://127.0.0.1:7077)")
@click.option("--wheel", default=None, help="built marketlab wheel (default: newest dist/*.whl)")
@click.option("--env-archive", default=None, help="packed Python env (venv-pack tar.gz) shipped as the executors' Python")
@click.option("--python", default=None, help="executors' Python without --env-archive (default: $PYSPARK_PYTHON or this one)")
@click.option("--execute", is_flag=True, help="run the command instead of printing it")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE")
def submit(job: str, conf: str, master: str | None, wheel: str | None, env_archive: str | None, python: str | None,
           execute: bool, overrides: tuple[str, ...]) -> None:
    """Print (or --execute) the spark-submit command of JOB for a cluster."""
    from marketlab.submit import build_submit_command

    try:
        cmd = build_submit_command(job, conf, master=master, wheel=wheel, env_archive=env_archive, overrides=overrides,
                                   python=python)
    except (ConfigError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    from marketlab.spark import bind_environment
    from marketlab.submit import submit_environment

    settings = load_settings(conf, list(overrides))
    if not execute:
        # The MLflow password stays out of the printed line (see docs/CLUSTER.md).
        env = bind_environment(settings)
        click.echo(" ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(cmd))
        return
    sys.exit(subprocess.call(cmd, env={**os.environ, **submit_environment(settings)}))


@main.command("pipeline-submit")
@click.option("--conf", default="conf/cluster.yaml", show_default=True)
@click.option("--master", default=None, help="spark master URL (default: $SPARK_MASTER or spark://127.0.0.1:7077)")
@click.option("--wheel", default=None, help="built marketlab wheel (default: newest dist/*.whl)")
@click.option("--env-archive", default=None, help="packed Python env (venv-pack tar.gz) shipped as the executors' Python")
@click.option("--python", default=None, help="executors' Python without --env-archive (default: $PYSPARK_PYTHON or this one)")
@click.option("--only", multiple=True, help="submit only these stages (repeatable)")
@click.option("--from", "from_stage", default=None, help="start at this stage")
@click.option("--timeout", "timeout_s", type=float, default=None, help="seconds per stage before it is killed")
@click.option("--profile", default=None, help="conf/profiles/<name>.yaml overrides (passed on as --set), e.g. 'fast'")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE")
def pipeline_submit(conf: str, master: str | None, wheel: str | None, env_archive: str | None, python: str | None,
                    only: tuple[str, ...], from_stage: str | None, timeout_s: float | None, profile: str | None,
                    overrides: tuple[str, ...]) -> None:
    """spark-submit every stage's job to a cluster in pipeline order; stop at the first failure."""
    from marketlab.submit import submit_pipeline

    try:
        if profile:
            from marketlab.profiles import profile_overrides

            overrides = (*profile_overrides(profile, conf), *overrides)
        results = submit_pipeline(conf, master=master, wheel=wheel, env_archive=env_archive, python=python,
                                  overrides=overrides, only=only, from_stage=from_stage, timeout_s=timeout_s,
                                  echo=lambda line: click.echo(line, err=True))
    except (ConfigError, FileNotFoundError, KeyError) as exc:
        raise click.ClickException(str(exc).strip("'\"")) from None
    for res in results:
        click.echo(f"{res.stage:<12} {res.status:<24} {res.seconds:7.1f}s")
    failed = [r for r in results if r.exit_code]
    sys.exit(failed[0].exit_code if failed else 0)


@main.command("k8s-manifests")
@click.option("--out", default="infra/k8s", show_default=True, help="folder of the SparkApplication manifests")
@click.option("--dag", default="infra/airflow/marketlab_dag.py", show_default=True, help="Airflow DAG file")
@click.option("--image", default=None, help="container image (default: marketlab:<version>)")
@click.option("--check", is_flag=True, help="only check that the committed files match the stage graph")
def k8s_manifests(out: str, dag: str, image: str | None, check: bool) -> None:
    """(Re)generate the Spark Operator manifests and the Airflow DAG from the stage graph."""
    from marketlab import __version__
    from marketlab.deploy import write_airflow_dag, write_manifests
    from marketlab.profiles import profile_overrides

    image = image or f"marketlab:{__version__}"
    try:  # the GPU variants of the training stages (run from the project root, like --out's default)
        gpu = profile_overrides("gpu", DEFAULT_CONF)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    if check:
        stale = write_manifests(out, image=image, check=True, gpu_profile=gpu)
        if not write_airflow_dag(dag, check=True):
            stale.append(dag)
        if stale:
            raise click.ClickException(f"out of date (run `marketlab k8s-manifests`): {', '.join(stale)}")
        click.echo("manifests and DAG match the stage graph")
        return
    written = write_manifests(out, image=image, gpu_profile=gpu)
    write_airflow_dag(dag)
    click.echo(f"wrote {len(written)} manifests to {out}/ and {dag}")


@main.command("history")
@click.argument("table")
@click.option("--conf", default=DEFAULT_CONF, show_default=True)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True, help="newest versions shown")
def history(table: str, conf: str, overrides: tuple[str, ...], limit: int) -> None:
    """The Delta history of catalog table TABLE: version, time, operation, rows, the job and MLflow run that wrote it."""
    from marketlab.runtime import open_lake
    from marketlab.tables import catalog_name

    try:
        settings = load_settings(conf, list(overrides))
        catalog_name(settings, table)  # an unknown name fails before a session starts
        commits = open_lake(settings).history(table, limit)
    except UserError as exc:
        _fail("history", exc)
    click.echo(f"{'version':>7}  {'timestamp (UTC)':<19}  {'operation':<24} {'rows':>10}  {'job':<12} mlflow run")
    for c in commits:
        rows = "" if c.rows_written is None else f"{c.rows_written:,}"
        click.echo(f"{c.version:>7}  {c.timestamp:%Y-%m-%d %H:%M:%S}  {c.operation:<24} {rows:>10}  {c.job or '-':<12} "
                   f"{c.run_id or '-'}")


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

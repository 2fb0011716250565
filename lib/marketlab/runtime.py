"""The harness every stage runs through: args -> settings -> session -> lake -> ``main(ctx)``.

One harness for the three ways a job starts:

* spark-submit (or ``python jobs/<job>.py``) runs the file as ``__main__``, whose last line
  is ``main_guard("<job>", main)``;
* ``marketlab run JOB`` and the pipeline runner call :func:`call_job`, which imports
  ``jobs/<job>.py`` as a module and calls its ``main(ctx)`` in this process (the pipeline
  from several threads at once: arguments travel as values, never through ``sys.argv``).

A job with arguments of its own exposes its parser as the module attribute ``PARSER``
(built from :func:`job_parser`) and passes it to ``main_guard``, so both ways parse the
same options.

The errors a user can act on (:class:`marketlab.errors.UserError` and its subclasses: bad
conf, missing table, failed quality gate, bad input) become one line
``marketlab <job>: <message>`` on stderr and the error's exit code instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Sequence

from pyspark.sql import SparkSession

from marketlab.config import ConfigError, Settings, load_settings
from marketlab.errors import DiskFullError, UserError, disk_full
from marketlab.logs import PIPELINE_RUN, job_context, json_enabled, set_format, setup_logging
from marketlab.tables import Lake, local_lake_root

log = logging.getLogger("marketlab.job")

DEFAULT_CONF = "conf/local.yaml"

#: The name older code raises; lib raises the subclasses of :class:`UserError` instead.
JobError = UserError


@dataclass
class JobContext:
    """What a job body receives."""

    name: str
    settings: Settings
    spark: SparkSession
    lake: Lake
    args: argparse.Namespace


def job_parser(description: str) -> argparse.ArgumentParser:
    """Argument parser shared by all jobs (``--conf``, ``--set key=value``); jobs may add options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--conf", default=DEFAULT_CONF, help="environment conf file (default: %(default)s)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a conf value, e.g. --set jobs.forecast.epochs=2 (repeatable)")
    return parser


def job_argv(conf: str | os.PathLike, overrides: Sequence[str] = (), extra: Sequence[str] = ()) -> list[str]:
    """The arguments of a job run: ``--conf CONF --set K=V ... EXTRA...``."""
    return ["--conf", str(conf), *[a for o in overrides for a in ("--set", o)], *extra]


def open_lake(settings: Settings) -> Lake:
    """The session and lake of ``settings`` outside a job (``marketlab history``)."""
    from marketlab.spark import get_spark

    return Lake(get_spark(settings), settings)


def build_context(name: str, args: argparse.Namespace, settings: Settings | None = None) -> JobContext:
    """Load settings (unless given), get the session and the lake for a job."""
    from marketlab.spark import get_spark

    settings = settings if settings is not None else load_settings(args.conf, args.overrides)
    preflight(name, settings)
    spark = get_spark(settings)
    return JobContext(name=name, settings=settings, spark=spark, lake=Lake(spark, settings), args=args)


def preflight(name: str, settings: Settings) -> None:
    """What an operator can get wrong, checked in seconds before the session starts: the
    MLflow store answers, and the lake root is writable when the job writes tables.

    Raises:
        ConfError: One line naming the setting.
    """
    from marketlab.pipeline import STAGES
    from marketlab.tables import check_writable
    from marketlab.tracking import check_tracking

    check_tracking(settings)
    stage = next((s for s in STAGES if s.job_name == name), None)
    if stage is None or stage.outputs:
        check_writable(settings)


def _user_error(name: str, exc: UserError) -> int:
    if json_enabled():  # the one line as a JSON record, like every other line of the log
        log.error("marketlab %s: %s", name, exc)
    else:
        print(f"marketlab {name}: {exc}", file=sys.stderr)
    return int(getattr(exc, "exit_code", 2))


def _disk_full_message(marker: str, settings: Settings | None) -> str:
    where = ""
    if settings is not None:
        root = local_lake_root(settings)
        if root is not None:
            probe = next((p for p in (root, *root.parents) if p.exists()), None)
            if probe is not None:
                du = shutil.disk_usage(probe)
                where = f" under {root} ({du.free / 2**20:.1f} MiB free of {du.total / 2**20:.1f} MiB)"
    return (f"{marker.lower()}{where}; the tables keep their last committed versions: free space and rerun")


def run_job(name: str, body: Callable[[JobContext], object], argv: Sequence[str] | None = None,
            parser: argparse.ArgumentParser | None = None, settings: Settings | None = None) -> int:
    """Run a job body with the shared harness.

    Args:
        name: Job name (MLflow run name, message prefix).
        body: ``body(ctx)``; what it returns is ignored (jobs print their own summary line).
        argv: Arguments (default ``sys.argv[1:]``, as spark-submit passes them).
        parser: A job-specific parser built from :func:`job_parser`.
        settings: Settings already loaded from the ``--conf``/``--set`` in ``argv`` (the
            pipeline runner's, so a stage runs with exactly the settings it was
            fingerprinted with); default: loaded here.

    Returns:
        Exit code: 0 ok, the error's ``exit_code`` (2) for a :class:`UserError`. Any other
        exception is a bug and propagates with its traceback; a ``SystemExit`` raised inside
        the body becomes a ``RuntimeError`` (it is no exit code of the job).
    """
    from marketlab.pipeline import STAGES
    from marketlab.spark import private_umask

    private_umask()  # before anything is created: the MLflow store, the lake root
    setup_logging()
    args = (parser or job_parser(name)).parse_args(sys.argv[1:] if argv is None else list(argv))
    stage = next((s.name for s in STAGES if s.job_name == name), name)
    with job_context(name, stage, PIPELINE_RUN.get() or uuid.uuid4().hex[:12]):
        try:
            settings = settings if settings is not None else load_settings(args.conf, args.overrides)
            set_format(settings.logging.format)
            body(build_context(name, args, settings))
            return 0
        except UserError as exc:
            return _user_error(name, exc)
        except Exception as exc:
            # A full disk is the machine's state, not a bug: one line, no Java trace. Every
            # other exception keeps its traceback.
            marker = disk_full(exc)
            if marker is None:
                raise
            return _user_error(name, DiskFullError(_disk_full_message(marker, settings)))
        except SystemExit as exc:
            # Only the argument parsing above may exit. A library that exits inside a job (e.g.
            # pyspark.sql.connect's import, when it takes the process for a doctest run) would
            # otherwise turn a stage that stopped half-way into exit code 0.
            raise RuntimeError(f"{name}: sys.exit({exc.code!r}) called inside the job") from exc


def load_job(path: str | os.PathLike) -> ModuleType:
    """Import a job file as a module (not as ``__main__``: its ``main_guard`` line does not run).

    Raises:
        UserError: No such file, or the file has no ``main(ctx)``.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no job '{path.stem}': {path} does not exist (see `marketlab list`)")
    spec = importlib.util.spec_from_file_location(f"marketlab_jobs.{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "main", None)):
        raise UserError(f"job file {path} has no main(ctx)")
    return module


def call_job(job_file: str | os.PathLike, argv: Sequence[str] = (), settings: Settings | None = None) -> int:
    """Import ``jobs/<job>.py`` and call its ``main(ctx)`` through :func:`run_job`.

    Args:
        job_file: The job's file; its stem is the job name.
        argv: The job's arguments (``--conf``, ``--set``, and the options of its ``PARSER``).
        settings: Settings already loaded from ``argv``'s conf and overrides.

    Returns:
        The job's exit code (an argument error is 2, as argparse exits with).
    """
    name = Path(job_file).stem
    try:
        module = load_job(job_file)
        return run_job(name, module.main, argv, parser=getattr(module, "PARSER", None), settings=settings)
    except UserError as exc:
        return _user_error(name, exc)
    except SystemExit as exc:  # argparse's usage errors (and --help) exit; the caller decides about the process
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)


def jobs_dir(conf: str | os.PathLike) -> Path:
    """The project's ``jobs/`` folder: next to the ``conf/`` folder holding ``conf``; for a
    conf outside a project (no ``jobs/`` there), this installation's own ``jobs/``."""
    beside = Path(conf).resolve().parent.parent / "jobs"
    own = Path(__file__).resolve().parents[2] / "jobs"
    return beside if beside.is_dir() or not own.is_dir() else own


def run_job_file(conf: str | os.PathLike, job: str, overrides: Sequence[str] = (), extra: Sequence[str] = ()) -> int:
    """``marketlab run JOB``: call ``jobs/<job>.py`` of the project of ``conf`` in this process.

    Args:
        conf: Environment conf file.
        job: Job file stem.
        overrides: ``key=value`` conf overrides.
        extra: Further arguments for the job's own ``PARSER``.

    Returns:
        The job's exit code.
    """
    if not Path(conf).is_file():  # before looking for jobs/ beside it: the conf is what is missing
        return _user_error(job, ConfigError(f"conf file not found: {conf}"))
    return call_job(jobs_dir(conf) / f"{job}.py", job_argv(conf, overrides, extra))


def main_guard(name: str, body: Callable[[JobContext], object], parser: argparse.ArgumentParser | None = None) -> None:
    """``if __name__ == "__main__": main_guard(...)``: run and exit with the job's code."""
    code = run_job(name, body, parser=parser)
    if code:
        sys.exit(code)

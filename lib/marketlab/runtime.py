"""The harness every ``jobs/*.py`` entry point uses: args -> settings -> session -> lake.

It turns the errors a user can act on (bad conf, missing table, failed quality gate, bad
input) into one clear line and an exit code instead of a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import threading
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from pyspark.sql import SparkSession

from marketlab.config import ConfigError, Settings, load_settings
from marketlab.logs import setup_logging
from marketlab.tables import Lake, TableNotFoundError

log = logging.getLogger("marketlab.job")

DEFAULT_CONF = "conf/local.yaml"

# The arguments of the job running in this thread: the pipeline runs stages in threads of
# one process, and sys.argv is one per process.
_ARGV = threading.local()


@contextlib.contextmanager
def job_arguments(argv: Sequence[str]) -> Iterator[None]:
    """Within the block, jobs started in this thread parse ``argv`` instead of ``sys.argv[1:]``."""
    prev = getattr(_ARGV, "value", None)
    _ARGV.value = list(argv)
    try:
        yield
    finally:
        _ARGV.value = prev


class JobError(RuntimeError):
    """An error with a message meant for the user (bad input, failed gate, ...).

    Attributes:
        exit_code: Process exit code when the job is run as a script.
    """

    exit_code = 2


@dataclass
class JobContext:
    """What a job body receives."""

    name: str
    settings: Settings
    spark: SparkSession
    lake: Lake
    args: argparse.Namespace


def job_parser(description: str) -> argparse.ArgumentParser:
    """Argument parser shared by all jobs (``--conf``, ``--set key=value``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--conf", default=DEFAULT_CONF, help="environment conf file (default: %(default)s)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a conf value, e.g. --set jobs.forecast.epochs=2 (repeatable)")
    return parser


def build_context(name: str, args: argparse.Namespace) -> JobContext:
    """Load settings, get the session and the lake for a job."""
    from marketlab.spark import get_spark

    settings = load_settings(args.conf, args.overrides)
    spark = get_spark(settings)
    return JobContext(name=name, settings=settings, spark=spark, lake=Lake(spark, settings), args=args)


def run_job(name: str, body: Callable[[JobContext], object], argv: Sequence[str] | None = None,
            parser: argparse.ArgumentParser | None = None) -> int:
    """Run a job body with the shared harness.

    Args:
        name: Job name (MLflow run name, log prefix).
        body: ``body(ctx)``; may return a summary dict that is printed.
        argv: Arguments (default: those of :func:`job_arguments` in this thread, else
            ``sys.argv[1:]``).
        parser: A job-specific parser built from :func:`job_parser`.

    Returns:
        Process exit code: 0 ok, 2 a user-facing error (message printed), 1 a bug.
    """
    setup_logging()
    if argv is None:
        argv = getattr(_ARGV, "value", None)
    args = (parser or job_parser(name)).parse_args(argv)
    try:
        ctx = build_context(name, args)
        body(ctx)
        return 0
    except (ConfigError, JobError, TableNotFoundError) as exc:
        code = getattr(exc, "exit_code", 2)
        print(f"marketlab {name}: {exc}", file=sys.stderr)
        return code


def main_guard(name: str, body: Callable[[JobContext], object], parser: argparse.ArgumentParser | None = None) -> None:
    """``if __name__ == "__main__": main_guard(...)``: run and exit with the job's code."""
    code = run_job(name, body, parser=parser)
    if code:
        sys.exit(code)

"""Logging, configured once per process: the human format, or one JSON object per line.

With ``logging.format: json`` every record is one JSON object on its line, with the keys of
:data:`JSON_KEYS`: ``job``, ``stage`` and ``run_id`` come from the job context the harness
opens around each job (:func:`job_context`; per thread, since the pipeline runs stages in
threads), ``mlflow_run_id`` from the job's MLflow run once it is open, and the job's printed
summary line becomes a record with ``"summary": true`` and ``figures``, the metrics of the
job's MLflow run. Lines of the local Spark JVM's stderr become records of the logger
``spark.jvm`` (:func:`log_lines`).
"""

from __future__ import annotations

import contextvars
import io
import json
import logging
import os
import re
import sys
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import IO, Iterator

_CONFIGURED = False
_FORMAT = "human"
_FORMAT_LOCK = threading.Lock()
_HUMAN = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")

#: Keys of every JSON log line (a summary line adds ``summary`` and ``figures``, a record
#: with an exception ``exception``).
JSON_KEYS = ("timestamp", "level", "job", "stage", "run_id", "mlflow_run_id", "logger", "message")

#: The job context of this thread: job, stage, run_id, mlflow_run_id, figures.
_JOB: contextvars.ContextVar[dict | None] = contextvars.ContextVar("marketlab_job", default=None)
#: The pipeline run a stage thread belongs to (its job context takes it as run_id).
PIPELINE_RUN: contextvars.ContextVar[str | None] = contextvars.ContextVar("marketlab_pipeline_run", default=None)


@contextmanager
def job_context(job: str, stage: str, run_id: str) -> Iterator[dict]:
    """The job context of the records this thread logs until the block ends."""
    token = _JOB.set({"job": job, "stage": stage, "run_id": run_id, "mlflow_run_id": None, "figures": None})
    try:
        yield _JOB.get()
    finally:
        _JOB.reset(token)


def update_job_context(**values) -> None:
    """Add ``mlflow_run_id`` or ``figures`` to the current job context (none open: no-op)."""
    ctx = _JOB.get()
    if ctx is not None:
        ctx.update(values)


def json_enabled() -> bool:
    """True once :func:`set_format` chose JSON lines."""
    return _FORMAT == "json"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: :data:`JSON_KEYS`, plus summary figures and exceptions."""

    def format(self, record: logging.LogRecord) -> str:
        ctx = _JOB.get() or {}
        out = {
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "job": ctx.get("job"),
            "stage": ctx.get("stage"),
            "run_id": ctx.get("run_id"),
            "mlflow_run_id": ctx.get("mlflow_run_id"),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if getattr(record, "summary", False):
            out["summary"] = True
            out["figures"] = ctx.get("figures") or {}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class _SummaryStdout(io.TextIOBase):
    """``sys.stdout`` while JSON logs are on: what a thread inside a job prints (its one
    summary line) becomes a summary record; other output passes through unchanged."""

    def __init__(self, real: IO[str]):
        self.real = real
        self._pending = threading.local()

    def write(self, text: str) -> int:
        if _JOB.get() is None:
            return self.real.write(text)
        *lines, rest = (getattr(self._pending, "text", "") + text).split("\n")
        self._pending.text = rest
        for line in lines:
            if line.strip():
                logging.getLogger("marketlab.job").info(line, extra={"summary": True})
        return len(text)

    def flush(self) -> None:
        self.real.flush()

    def __getattr__(self, name: str):  # fileno, encoding, isatty ... of the real stream
        return getattr(self.real, name)


def _own_handlers() -> list[logging.Handler]:
    # The stream handler basicConfig adds; a host's handlers (pytest's capture) keep their format.
    return [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]


def set_format(fmt: str) -> None:
    """Switch every root handler to ``human`` or ``json`` lines (``logging.format`` of conf)."""
    global _FORMAT
    setup_logging()
    with _FORMAT_LOCK:  # pipeline stages start their jobs in threads at once
        _FORMAT = fmt
        for handler in _own_handlers():
            handler.setFormatter(JsonFormatter() if fmt == "json" else _HUMAN)
        if fmt == "json" and not isinstance(sys.stdout, _SummaryStdout):
            sys.stdout = _SummaryStdout(sys.stdout)
        elif fmt != "json" and isinstance(sys.stdout, _SummaryStdout):
            sys.stdout = sys.stdout.real


# `HH:mm:ss LEVEL Logger: message`, the pattern of conf/log4j2.properties.
_LOG4J_LINE = re.compile(r"^\d\d:\d\d:\d\d (TRACE|DEBUG|INFO|WARN|ERROR|FATAL) (\S+): (.*)$")
_LOG4J_LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING,
                 "ERROR": logging.ERROR, "FATAL": logging.CRITICAL}


def log_lines(stream: IO[bytes], name: str = "spark.jvm") -> threading.Thread:
    """Log every line of ``stream`` (a child's stderr) as a record of logger ``name``.

    A log4j line keeps its level and names its logger in the message; other lines (stack
    frames, the JVM's own warnings) are WARNING records. Runs in a daemon thread until the
    stream closes.
    """
    log = logging.getLogger(name)

    def pump() -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if not line.strip():
                continue
            m = _LOG4J_LINE.match(line)
            if m:
                log.log(_LOG4J_LEVELS[m.group(1)], "%s: %s", m.group(2), m.group(3))
            else:
                log.warning("%s", line)

    thread = threading.Thread(target=pump, name=f"log-{name}", daemon=True)
    thread.start()
    return thread


class Py4JRetryFilter(logging.Filter):
    """Drops py4j's INFO record, with a traceback, of a command it then resent successfully.

    py4j logs it on the root logger (``logging.info``), so the per-library levels below do
    not reach it. It happens when the JVM closed a pooled connection, e.g. after Horovod's
    Spark job ends. A resend that fails is logged at ERROR and kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and record.name == "root"
                    and "py4j" in record.pathname.replace("\\", "/").split("/")
                    and str(record.msg).startswith("Exception while sending command"))

# Libraries that log at INFO about things users do not act on.
_NOISY = ("py4j", "mlflow", "alembic", "urllib3", "matplotlib", "numba", "tensorflow", "absl", "h5py", "optuna")


def setup_logging(level: str | None = None) -> None:
    """Configure the root logger once (level from ``MARKETLAB_LOG_LEVEL``, default INFO)."""
    global _CONFIGURED
    if _CONFIGURED:
        return
    level = level or os.environ.get("MARKETLAB_LOG_LEVEL", "INFO")
    logging.basicConfig(level=level)
    for handler in logging.getLogger().handlers:
        handler.addFilter(Py4JRetryFilter())
    for handler in _own_handlers():
        handler.setFormatter(JsonFormatter() if _FORMAT == "json" else _HUMAN)
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
    # PySpark logs every failed query with its JVM stack at ERROR; our jobs turn the
    # failures a user can act on into one line, so that echo is noise.
    logging.getLogger("DataFrameQueryContextLogger").setLevel(logging.CRITICAL)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _CONFIGURED = True

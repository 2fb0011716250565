"""Logging, configured once per process."""

from __future__ import annotations

import logging
import os

_CONFIGURED = False


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
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for handler in logging.getLogger().handlers:
        handler.addFilter(Py4JRetryFilter())
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
    # PySpark logs every failed query with its JVM stack at ERROR; our jobs turn the
    # failures a user can act on into one line, so that echo is noise.
    logging.getLogger("DataFrameQueryContextLogger").setLevel(logging.CRITICAL)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _CONFIGURED = True

"""Logging, configured once per process."""

from __future__ import annotations

import logging
import os

_CONFIGURED = False

# Libraries that log at INFO about things users do not act on.
_NOISY = ("py4j", "mlflow", "alembic", "urllib3", "matplotlib", "numba", "tensorflow", "absl", "h5py", "optuna")


def setup_logging(level: str | None = None) -> None:
    """Configure the root logger once (level from ``MARKETLAB_LOG_LEVEL``, default INFO)."""
    global _CONFIGURED
    if _CONFIGURED:
        return
    level = level or os.environ.get("MARKETLAB_LOG_LEVEL", "INFO")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
    # PySpark logs every failed query with its JVM stack at ERROR; our jobs turn the
    # failures a user can act on into one line, so that echo is noise.
    logging.getLogger("DataFrameQueryContextLogger").setLevel(logging.CRITICAL)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _CONFIGURED = True

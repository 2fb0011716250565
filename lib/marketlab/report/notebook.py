"""Helpers of the exploration notebooks (notebooks/*.py / *.ipynb).

The notebooks read the lake through marketlab, with the conf chosen by environment
variables so the same notebook runs on the demo lake, a cluster conf or a test lake:

* ``MARKETLAB_CONF``: environment conf file (default ``conf/local.yaml``; relative paths
  are tried against the working folder, then the project root);
* ``MARKETLAB_SET``: ``key=value`` overrides separated by ``;``, e.g.
  ``lake_root=/tmp/pl/lake;mlflow.tracking_uri=sqlite:////tmp/pl/mlflow.db``.
"""

from __future__ import annotations

import os
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from marketlab.config import Settings, load_settings
from marketlab.tables import Lake

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def _conf_path(conf: str) -> Path:
    p = Path(conf)
    if p.is_absolute() or p.is_file():
        return p
    for base in (Path.cwd().parent, PROJECT_ROOT):
        if (base / p).is_file():
            return base / p
    return p  # load_settings reports it as not found


def notebook_settings(conf: str | None = None, overrides: list[str] | None = None) -> Settings:
    """Settings from ``MARKETLAB_CONF`` / ``MARKETLAB_SET`` (arguments win when given)."""
    conf = conf or os.environ.get("MARKETLAB_CONF", "conf/local.yaml")
    if overrides is None:
        overrides = [s.strip() for s in os.environ.get("MARKETLAB_SET", "").split(";") if s.strip()]
    return load_settings(_conf_path(conf), overrides)


def open_lake(conf: str | None = None, overrides: list[str] | None = None) -> tuple[Settings, SparkSession, Lake]:
    """``(settings, spark, lake)`` for a notebook."""
    from marketlab.spark import get_spark

    settings = notebook_settings(conf, overrides)
    spark = get_spark(settings)
    return settings, spark, Lake(spark, settings)


def table(lake: Lake, name: str) -> DataFrame | None:
    """The table, or None after printing why a section is skipped (partially filled lake)."""
    if not lake.exists(name):
        from marketlab.report.collect import _missing_table

        print(f"skipped: {_missing_table(name).reason}")
        return None
    return lake.read(name)


def tables(lake: Lake, *names: str) -> dict[str, DataFrame] | None:
    """All of ``names``, or None (with the reason printed) when one is missing."""
    out = {}
    for n in names:
        df = table(lake, n)
        if df is None:
            return None
        out[n] = df
    return out

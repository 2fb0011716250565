"""One Spark session for the whole suite (it costs ~10 s), a temporary lake and MLflow store.

Tests get ``settings`` (conf/test.yaml with lake and MLflow under a temp dir), ``spark``
and ``lake``. Tests that write tables should use table names from the catalog and may use
``fresh_lake`` for an empty lake of their own.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from marketlab.config import load_settings  # noqa: E402
from marketlab.tables import Lake  # noqa: E402

DATA = ROOT / "data"


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def session_tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("marketlab")


def make_settings(tmp: Path, overrides: list[str] | None = None):
    """conf/test.yaml with the lake and MLflow store under ``tmp``."""
    return load_settings(
        ROOT / "conf" / "test.yaml",
        [f"lake_root={tmp / 'lake'}", f"mlflow.tracking_uri=sqlite:///{tmp / 'mlflow.db'}",
         f"mlflow.artifact_root={tmp / 'artifacts'}", *(overrides or [])],
    )


@pytest.fixture(scope="session")
def settings(session_tmp):
    return make_settings(session_tmp)


@pytest.fixture(scope="session")
def spark(settings):
    from marketlab.spark import get_spark

    session = get_spark(settings)
    yield session
    session.stop()


@pytest.fixture()
def lake(spark, settings) -> Lake:
    return Lake(spark, settings)


@pytest.fixture()
def fresh_lake(spark, tmp_path) -> Lake:
    """An empty lake (and MLflow store) of the test's own."""
    return Lake(spark, make_settings(tmp_path))


@pytest.fixture(scope="session")
def ingested(spark, session_tmp):
    """The three vendored data sets ingested once into a session lake (bronze)."""
    from marketlab.ingest.run import ingest_sources

    st = make_settings(session_tmp / "ingested")
    lk = Lake(spark, st)
    summary = ingest_sources(lk, st)
    return lk, summary


def copy_data(name: str, dest: Path) -> Path:
    """Copy a vendored data file into ``dest`` (tests mutate copies, never data/)."""
    src = DATA / name
    out = dest / Path(name).name
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, out)
    return out

"""One Spark session for the whole suite (it costs ~10 s), a temporary lake and MLflow store.

Tests get ``settings`` (conf/test.yaml with lake and MLflow under a temp dir), ``spark``
and ``lake``. Tests that write tables should use table names from the catalog and may use
``fresh_lake`` for an empty lake of their own.

Every test that needs Spark is marked ``spark`` at collection (see
:func:`pytest_collection_modifyitems`): ``pytest -m "not spark"`` is the unit tier.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

# Before anything imports pyspark or TensorFlow (marketlab itself comes from the editable install).
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# A pytest-xdist worker runs `python -c ...` (execnet), so its __main__ has neither __spec__ nor
# __file__: pyspark.sql.connect (imported by pandera's PySpark backend, the quality gate) takes
# that for a doctest run without Spark Connect's dependencies and calls sys.exit(0).
_main = sys.modules["__main__"]
if getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    _main.__file__ = "<pytest-xdist worker>"

from marketlab.config import load_settings  # noqa: E402
from marketlab.tables import Lake  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

DATA = ROOT / "data"


# Tests that start Spark, a JVM, Horovod workers or a pipeline subprocess themselves, without
# the ``spark`` fixture: node-id prefixes (a module, or one test).
STARTS_SPARK: tuple[str, ...] = (
    "tests/test_spark.py::test_an_inherited_wildcard_spark_local_ip_does_not_open_the_ui",  # a JVM with its own env
    "tests/test_spark.py::test_env_honours_spark_local_ip",
    "tests/notebooks/test_notebooks.py::test_notebook_skips_sections_of_an_empty_lake",  # a kernel with Spark
    "tests/test_pipeline_runner.py::test_a_dead_driver_jvm_is_detected",  # a throwaway driver JVM
)


# `make test` runs the suite on two pytest-xdist workers (``--dist loadgroup``). Each worker
# has its own session, so a session fixture is built once per worker that uses it: the tests
# of one costly session fixture share a group (one worker builds it), every other test is
# grouped by its module (module fixtures are built once). The costliest groups go first.
PIPELINE_FIXTURES = ("pipeline_lake",)  # the whole pipeline on the real data (~9 min)
SILVER_FIXTURES = ("ingested", "silver", "gold")  # ingest -> clean -> features on the real data
# The whole pipeline on the real data is built in the setup of the first test that needs it,
# which pytest-timeout counts against that test: 1,188 s of wall time in a fresh-clone run
# beside the loopback-cluster tests (2026-12-08), over pytest.ini's 1,200 s hang guard once
# the session's start is added. Those tests get this much instead.
PIPELINE_TIMEOUT_S = 2700
SMALL_LAKE_FIXTURES = ("small_lake",)  # the report's synthetic lake (tests/report, tests/notebooks)
# Modules that build the marketlab wheel (setuptools' build/ folder is shared) and start JVMs
# of their own (the loopback cluster).
WHEEL_MODULES = ("tests/cluster/", "tests/infra/test_submit.py")


def _group(item) -> tuple[int, str]:
    """``(rank, xdist group)`` of a test; groups are scheduled by rank, the costliest first."""
    names = set(getattr(item, "fixturenames", ()))
    if names & set(PIPELINE_FIXTURES):
        return 0, "pipeline"
    if item.nodeid.startswith(WHEEL_MODULES):
        return 1, "wheel"
    if names & set(SILVER_FIXTURES):
        return 2, "silver"
    if names & set(SMALL_LAKE_FIXTURES):
        return 3, "small_lake"
    return 4, item.nodeid.split("::", 1)[0]


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups into the node ids
def pytest_collection_modifyitems(config, items):
    """Mark every test that needs a Spark session or starts heavy processes ``spark``, and
    give every test its xdist group (see :func:`_group`).

    ``pytest -m "not spark"`` is then the unit tier: pure-Python tests only. A test needs
    Spark when its fixture closure holds ``spark`` (directly or through any fixture built on
    it: ``lake``, ``silver``, ``pipeline_lake``, ...), when it is a ``cluster`` test, or when
    it is listed in :data:`STARTS_SPARK`.
    """
    groups = {}
    for item in items:
        if ("spark" in getattr(item, "fixturenames", ()) or item.get_closest_marker("cluster")
                or item.nodeid.startswith(STARTS_SPARK)):
            item.add_marker(pytest.mark.spark)
        groups[item.nodeid] = _group(item)
        item.add_marker(pytest.mark.xdist_group(groups[item.nodeid][1]))
        if groups[item.nodeid][1] == "pipeline" and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(PIPELINE_TIMEOUT_S))
    # Stable: within a group, and among modules, the collection order stays.
    items.sort(key=lambda it: groups[it.nodeid][0])


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
    from marketlab.ingest.run import run as ingest

    st = make_settings(session_tmp / "ingested")
    lk = Lake(spark, st)
    summary = ingest(lk, st.jobs.ingest)
    return lk, summary


@pytest.fixture(scope="session")
def silver(ingested):
    """``(lake, accounting)``: the clean job's outputs on the ``ingested`` lake.

    The lake then also holds silver.order_lines / returns / adjustments / campaign_log /
    sessions, silver._audit and quality.results (the gate has passed on them);
    ``accounting`` is the list of :class:`marketlab.clean.audit.Accounting` per source.
    """
    from marketlab.clean.run import run as clean
    from marketlab.quality.run import run as check

    lk, _ = ingested
    cleaned = clean(lk, lk.settings.jobs.clean)
    check(lk, cleaned.silver_tables, lk.settings.jobs.quality).raise_if_failed()
    return lk, cleaned.accounting


@pytest.fixture(scope="session")
def gold(silver):
    """``(lake, info)``: features + segments on top of ``silver`` (same lake).

    Adds gold.item_features, interactions, demand_daily, demand_weekly, customer_features
    (as of the day after the last sale), customer_sequences, segments, segment_profiles;
    ``info`` = {"as_of", "rows", "versions", "k", "silhouettes"}.
    """
    from marketlab.features.run import run as features
    from marketlab.privacy import resolve_secret
    from marketlab.segments.run import run as segments

    lk, _ = silver
    feats = features(lk, lk.settings.jobs.features, resolve_secret(lk.settings))
    seg = segments(lk, lk.settings.jobs.segments)
    return lk, {"as_of": feats.as_of, "rows": feats.rows, "versions": feats.versions, "k": seg.k,
                "silhouettes": seg.silhouettes}


def pass_gate(lake: Lake, *names: str) -> None:
    """Record a passing gate result for the current version of each of ``names``.

    For tests that write synthetic rows to a gated silver table (``Lake.read`` refuses a
    version without a gate result) to test a reader, not the gate: one ``passed`` row per
    table version in the lake's results table, marked ``detail='test fixture'``.
    """
    from marketlab.quality.gate import Result, results_frame

    rows = [Result(name, lake.version(name), "test_fixture", "min_rows", None, "blocking", True, 0, 0, None,
                   "test fixture") for name in names]
    table = lake.settings.jobs.quality.results_table
    before = lake.writes.get(table)
    lake.merge(results_frame(lake.spark, rows), table, keys=["table", "version", "expectation"])
    if before is None:  # the fixture's commit is no write of the code under test
        lake.writes.pop(table, None)


def copy_data(name: str, dest: Path) -> Path:
    """Copy a vendored data file into ``dest`` (tests mutate copies, never data/)."""
    src = DATA / name
    out = dest / Path(name).name
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, out)
    return out


FAST_PROFILE = "fast"
# On top of the fast profile, for the suite's time budget: fewer LSTM series and ALS sweeps.
# What the end-to-end tests check (every stage, tables, lineage, skips) does not depend on them.
SUITE_EXTRA = ("jobs.forecast.max_series=16", "jobs.recommend.als.max_iter=4")


def pipeline_overrides(tmp: Path) -> tuple[str, ...]:
    """conf/test.yaml + the fast profile (+ SUITE_EXTRA) with the lake and MLflow store under ``tmp``.

    The last ``len(SUITE_EXTRA) + 3`` items are what a CLI run adds to ``--profile fast``.
    """
    from marketlab.profiles import profile_overrides

    return (*profile_overrides(FAST_PROFILE, ROOT / "conf" / "test.yaml"), *SUITE_EXTRA,
            f"lake_root={tmp / 'lake'}", f"mlflow.tracking_uri=sqlite:///{tmp / 'mlflow.db'}",
            f"mlflow.artifact_root={tmp / 'artifacts'}")


@pytest.fixture(scope="session")
def pipeline_lake(spark, session_tmp):
    """The whole pipeline run once on the vendored real data (fast profile), in this process.

    Returns ``(settings, PipelineResult, overrides, root)``; tests must not write to this
    lake (copy it with ``shutil.copytree`` first).
    """
    from marketlab.pipeline_runner import run_pipeline

    root = session_tmp / "pipeline"
    overrides = pipeline_overrides(root)
    result = run_pipeline(str(ROOT / "conf" / "test.yaml"), overrides)
    assert result.exit_code == 0, [(s.stage, s.status, s.message) for s in result.stages]
    return load_settings(ROOT / "conf" / "test.yaml", list(overrides)), result, overrides, root

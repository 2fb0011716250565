"""Fixtures of the notebook tests: the shared small lake and one IPython kernel of this venv."""

from __future__ import annotations

import pytest

from report.small_lake import SmallLake, shared_small_lake


@pytest.fixture(scope="session")
def small_lake(spark, tmp_path_factory) -> SmallLake:
    """The same small lake the report tests use (built once per session)."""
    return shared_small_lake(spark, tmp_path_factory)

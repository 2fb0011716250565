"""A small campaign frame on the silver.campaign_log contract with a known effect."""

from __future__ import annotations

import pandas as pd
import pytest

from effect.synthetic import synthetic_campaign


@pytest.fixture(scope="session")
def campaign_pdf() -> pd.DataFrame:
    return synthetic_campaign()


@pytest.fixture(scope="session")
def campaign(spark, campaign_pdf):
    return spark.createDataFrame(campaign_pdf).cache()

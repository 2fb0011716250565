import numpy as np
import pandas as pd
import pytest


def synthetic_sessions(n=1200, seed=0):
    """Sessions on the silver.sessions contract with a label driven by page_values and exit_rates."""
    rng = np.random.default_rng(seed)
    pv = np.where(rng.random(n) < 0.25, rng.gamma(2.0, 15.0, n), 0.0)
    exit_rates = rng.uniform(0, 0.2, n)
    logit = -2.5 + 0.08 * pv - 8 * exit_rates
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    dur = rng.gamma(2.0, 30.0, n)
    dur[rng.random(n) < 0.02] = np.nan  # the -1 durations cleaning turned into nulls
    return pd.DataFrame({
        "session_id": np.arange(n, dtype=np.int64),
        "administrative": rng.integers(0, 10, n), "administrative_duration": dur,
        "informational": rng.integers(0, 3, n), "informational_duration": rng.gamma(1.0, 10.0, n),
        "product_related": rng.integers(1, 60, n), "product_related_duration": rng.gamma(2.0, 400.0, n),
        "bounce_rates": rng.uniform(0, 0.1, n), "exit_rates": exit_rates, "page_values": pv,
        "special_day": rng.choice([0.0, 0.2, 0.8], n, p=[0.9, 0.05, 0.05]),
        "month": rng.choice(["Feb", "Mar", "May", "Jun", "Nov", "Dec"], n),
        "operating_systems": rng.integers(1, 4, n), "browser": rng.integers(1, 5, n), "region": rng.integers(1, 9, n),
        "traffic_type": rng.integers(1, 6, n), "visitor_type": rng.choice(["Returning_Visitor", "New_Visitor", "Other"], n),
        "weekend": rng.random(n) < 0.25, "revenue": label.astype(bool), "label": label,
    })


@pytest.fixture(scope="module")
def sessions_pd():
    return synthetic_sessions()


@pytest.fixture(scope="module")
def sessions(spark, sessions_pd):
    df = spark.createDataFrame(sessions_pd.astype({"administrative_duration": object}).where(
        sessions_pd.notna(), None))
    return df.cache()

"""Synthetic daily demand for the forecast tests (small, seeded, with deliberate dirt)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

START = dt.date(2011, 1, 1)
N_DAYS = 150


def synthetic_demand(n_items: int = 8, warehouses: tuple[str, ...] = ("UK", "EU"), n_days: int = N_DAYS,
                     seed: int = 0, dirt: bool = True) -> pd.DataFrame:
    """Poisson demand with a weekly cycle per item x warehouse; with ``dirt``:

    * ``SHORT``/UK: only the last 20 days (too short for the LSTM),
    * ``ZERO``/UK: zeros only,
    * ``GAPPY``/EU: every 5th day missing, one negative day,
    * warehouse ``EMPTY``: one item, all zeros.
    """
    rng = np.random.default_rng(seed)
    dates = pd.date_range(START, periods=n_days, freq="D")
    weekly = 1 + 0.6 * np.sin(2 * np.pi * np.arange(n_days) / 7)
    frames = []
    for i in range(n_items):
        for w in warehouses:
            level = rng.uniform(3, 30)
            units = rng.poisson(level * weekly).astype(float)
            frames.append(pd.DataFrame({"item_id": f"I{i:02d}", "warehouse": w, "date": dates.date, "units": units}))
    if dirt:
        frames.append(pd.DataFrame({"item_id": "SHORT", "warehouse": "UK", "date": dates.date[-20:],
                                    "units": rng.poisson(5, 20).astype(float)}))
        frames.append(pd.DataFrame({"item_id": "ZERO", "warehouse": "UK", "date": dates.date, "units": 0.0}))
        gappy = pd.DataFrame({"item_id": "GAPPY", "warehouse": "EU", "date": dates.date,
                              "units": rng.poisson(8 * weekly).astype(float)})
        gappy.loc[10, "units"] = -3.0
        frames.append(gappy[np.arange(n_days) % 5 != 4])
        frames.append(pd.DataFrame({"item_id": "I00", "warehouse": "EMPTY", "date": dates.date, "units": 0.0}))
    df = pd.concat(frames, ignore_index=True)
    d = pd.to_datetime(df["date"])
    df["dow"], df["week"], df["month"] = d.dt.dayofweek + 1, d.dt.isocalendar().week.astype(int), d.dt.month
    df["is_weekend"] = d.dt.dayofweek >= 5
    return df


@pytest.fixture(scope="session")
def demand_pd() -> pd.DataFrame:
    return synthetic_demand()


@pytest.fixture(scope="session")
def demand_df(spark, demand_pd):
    return spark.createDataFrame(demand_pd).cache()

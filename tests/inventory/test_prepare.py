"""Seasonal-naive fallback and the problem frame, on hand-built frames."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from marketlab.inventory.params import InventoryParams, WarehouseOverride
from marketlab.inventory.prepare import build_problems, safety_factor, seasonal_naive_forecast

D0 = dt.date(2021, 1, 1)


def test_seasonal_naive_by_hand(spark):
    week1, week2 = [1, 2, 3, 4, 5, 6, 7], [2, 2, 2, 2, 2, 2, 9]
    rows = [("A", "UK", D0 + dt.timedelta(days=i), float(u)) for i, u in enumerate(week1 + week2)]
    rows.append(("A", "UK", D0 + dt.timedelta(days=20), 99.0))  # after the cutoff: ignored
    demand = spark.createDataFrame(rows, "item_id string, warehouse string, date date, units double")
    fc = seasonal_naive_forecast(demand, horizon_days=9, cutoff=D0 + dt.timedelta(days=13), season_days=7,
                                 residual_seasons=1).orderBy("date").toPandas()
    assert list(fc["date"]) == [D0 + dt.timedelta(days=14 + k) for k in range(9)]
    assert list(fc["p50"]) == week2 + [2, 2]
    # errors of the last season: week2 - week1 = [1, 0, -1, -2, -3, -4, 2]; 90% quantile
    # (linear interpolation, as numpy) = 1.4; the second season ahead widens by sqrt(2)
    q = np.percentile([1, 0, -1, -2, -3, -4, 2], 90)
    assert q == pytest.approx(1.4)
    np.testing.assert_allclose(fc["p90"] - fc["p50"], [q] * 7 + [q * math.sqrt(2)] * 2)
    assert set(fc["model"]) == {"seasonal_naive"}


def test_build_problems_by_hand(spark):
    days = [D0 + dt.timedelta(days=i) for i in range(4)]
    rows = [("x", "A", d, 1.0, 2.0) for d in days]
    rows += [("y", "A", d, p, p) for d, p in zip(days, [0.0, 0.0, 3.0, 0.0])]
    rows += [("z", "A", d, 0.0, 0.0) for d in days]  # no demand: left out
    rows += [("x", "B", d, 2.0, 2.0) for d in days]
    rows += [("x", "A", D0 + dt.timedelta(days=4), 50.0, 60.0)]  # after the horizon: ignored
    fc = spark.createDataFrame(rows, "item_id string, warehouse string, date date, p50 double, p90 double")
    costs = spark.createDataFrame([("x", 2.0)], "item_id string, unit_cost double")
    actuals = spark.createDataFrame([("x", "A", days[0], 5.0), ("x", "A", days[3], 1.0)],
                                    "item_id string, warehouse string, date date, units double")
    p = InventoryParams(period_days=2, horizon_periods=2, service_level=0.9, lead_time_periods=1,
                        warehouses={"B": WarehouseOverride(capacity=100.0, lead_time_periods=0)})
    pdf = build_problems(fc, p, D0, costs, actuals).toPandas().sort_values(["warehouse", "item_id", "period"])
    a = pdf[pdf.warehouse == "A"]
    assert list(a["item_id"]) == ["x", "x", "y", "y"]
    assert list(a["demand"]) == [2.0, 2.0, 0.0, 3.0]
    # x: variance per period 1 + 1 = 2, lead time 1 -> sqrt(2) x sqrt(2) = 2
    np.testing.assert_allclose(a["safety_stock"], [2.0, 2.0, 0.0, 0.0])
    assert list(a["unit_cost"]) == [2.0, 2.0, 1.0, 1.0]
    np.testing.assert_allclose(a["initial_stock"], [4.0, 4.0, 3.0, 3.0])  # 2 periods of mean demand
    np.testing.assert_allclose(a["capacity"], 4.0 * (2.0 + 1.5))
    np.testing.assert_allclose(a["budget"], 1.5 * (2.0 * 2.0 + 1.0 * 1.5))
    np.testing.assert_allclose(a["relax_penalty"], 2.0 * 1000)
    np.testing.assert_allclose(a["shortage_cost"], [4.0, 4.0, 2.0, 2.0])
    np.testing.assert_allclose(a["holding_cost"], np.array([2.0, 2.0, 1.0, 1.0]) * 0.25 * 2 / 365)
    assert list(a["actual"]) == [5.0, 1.0, 0.0, 0.0]
    b = pdf[pdf.warehouse == "B"]
    assert list(b["lead_time"]) == [0, 0] and list(b["capacity"]) == [100.0, 100.0]
    assert list(b["safety_stock"]) == [0.0, 0.0]
    assert list(a["lead_time"]) == [1] * 4 and list(a["min_fill_rate"]) == [0.9] * 4


def test_safety_factor():
    assert safety_factor(0.9) == pytest.approx(1.0)
    assert safety_factor(0.95) == pytest.approx(1.6448536 / 1.2815516, rel=1e-6)


def test_params_reject_inconsistent_conf():
    with pytest.raises(ValueError, match="lead_time_periods"):
        InventoryParams(horizon_periods=2, lead_time_periods=2)
    with pytest.raises(ValueError, match="shortage_multiple"):
        InventoryParams(shortage_multiple=1.0)

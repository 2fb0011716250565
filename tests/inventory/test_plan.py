"""Which forecast the plan uses: gold.forecasts where it has rows, seasonal naive elsewhere."""

from __future__ import annotations

import datetime as dt

import pytest

from marketlab.inventory.params import InventoryParams
from marketlab.inventory.plan import ForecastUnavailable, choose_forecast

D0 = dt.date(2021, 1, 1)
LAST = D0 + dt.timedelta(days=13)  # two weeks of demand
FC_SCHEMA = "item_id string, warehouse string, date date, p50 double, p90 double, model string, made_at timestamp"
MADE = dt.datetime(2021, 1, 15, 6, 0)


@pytest.fixture(scope="module")
def demand(spark):
    rows = [(item, "UK", D0 + dt.timedelta(days=i), float(i % 7 + 1)) for item in ("A", "B") for i in range(14)]
    return spark.createDataFrame(rows, "item_id string, warehouse string, date date, units double")


def forecast_rows(days: int, start: dt.date = LAST + dt.timedelta(days=1), made: dt.datetime = MADE):
    # One row per series and day, each series from the model that serves it (as the
    # forecast job writes it): A by the LSTM, B by its fallback.
    return [(item, "UK", start + dt.timedelta(days=k), 100.0 + k, 120.0 + k, model, made)
            for item, model in (("A", "lstm"), ("B", "seasonal_naive")) for k in range(days)]


def params(**kw) -> InventoryParams:
    return InventoryParams(period_days=7, horizon_periods=2, lead_time_periods=1, **kw)


def test_forecast_table_serves_its_days_and_seasonal_naive_the_rest(spark, demand):
    stale = forecast_rows(14, start=LAST - dt.timedelta(days=6), made=MADE - dt.timedelta(days=7))
    fc = spark.createDataFrame(forecast_rows(10) + stale, FC_SCHEMA)  # older run: ignored
    choice = choose_forecast(demand, fc, params())
    assert choice.source == "forecasts+seasonal_naive" and choice.start == LAST + dt.timedelta(days=1)
    assert "8 series-days" in choice.reason  # 2 series x (14 - 10) days
    got = choice.forecast.toPandas().sort_values(["item_id", "date"])
    assert len(got) == 2 * 14 and not got.duplicated(["item_id", "warehouse", "date"]).any()
    head = got[got.date < LAST + dt.timedelta(days=11)]
    assert list(head[head.item_id == "A"].p50) == [100.0 + k for k in range(10)]
    assert set(head.model) == {"lstm", "seasonal_naive"} and (head.p90 - head.p50 == 20.0).all()
    tail = got[got.date >= LAST + dt.timedelta(days=11)]
    # seasonal naive of days 11..14 after the cutoff = demand of the same weekday last week
    assert list(tail[tail.item_id == "A"].p50) == [4.0, 5.0, 6.0, 7.0] and set(tail.model) == {"seasonal_naive"}


def test_a_table_covering_the_horizon_is_used_alone(spark, demand):
    choice = choose_forecast(demand, spark.createDataFrame(forecast_rows(20), FC_SCHEMA), params())
    got = choice.forecast.toPandas()
    assert choice.source == "forecasts" and choice.reason == ""
    assert len(got) == 2 * 14 and got.p50.min() == 100.0  # days 15..20 of the table are past the horizon


@pytest.mark.parametrize("rows, reason", [
    (lambda: forecast_rows(14, start=LAST - dt.timedelta(days=6)), "is stale: it starts 2021-01-08, demand ends 2021-01-14"),
    (lambda: forecast_rows(14) + forecast_rows(3), "holds 6 duplicate rows per series and day"),
    (lambda: [], "is empty"),
])
def test_unusable_table_falls_back_or_fails_when_required(spark, demand, rows, reason):
    fc = spark.createDataFrame(rows(), FC_SCHEMA)
    choice = choose_forecast(demand, fc, params())
    assert choice.source == "seasonal_naive" and reason in choice.reason
    assert choice.forecast.count() == 2 * 14
    with pytest.raises(ForecastUnavailable, match=reason):
        choose_forecast(demand, fc, params(forecast_source="forecasts"))


def test_missing_table_and_forced_fallback(spark, demand):
    assert choose_forecast(demand, None, params()).reason == "table gold.forecasts does not exist yet"
    fc = spark.createDataFrame(forecast_rows(14), FC_SCHEMA)
    assert choose_forecast(demand, fc, params(forecast_source="seasonal_naive")).source == "seasonal_naive"

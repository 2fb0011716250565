"""The inventory job end to end on the real Online Retail orders (real Spark, Delta, MLflow).

No ``gold`` fixture exists yet, so daily demand is derived here from the ingested bronze
orders (sales lines of product codes, UK vs the rest as warehouses, zero-filled calendar),
from 2011-09-01 on to keep the test small.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util

import mlflow
import pytest
from pyspark.sql import functions as F

from conftest import ROOT, make_settings
from marketlab.inventory.batch import solve_frame
from marketlab.inventory.plan import backtest_problems
from marketlab.errors import BadInputError
from marketlab.runtime import JobContext
from marketlab.tables import Lake

START = dt.date(2011, 9, 1)


def job_main():
    spec = importlib.util.spec_from_file_location("inventory_job", ROOT / "jobs" / "inventory.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


def demand_daily_from_bronze(orders):
    """gold.demand_daily-shaped frame from bronze orders (test-local stand-in)."""
    sales = (orders.filter(~F.col("invoice_no").startswith("C") & (F.col("quantity") > 0) & (F.col("unit_price") > 0)
                           & F.col("stock_code").rlike("^[0-9]{5}"))
             .select(F.upper("stock_code").alias("item_id"),
                     F.when(F.col("country") == "United Kingdom", "UK").otherwise("INTL").alias("warehouse"),
                     F.to_date("invoice_date").alias("date"), "quantity")
             .filter(F.col("date") >= F.lit(START)))
    daily = sales.groupBy("item_id", "warehouse", "date").agg(F.sum("quantity").cast("double").alias("units"))
    end = daily.agg(F.max("date")).first()[0]
    first = daily.groupBy("item_id", "warehouse").agg(F.min("date").alias("first"))
    cal = first.select("item_id", "warehouse", F.explode(F.sequence("first", F.lit(end))).alias("date"))
    return cal.join(daily, ["item_id", "warehouse", "date"], "left").fillna(0.0, subset=["units"])


@pytest.fixture(scope="module")
def job_lake(spark, ingested, tmp_path_factory):
    bronze, _ = ingested
    st = make_settings(tmp_path_factory.mktemp("inventory"))
    lk = Lake(spark, st)
    lk.write(demand_daily_from_bronze(bronze.read("bronze.orders")), "gold.demand_daily")
    return lk


def ctx_for(lake: Lake, settings=None) -> JobContext:
    return JobContext("inventory", settings or lake.settings, lake.spark, Lake(lake.spark, settings or lake.settings),
                      argparse.Namespace())


def test_job_on_real_orders(job_lake):
    main = job_main()
    summary = main(ctx_for(job_lake))
    lake = Lake(job_lake.spark, job_lake.settings)
    status = lake.read("gold.inventory_status").toPandas().set_index(["scenario", "warehouse"]).sort_index()
    plan = lake.read("gold.inventory_plan")
    assert summary["forecast_source"] == "seasonal_naive"  # gold.forecasts does not exist here
    assert sorted(status.index) == [("backtest", "INTL"), ("backtest", "UK"), ("plan", "INTL"), ("plan", "UK")]
    assert set(status["status"]) <= {"optimal", "infeasible_relaxed"}
    print(status[["status", "n_items", "n_vars", "objective", "planned_fill_rate", "realized_fill_rate",
                  "realized_cycle_service", "solve_seconds"]].to_string())
    # exact figures of the real data (orders from 2011-09-01, default conf)
    assert status["n_items"].to_dict() == {("backtest", "INTL"): 925, ("backtest", "UK"): 2065,
                                           ("plan", "INTL"): 696, ("plan", "UK"): 2311}
    assert status.loc[("plan", "UK"), "n_vars"] == 2311 * (4 * 8 - 1)
    assert plan.count() == 8 * (925 + 2065 + 696 + 2311)
    expected = {("backtest", "INTL"): 2.088584e5, ("backtest", "UK"): 7.651249e5,
                ("plan", "INTL"): 1.419656e5, ("plan", "UK"): 2.733178e6}
    for key, obj in expected.items():
        assert status.loc[key, "objective"] == pytest.approx(obj, rel=1e-6)
    assert status.loc[("backtest", "UK"), "realized_fill_rate"] == pytest.approx(0.674996, abs=1e-6)
    assert status.loc[("backtest", "INTL"), "realized_fill_rate"] == pytest.approx(0.688996, abs=1e-6)

    # The map-task solve equals the driver solve of the same backtest LP (INTL: the smaller
    # one, to keep the test short; tests/inventory/test_batch.py covers many warehouses).
    params = job_lake.settings.jobs.inventory
    probs, _ = backtest_problems(lake.read("gold.demand_daily"), params)
    ref = solve_frame(probs.filter("warehouse = 'INTL'").toPandas().sort_values(["warehouse", "item_id", "period"]))
    ref = ref[ref.record == "status"].set_index("warehouse")
    for wh in ("INTL",):
        assert status.loc[("backtest", wh), "objective"] == pytest.approx(ref.loc[wh, "objective"], abs=1e-6, rel=1e-9)
        assert status.loc[("backtest", wh), "realized_fill_rate"] == pytest.approx(ref.loc[wh, "realized_fill_rate"])

    # plan: orders never violate a budget/capacity that was not relaxed, stock balances
    pl = plan.filter("scenario = 'plan'").toPandas()
    assert (pl[["order_qty", "inventory_end", "shortage"]] >= -1e-9).all().all()
    assert pl["period_start"].min() == dt.date(2011, 12, 10)

    run = mlflow.get_run(summary["run_id"])
    m = run.data.metrics
    assert m["n_warehouses"] == 2 and m["backtest_n_warehouses"] == 2
    assert m["status_optimal"] + m["status_infeasible_relaxed"] == 2
    assert 0.0 < m["backtest_realized_fill_rate"] <= 1.0
    assert run.data.tags["inventory.forecast_source"] == "seasonal_naive"
    assert "read.gold.demand_daily" in run.data.params and "wrote.gold.inventory_plan" in run.data.params


def test_forecast_required_but_missing_is_a_job_error(job_lake, tmp_path):
    main = job_main()
    st = job_lake.settings.model_copy(deep=True)
    st.jobs.inventory.forecast_source = "forecasts"
    with pytest.raises(BadInputError, match="forecast_source=forecasts but table gold.forecasts does not exist"):
        main(ctx_for(job_lake, st))

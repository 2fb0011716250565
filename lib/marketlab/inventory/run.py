"""The inventory stage's one entry point: forecast -> LPs -> solve -> gold plan and status.

:func:`run` reads and writes only through :class:`~marketlab.tables.Lake`, with the table
names of :class:`~marketlab.inventory.params.InventoryParams`; the job logs its
:class:`InventoryResult` to MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.inventory.batch import split_results
from marketlab.inventory.params import InventoryParams
from marketlab.inventory.plan import backtest_problems, choose_forecast, solve_scenario
from marketlab.inventory.prepare import build_problems
from marketlab.inventory.report import realized_cycle_service, summarize_status
from marketlab.tables import Lake


@dataclass
class InventoryResult:
    """What one inventory run wrote and measured.

    Attributes:
        forecast_source: Forecast the plan used (``forecasts``, ``forecasts+seasonal_naive``,
            ``seasonal_naive``).
        fallback_reason: Why the forecast table was not (fully) used ("" when it was).
        metrics: Solver and service-level metrics (``backtest_`` prefix for the backtest).
        status: The status table as written (one row per scenario x warehouse).
        versions: Catalog name -> Delta version written.
    """

    forecast_source: str
    fallback_reason: str
    metrics: dict[str, float]
    status: pd.DataFrame
    versions: dict[str, int]


def unit_costs(item_features: DataFrame, cost_ratio: float, item_col: str = C.ITEM_ID,
               price_col: str = "price_median") -> DataFrame:
    """``item_id``, ``unit_cost`` = ``cost_ratio`` x the item's median selling price."""
    return item_features.select(item_col, (F.col(price_col) * cost_ratio).alias("unit_cost"))


def run(lake: Lake, params: InventoryParams) -> InventoryResult:
    """Plan every warehouse (and, with ``params.backtest``, score a plan made in the past).

    Raises:
        marketlab.inventory.plan.ForecastUnavailable: ``forecast_source`` is ``forecasts``
            and the forecast table cannot serve the horizon.
    """
    lake.spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(params.arrow_batch_rows))
    demand = lake.read(params.demand_table)
    forecasts = lake.read(params.forecast_table) if lake.exists(params.forecast_table) else None
    # Without item prices every item gets default_unit_cost (build_problems).
    costs = (unit_costs(lake.read(params.item_features_table), params.cost_ratio)
             if lake.exists(params.item_features_table) else None)
    choice = choose_forecast(demand, forecasts, params)
    parts = [solve_scenario(build_problems(choice.forecast, params, choice.start, costs), params, "plan", choice.start)]
    if params.backtest:
        bt, bt_start = backtest_problems(demand, params, costs)
        parts.append(solve_scenario(bt, params, "backtest", bt_start))
    results = parts[0].unionByName(parts[-1]) if len(parts) > 1 else parts[0]
    results = results.persist()  # solved once, split into two tables
    try:
        plan, status = split_results(results, extra=("scenario",))
        source = F.when(F.col("scenario") == "backtest", "seasonal_naive").otherwise(choice.source)
        versions = {params.plan_table: lake.write(plan.withColumn("forecast_source", source), params.plan_table),
                    params.status_table: lake.write(status.withColumn("forecast_source", source), params.status_table)}
    finally:
        results.unpersist()
    st = lake.read(params.status_table).toPandas()
    metrics = summarize_status(st[st.scenario == "plan"])
    if params.backtest:
        metrics.update(summarize_status(st[st.scenario == "backtest"], "backtest_"))
        bt_plan = lake.read(params.plan_table).filter("scenario = 'backtest'") \
            .select("actual_demand", "realized_shortage").toPandas()
        metrics["backtest_realized_cycle_service"] = realized_cycle_service(bt_plan)
    return InventoryResult(choice.source, choice.reason, metrics, st, versions)

"""From demand and forecasts to the long LP problem frame (Spark, no per-group Python).

* :func:`seasonal_naive_forecast` is the fallback forecast while ``gold.forecasts`` does
  not exist (or does not cover the horizon): P50 = same position in the last season, P90 =
  P50 + the 90% quantile of the series' seasonal-naive errors, widened by sqrt(seasons
  ahead) as the seasonal-naive error variance grows with each season.
* :func:`build_problems` buckets a daily P50/P90 forecast into planning periods and adds
  costs, safety stock, initial stock, capacity, budget and lead time per warehouse (one
  row per warehouse x item x period, see :data:`marketlab.inventory.batch.PROBLEM_COLUMNS`).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from scipy.stats import norm

from marketlab import constants as C
from marketlab.inventory.batch import PROBLEM_COLUMNS
from marketlab.inventory.params import InventoryParams

SEASONAL_NAIVE = "seasonal_naive"


def last_date(df: DataFrame, date_col: str = C.DATE) -> dt.date | None:
    """Latest date of a frame (None when empty)."""
    return df.agg(F.max(date_col)).first()[0]


def seasonal_naive_forecast(
    demand: DataFrame,
    horizon_days: int,
    cutoff: dt.date | None = None,
    season_days: int = 7,
    residual_seasons: int = 8,
    item_col: str = C.ITEM_ID,
    warehouse_col: str = C.WAREHOUSE,
    date_col: str = C.DATE,
    units_col: str = "units",
) -> DataFrame:
    """Seasonal-naive P50/P90 per item x warehouse for the days after ``cutoff``.

    Args:
        demand: Daily demand (zero-filled calendar per series, as gold.demand_daily).
        horizon_days: Days to forecast (cutoff + 1 .. cutoff + horizon_days).
        cutoff: Last day of history used (default: the frame's last date). Rows after it
            are ignored, so a backtest can forecast a period whose actuals are known.
        season_days: Season length (7: same weekday last week).
        residual_seasons: Seasons of history whose naive errors set the P90.
        item_col: Item column.
        warehouse_col: Warehouse column.
        date_col: Date column.
        units_col: Demand column.

    Returns:
        item_id, warehouse, date, p50, p90, model (``seasonal_naive``), with the same
        item/warehouse/date column names as the input; one row per series and day.
    """
    if cutoff is None:
        cutoff = last_date(demand, date_col)
    spark = demand.sparkSession
    keys = [item_col, warehouse_col]
    hist = demand.select(*keys, date_col, F.col(units_col).cast("double").alias("_y")) \
        .filter(F.col(date_col) <= F.lit(cutoff))
    series = hist.select(*keys).distinct()
    lastseason = (hist.filter(F.col(date_col) > F.date_sub(F.lit(cutoff), season_days))
                  .select(*keys, (F.datediff(F.col(date_col), F.lit(cutoff)) + season_days).alias("_pos"), "_y"))
    steps = spark.range(1, horizon_days + 1).select(
        F.col("id").cast("int").alias("_k"),
        (((F.col("id") - 1) % season_days) + 1).cast("int").alias("_pos"),
        F.ceil(F.col("id") / season_days).cast("double").alias("_rounds"))
    a = hist.filter(F.col(date_col) > F.date_sub(F.lit(cutoff), residual_seasons * season_days)).alias("a")
    b = hist.select(*keys, F.date_add(F.col(date_col), season_days).alias(date_col), F.col("_y").alias("_y0"))
    # A series without a value one season back (first weeks after its first sale) compares
    # with 0: the zero-filled calendar starts at the first sale.
    err = a.join(b, [*keys, date_col], "left").select(*keys, (F.col("_y") - F.coalesce("_y0", F.lit(0.0))).alias("_e"))
    q90 = err.groupBy(*keys).agg(F.percentile("_e", 0.9).alias("_q"))
    return (series.crossJoin(steps)
            .join(lastseason, [*keys, "_pos"], "left")
            .join(q90, keys, "left")
            .select(
                *keys,
                F.date_add(F.lit(cutoff), F.col("_k")).alias(date_col),
                F.greatest(F.coalesce("_y", F.lit(0.0)), F.lit(0.0)).alias("p50"),
                (F.greatest(F.coalesce("_y", F.lit(0.0)), F.lit(0.0))
                 + F.greatest(F.coalesce("_q", F.lit(0.0)), F.lit(0.0)) * F.sqrt("_rounds")).alias("p90"),
                F.lit(SEASONAL_NAIVE).alias("model")))


def safety_factor(service_level: float) -> float:
    """z(service_level) / z(0.9): rescales a P90 - P50 spread to the target quantile."""
    return float(norm.ppf(service_level) / norm.ppf(0.9))


def build_problems(
    forecast: DataFrame,
    params: InventoryParams,
    start: dt.date,
    item_costs: DataFrame | None = None,
    actuals: DataFrame | None = None,
    item_col: str = C.ITEM_ID,
    warehouse_col: str = C.WAREHOUSE,
    date_col: str = C.DATE,
    units_col: str = "units",
) -> DataFrame:
    """Long LP problem frame: one row per warehouse x item x period.

    Args:
        forecast: Daily item x warehouse forecast with ``p50`` and ``p90``.
        params: Inventory parameters (horizon, costs, capacities, ...).
        start: First day of period 1; days before it or after the horizon are ignored.
        item_costs: Optional item_id, unit_cost; items missing from it cost
            ``params.default_unit_cost``.
        actuals: Optional realised daily demand (same keys, ``units_col``) for a backtest;
            items without a row there had zero demand.
        item_col: Item column.
        warehouse_col: Warehouse column.
        date_col: Date column.
        units_col: Demand column of ``actuals``.

    Returns:
        Columns :data:`PROBLEM_COLUMNS` (item and warehouse renamed to ``item_id`` and
        ``warehouse``); ``actual`` is NaN without ``actuals``. Items whose P50 over the
        horizon is <= ``params.min_items_demand`` are left out (they would get an all-zero plan).
    """
    Tn, pd_ = params.horizon_periods, params.period_days
    spark = forecast.sparkSession

    def bucket(df: DataFrame) -> DataFrame:
        return (df.withColumn("period", (F.floor(F.datediff(F.col(date_col), F.lit(start)) / pd_) + 1).cast("int"))
                .filter(F.col("period").between(1, Tn)))

    agg = (bucket(forecast).groupBy(F.col(item_col).alias("item_id"), F.col(warehouse_col).alias("warehouse"), "period")
           .agg(F.sum("p50").alias("demand"),
                F.sum(F.pow(F.greatest(F.col("p90") - F.col("p50"), F.lit(0.0)), 2)).alias("_var")))
    items = (agg.groupBy("item_id", "warehouse").agg(F.sum("demand").alias("_total"))
             .filter(F.col("_total") > params.min_items_demand))
    periods = spark.range(1, Tn + 1).select(F.col("id").cast("int").alias("period"))
    grid = (items.crossJoin(periods).join(agg, ["item_id", "warehouse", "period"], "left")
            .fillna(0.0, subset=["demand", "_var"]))

    if item_costs is not None:
        grid = grid.join(item_costs.select(F.col(item_col).alias("item_id"), F.col("unit_cost").alias("_c")),
                         "item_id", "left")
    else:
        grid = grid.withColumn("_c", F.lit(None).cast("double"))
    c = F.coalesce(F.col("_c"), F.lit(params.default_unit_cost))

    over_rows = [(w, o.capacity, o.budget, o.lead_time_periods, o.min_fill_rate) for w, o in params.warehouses.items()]
    over = spark.createDataFrame(
        over_rows, "warehouse string, _cap_o double, _bud_o double, _lt_o int, _fr_o double")
    grid = grid.join(F.broadcast(over), "warehouse", "left")

    lt = F.coalesce(F.col("_lt_o"), F.lit(params.lead_time_periods))
    mean = F.col("_total") / Tn
    grid = grid.select(
        "warehouse", "item_id", "period", "demand",
        (F.lit(safety_factor(params.service_level)) * F.sqrt(lt + 1) * F.sqrt("_var")).alias("safety_stock"),
        (c * params.holding_multiple).alias("holding_cost"), c.alias("unit_cost"),
        (c * params.shortage_multiple).alias("shortage_cost"), (c * params.safety_multiple).alias("safety_cost"),
        (c * params.terminal_value_ratio).alias("terminal_value"),
        F.lit(params.volume_per_unit).alias("volume"), (mean * params.initial_cover_periods).alias("initial_stock"),
        lt.cast("int").alias("lead_time"), F.coalesce("_fr_o", F.lit(params.min_fill_rate)).alias("min_fill_rate"),
        "_cap_o", "_bud_o", mean.alias("_mean"))

    # Warehouse-level defaults come from the warehouse's own mean per-period P50 demand.
    first = F.col("period") == 1
    wh = grid.groupBy("warehouse").agg(
        F.sum(F.when(first, F.col("volume") * F.col("_mean"))).alias("_vol"),
        F.sum(F.when(first, F.col("unit_cost") * F.col("_mean"))).alias("_spend"),
        F.max("unit_cost").alias("_cmax"))
    grid = grid.join(wh, "warehouse").select(
        "*",
        F.coalesce("_cap_o", F.col("_vol") * params.capacity_cover).alias("capacity"),
        F.coalesce("_bud_o", F.col("_spend") * params.budget_cover).alias("budget"),
        (F.col("_cmax") * params.relax_penalty).alias("relax_penalty"))

    if actuals is not None:
        act = (bucket(actuals).groupBy(F.col(item_col).alias("item_id"), F.col(warehouse_col).alias("warehouse"), "period")
               .agg(F.sum(units_col).cast("double").alias("actual")))
        grid = grid.join(act, ["item_id", "warehouse", "period"], "left").fillna(0.0, subset=["actual"])
    else:
        grid = grid.withColumn("actual", F.lit(float("nan")))
    return grid.select(*PROBLEM_COLUMNS)


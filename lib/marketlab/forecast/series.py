"""Daily demand series made safe to model: complete calendars, per-series status and flags.

Everything here is Spark (one row per series x day stays on the executors). A series is
``item_id x warehouse``. Bad input never crashes the job: each series gets a status that
decides its model (LSTM or a fallback) and flags that travel to the forecast table.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from marketlab.constants import DATE, ITEM_ID, WAREHOUSE

UNITS = "units"
SERIES_ID = "series_id"
STATUS = "status"
FLAGS = "flags"

# Series status at a cutoff -> model used for it.
OK = "ok"  # LSTM
TOO_SHORT = "too_short"  # fewer than `history_needed` days: seasonal naive (or mean) fallback
ALL_ZERO = "all_zero"  # no sale in the history: zero forecast
NOT_SELECTED = "not_selected"  # beyond `max_series`: ETS fallback


def complete_calendar(
    demand: DataFrame,
    end: dt.date | None = None,
    item_col: str = ITEM_ID,
    warehouse_col: str = WAREHOUSE,
    date_col: str = DATE,
    units_col: str = UNITS,
) -> DataFrame:
    """One row per series and day from the series' first sale to ``end``, gaps zero-filled.

    ``gold.demand_daily`` promises a zero-filled calendar; this does not rely on it. Missing
    days, null units and negative units are repaired and counted per series, never dropped
    silently.

    Args:
        demand: Rows of ``item, warehouse, date, units``.
        end: Last day of every series (default: the last date in ``demand``), so a series
            whose item stopped selling gets trailing zeros.
        item_col: Item column.
        warehouse_col: Warehouse column.
        date_col: Date column.
        units_col: Units column.

    Returns:
        ``item_id, warehouse, series_id (long), date, units (double >= 0), n_gap_days,
        n_negative`` (the two counts are per series, repeated on its rows). Duplicate
        ``(series, date)`` rows are summed.
    """
    base = demand.select(
        F.col(item_col).cast("string").alias(ITEM_ID),
        F.col(warehouse_col).cast("string").alias(WAREHOUSE),
        F.col(date_col).cast("date").alias(DATE),
        F.col(units_col).cast("double").alias(UNITS),
    ).where(F.col(ITEM_ID).isNotNull() & F.col(WAREHOUSE).isNotNull() & F.col(DATE).isNotNull())
    if end is None:
        end = base.agg(F.max(DATE)).first()[0]
    keys = [ITEM_ID, WAREHOUSE]
    daily = base.groupBy(*keys, DATE).agg(
        F.sum(F.greatest(F.coalesce(F.col(UNITS), F.lit(0.0)), F.lit(0.0))).alias(UNITS),
        F.sum((F.col(UNITS) < 0).cast("int")).alias("_neg"),
        F.sum(F.col(UNITS).isNotNull().cast("int")).alias("_present"),
    )
    spans = daily.where(F.col(DATE) <= F.lit(end)).groupBy(*keys).agg(F.min(DATE).alias("_first"))
    calendar = spans.select(*keys, F.explode(F.sequence(F.col("_first"), F.lit(end))).alias(DATE))
    full = calendar.join(daily, [*keys, DATE], "left")
    w = Window.partitionBy(*keys)
    return full.select(
        *keys,
        F.xxhash64(*keys).alias(SERIES_ID),
        DATE,
        F.coalesce(F.col(UNITS), F.lit(0.0)).alias(UNITS),
        F.sum(F.when(F.coalesce(F.col("_present"), F.lit(0)) == 0, 1).otherwise(0)).over(w).alias("n_gap_days"),
        F.sum(F.coalesce(F.col("_neg"), F.lit(0))).over(w).alias("n_negative"),
    )


def series_profile(
    series: DataFrame,
    cutoff: dt.date,
    history_needed: int,
    max_series: int | None = None,
) -> DataFrame:
    """Status of every series at ``cutoff`` (history = days up to and including it).

    Args:
        series: Output of :func:`complete_calendar`.
        cutoff: Last day of history.
        history_needed: Days of history the LSTM needs.
        max_series: Keep the LSTM for the top series by history volume only.

    Returns:
        One row per series: ``item_id, warehouse, series_id, n_days, total_units, scale
        (mean daily units of the history: fitted on history only), zero_share, status,
        flags (array<string>)``. Series with no day up to the cutoff do not appear.
    """
    hist = series.where(F.col(DATE) <= F.lit(cutoff))
    prof = hist.groupBy(ITEM_ID, WAREHOUSE, SERIES_ID).agg(
        F.count("*").alias("n_days"),
        F.sum(UNITS).alias("total_units"),
        F.avg(UNITS).alias("scale"),
        F.avg((F.col(UNITS) == 0).cast("double")).alias("zero_share"),
        F.max("n_gap_days").alias("n_gap_days"),
        F.max("n_negative").alias("n_negative"),
    )
    status = (
        F.when(F.col("total_units") <= 0, F.lit(ALL_ZERO))
        .when(F.col("n_days") < history_needed, F.lit(TOO_SHORT))
        .otherwise(F.lit(OK))
    )
    prof = prof.withColumn(STATUS, status)
    if max_series is not None:
        # Rank on one row per series (small), so a single-partition window is cheap.
        rank = F.row_number().over(Window.partitionBy(STATUS).orderBy(F.desc("total_units"), SERIES_ID))
        prof = prof.withColumn(STATUS, F.when((F.col(STATUS) == OK) & (rank > max_series), F.lit(NOT_SELECTED))
                               .otherwise(F.col(STATUS)))
    flags = F.array_compact(F.array(
        F.when(F.col("n_gap_days") > 0, F.lit("gaps_filled")),
        F.when(F.col("n_negative") > 0, F.lit("negative_clipped")),
        F.when(F.col(STATUS) != OK, F.col(STATUS)),
    ))
    return prof.withColumn(FLAGS, flags)

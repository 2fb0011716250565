"""The inventory planning flow the job wires: pick a forecast, build LPs, solve, backtest."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.errors import BadInputError
from marketlab.inventory.batch import solve_distributed
from marketlab.inventory.params import InventoryParams
from marketlab.inventory.prepare import SEASONAL_NAIVE, build_problems, last_date, seasonal_naive_forecast

log = logging.getLogger(__name__)


class ForecastUnavailable(BadInputError):
    """``forecast_source: forecasts`` but the forecast table cannot serve the horizon."""


@dataclass
class ForecastChoice:
    """The daily forecast the plan uses and where it came from."""

    forecast: DataFrame
    start: dt.date
    source: str  # "forecasts" or "seasonal_naive"
    reason: str


def choose_forecast(demand: DataFrame, forecasts: DataFrame | None, params: InventoryParams,
                    date_col: str = C.DATE, item_col: str = C.ITEM_ID, warehouse_col: str = C.WAREHOUSE) -> ForecastChoice:
    """The daily P50/P90 the plan uses: ``gold.forecasts`` where it has a row, else seasonal naive.

    ``gold.forecasts`` holds, at its latest ``made_at``, one row per series and day from
    the model that serves that series (the LSTM, or the flagged fallback of a short, zero
    or unselected series), over the forecast job's horizon, which is usually shorter than
    the plan's ``horizon_periods x period_days``. The plan takes the table's row for each
    (item, warehouse, day) it holds and the seasonal-naive forecast of gold.demand_daily
    for the rest (days beyond its horizon, series it lacks): source ``forecasts`` when
    the table covers every series and day of the horizon, ``forecasts+seasonal_naive``
    when it is extended, ``seasonal_naive`` when the table cannot be used.

    The table is used only when it is fresh (its first day is the day after the last day
    of demand) and has one row per key.

    Raises:
        ForecastUnavailable: ``forecast_source`` is ``forecasts`` and the table is missing,
            empty, stale or holds several rows for one series and day.
    """
    days = params.horizon_periods * params.period_days
    cutoff = last_date(demand, date_col)
    start = cutoff + dt.timedelta(days=1)
    naive = seasonal_naive_forecast(demand, days, cutoff, params.season_days, params.residual_weeks, date_col=date_col)
    reason = "forecast_source=seasonal_naive"
    if params.forecast_source != SEASONAL_NAIVE:
        keys = [item_col, warehouse_col, date_col]
        if forecasts is None:
            reason = f"table {params.forecast_table} does not exist yet"
        else:
            if "made_at" in forecasts.columns:
                latest = forecasts.agg(F.max("made_at")).first()[0]
                forecasts = forecasts.filter(F.col("made_at") == F.lit(latest))
            model = F.col("model") if "model" in forecasts.columns else F.lit("forecasts")
            fc = forecasts.select(*keys, "p50", "p90", model.alias("model"))
            stats = fc.agg(F.min(date_col).alias("first"), F.count(F.lit(1)).alias("rows"),
                           F.countDistinct(*keys).alias("keys")).first()
            if stats["first"] is None:
                reason = f"{params.forecast_table} is empty"
            elif stats["first"] != start:
                reason = (f"{params.forecast_table} is stale: it starts {stats['first']}, "
                          f"demand ends {cutoff}")
            elif stats["rows"] != stats["keys"]:
                reason = (f"{params.forecast_table} holds {stats['rows'] - stats['keys']} duplicate rows "
                          f"per series and day at its latest made_at")
            else:
                fc = fc.filter(F.col(date_col) < F.lit(start + dt.timedelta(days=days)))
                rest = naive.join(fc.select(*keys), keys, "left_anti")
                n_rest = rest.count()
                source = "forecasts" if n_rest == 0 else "forecasts+seasonal_naive"
                note = "" if n_rest == 0 else (f"{n_rest} series-days beyond {params.forecast_table}'s horizon "
                                               f"or series filled by the seasonal-naive forecast")
                return ForecastChoice(fc.unionByName(rest.select(*keys, "p50", "p90", "model")), start, source, note)
        if params.forecast_source == "forecasts":
            raise ForecastUnavailable(f"inventory: forecast_source=forecasts but {reason}")
        log.warning("inventory: %s; using the seasonal-naive forecast from %s", reason, params.demand_table)
    return ForecastChoice(naive, start, SEASONAL_NAIVE, reason)


def backtest_problems(demand: DataFrame, params: InventoryParams, item_costs: DataFrame | None = None,
                      date_col: str = C.DATE) -> tuple[DataFrame, dt.date]:
    """LPs planned from history up to ``last date - horizon`` with the realised demand after it.

    The backtest always uses the seasonal-naive forecast: the forecast table holds future
    days only, whose demand is unknown.

    Returns:
        The problem frame (``actual`` filled) and the first day of its period 1.
    """
    days = params.horizon_periods * params.period_days
    cutoff = last_date(demand, date_col) - dt.timedelta(days=days)
    fc = seasonal_naive_forecast(demand, days, cutoff, params.season_days, params.residual_weeks, date_col=date_col)
    start = cutoff + dt.timedelta(days=1)
    return build_problems(fc, params, start, item_costs, actuals=demand, date_col=date_col), start


def solve_scenario(problems: DataFrame, params: InventoryParams, scenario: str, start: dt.date) -> DataFrame:
    """Solve a problem frame in map tasks; tag records with the scenario and period dates."""
    res = solve_distributed(problems, params.partitions, params.time_limit_s)
    return res.select(F.lit(scenario).alias("scenario"), "*",
                      F.date_add(F.lit(start), (F.col("period") - 1) * params.period_days).alias("period_start"))

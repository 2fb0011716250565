"""The inventory planning flow the job wires: pick a forecast, build LPs, solve, backtest."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.inventory.batch import solve_distributed
from marketlab.inventory.params import InventoryParams
from marketlab.inventory.prepare import SEASONAL_NAIVE, build_problems, last_date, seasonal_naive_forecast

log = logging.getLogger(__name__)


class ForecastUnavailable(ValueError):
    """``forecast_source: forecasts`` but the forecast table cannot serve the horizon."""


@dataclass
class ForecastChoice:
    """The daily forecast the plan uses and where it came from."""

    forecast: DataFrame
    start: dt.date
    source: str  # "forecasts" or "seasonal_naive"
    reason: str


def choose_forecast(demand: DataFrame, forecasts: DataFrame | None, params: InventoryParams,
                    date_col: str = C.DATE) -> ForecastChoice:
    """Use ``gold.forecasts`` when it covers the horizon, else the seasonal-naive fallback.

    The forecast table is used from its first date; it must reach ``horizon_periods x
    period_days`` days and hold a single model at its latest ``made_at``.

    Raises:
        ForecastUnavailable: ``forecast_source`` is ``forecasts`` and the table is missing,
            holds several models or does not cover the horizon.
    """
    days = params.horizon_periods * params.period_days
    reason = "forecast_source=seasonal_naive"
    if params.forecast_source != SEASONAL_NAIVE:
        reason = ""
        if forecasts is None:
            reason = f"table {params.forecast_table} does not exist yet"
        else:
            if "made_at" in forecasts.columns:
                latest = forecasts.agg(F.max("made_at")).first()[0]
                forecasts = forecasts.filter(F.col("made_at") == F.lit(latest))
            models = [r[0] for r in forecasts.select("model").distinct().collect()] if "model" in forecasts.columns else []
            span = forecasts.agg(F.min(date_col), F.max(date_col)).first()
            if len(models) > 1:
                reason = f"{params.forecast_table} holds several models at its latest made_at: {sorted(models)}"
            elif span[0] is None:
                reason = f"{params.forecast_table} is empty"
            elif (span[1] - span[0]).days + 1 < days:
                reason = (f"{params.forecast_table} covers {span[0]}..{span[1]}, the horizon needs {days} days "
                          f"({params.horizon_periods} x {params.period_days})")
            else:
                return ForecastChoice(forecasts, span[0], "forecasts", "")
        if params.forecast_source == "forecasts":
            raise ForecastUnavailable(reason)
        log.warning("inventory: %s; using the seasonal-naive forecast from %s", reason, params.demand_table)
    cutoff = last_date(demand, date_col)
    fc = seasonal_naive_forecast(demand, days, cutoff, params.season_days, params.residual_weeks, date_col=date_col)
    return ForecastChoice(fc, cutoff + dt.timedelta(days=1), SEASONAL_NAIVE, reason)


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

"""Baselines and fallbacks, fitted per series in Spark map tasks.

* ``seasonal_naive``: the last ``season`` days repeated; P90 adds the empirical 90 %
  quantile of the seasonal-naive errors seen in the history (distribution-free, which
  suits intermittent demand better than a normal interval).
* ``ets``: statsforecast ETS with a fixed specification (``ets_model``, default
  ``ANA``: additive error, no trend, additive weekly season); ``auto_ets`` lets
  ``AutoETS`` choose the specification per series.
* ``theta``: the standard Theta method (statsforecast ``Theta``); ``auto_theta`` chooses
  among the four Theta variants per series (``AutoTheta``).
  For these four, P50 = the point forecast, P90 = the upper bound of the 80 % interval.
* ``seasonal_es``: seasonal exponential smoothing with optimised smoothing
  (``SeasonalExponentialSmoothingOptimized``); P90 adds the empirical 90 % quantile of
  its in-sample one-step errors, as seasonal naive does.
* ``mean`` (history shorter than a season) and ``zero`` (no sale yet): fallbacks.

Why fixed ETS and plain Theta by default: on 300 of the real data's LSTM series (last
backtest cutoff) ETS(A,N,A) reached MASE 0.952 vs AutoETS 0.973 at 1/8 of the time, and
Theta 0.994 vs AutoTheta 0.995 at 1/5.5 (``bench/forecast_baselines.py``); the per-series
search cost two thirds of the forecast job and did not choose better models there.

A model that fails on a series (statsforecast raises on some degenerate inputs) is
replaced by seasonal naive for that series; ``model_used`` says which model produced a row.
"""

from __future__ import annotations

import logging
import warnings
from typing import Iterable

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

FORECAST_COLUMNS = ["series_id", "cutoff", "date", "model", "model_used", "p50", "p90", "mase_scale"]
FORECAST_SCHEMA = ("series_id long, cutoff date, date date, model string, model_used string, p50 double, p90 double, "
                   "mase_scale double")


def seasonal_naive(y: np.ndarray, h: int, season: int) -> tuple[np.ndarray, np.ndarray]:
    """P50/P90 of the seasonal naive forecast (``len(y) >= season``)."""
    reps = int(np.ceil(h / season))
    p50 = np.tile(y[-season:], reps)[:h]
    resid = y[season:] - y[:-season]
    up = float(np.quantile(resid, 0.9)) if len(resid) >= season else float(np.std(y) * 1.2816)
    return p50, p50 + max(up, 0.0)


def mase_scale(y: np.ndarray, season: int) -> float:
    """Mean absolute seasonal-naive error in the history (MASE denominator; nan if too short)."""
    if len(y) <= season:
        return float("nan")
    return float(np.mean(np.abs(y[season:] - y[:-season])))


STATS_MODELS = ("ets", "auto_ets", "theta", "auto_theta", "seasonal_es")


def _statsforecast(kind: str, y: np.ndarray, h: int, season: int, ets_model: str = "ANA") -> tuple[np.ndarray, np.ndarray]:
    from statsforecast import models as sm

    y = y.astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "seasonal_es":
            out = sm.SeasonalExponentialSmoothingOptimized(season_length=season).forecast(y=y, h=h, fitted=True)
            p50 = np.asarray(out["mean"], float)
            resid = y - np.asarray(out["fitted"], float)
            resid = resid[np.isfinite(resid)]
            up = float(np.quantile(resid, 0.9)) if len(resid) >= season else float(np.std(y) * 1.2816)
            p90 = p50 + max(up, 0.0)
        else:
            model = {"ets": lambda: sm.AutoETS(season_length=season, model=ets_model),
                     "auto_ets": lambda: sm.AutoETS(season_length=season),
                     "theta": lambda: sm.Theta(season_length=season),
                     "auto_theta": lambda: sm.AutoTheta(season_length=season)}[kind]()
            out = model.forecast(y=y, h=h, level=[80])
            p50, p90 = np.asarray(out["mean"], float), np.asarray(out["hi-80"], float)
    if not (np.all(np.isfinite(p50)) and np.all(np.isfinite(p90))):
        raise FloatingPointError(f"{kind} produced non-finite forecasts")
    return p50, p90


def forecast_one(kind: str, y: np.ndarray, h: int, season: int, ets_model: str = "ANA") -> tuple[np.ndarray, np.ndarray, str]:
    """Forecast one series with ``kind``, falling back where the history does not allow it.

    Args:
        kind: ``seasonal_naive`` or one of :data:`STATS_MODELS`.
        y: History.
        h: Days ahead.
        season: Seasonal period.
        ets_model: ETS specification of ``ets`` (statsforecast notation, e.g. ``ANA``).

    Returns:
        ``p50, p90`` (clipped at 0, P90 >= P50) and the model actually used.
    """
    used = kind
    if len(y) == 0 or not np.any(y > 0):
        used = "zero"
    elif len(y) < max(season, 2) or (kind in STATS_MODELS and len(y) < 2 * season + 2):
        used = "mean" if len(y) < season else "seasonal_naive"
    if used == "zero":
        p50 = p90 = np.zeros(h)
    elif used == "mean":
        p50, p90 = np.full(h, y.mean()), np.full(h, np.quantile(y, 0.9))
    elif used == "seasonal_naive":
        p50, p90 = seasonal_naive(y, h, season)
    else:
        try:
            p50, p90 = _statsforecast(used, y, h, season, ets_model)
        except Exception as exc:  # degenerate series: keep the job going, say which model was used
            log.debug("%s failed (%s); seasonal naive instead", used, exc)
            p50, p90 = seasonal_naive(y, h, season)
            used = "seasonal_naive"
    p50 = np.maximum(p50, 0.0)
    return p50, np.maximum(p90, p50), used


def forecast_series(
    frame: pd.DataFrame,
    cutoffs: Iterable,
    models: Iterable[str],
    horizon: int,
    season: int,
    ets_model: str = "ANA",
) -> pd.DataFrame:
    """Forecasts of one or more series at each cutoff by each model (pandas, per task).

    Args:
        frame: ``series_id, date, units`` (complete calendar per series).
        cutoffs: Forecast origins (``datetime.date``); history = days <= cutoff.
        models: Model names (``seasonal_naive`` or :data:`STATS_MODELS`).
        horizon: Days ahead.
        season: Seasonal period.
        ets_model: ETS specification of ``ets``.

    Returns:
        Rows of :data:`FORECAST_COLUMNS`; ``model`` is the model asked for, ``model_used``
        the one that produced the row (a fallback where the history did not allow ``model``).
    """
    out = []
    cutoffs, models = list(cutoffs), list(models)
    frame = frame.sort_values(["series_id", "date"], kind="stable")
    for sid, g in frame.groupby("series_id", sort=False):
        dates = pd.to_datetime(g["date"]).dt.date.to_numpy()
        units = g["units"].to_numpy(np.float64)
        for c in cutoffs:
            y = units[dates <= c]
            scale = mase_scale(y, season)
            fdates = pd.date_range(pd.Timestamp(c) + pd.Timedelta(days=1), periods=horizon, freq="D").date
            for kind in models:
                p50, p90, used = forecast_one(kind, y, horizon, season, ets_model)
                out.append(pd.DataFrame({"series_id": sid, "cutoff": c, "date": fdates, "model": kind,
                                         "model_used": used, "p50": p50, "p90": p90, "mase_scale": scale}))
    if not out:
        return pd.DataFrame({c: [] for c in FORECAST_COLUMNS})
    return pd.concat(out, ignore_index=True)[FORECAST_COLUMNS]

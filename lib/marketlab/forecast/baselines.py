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


class ForecastRows:
    """Forecast rows collected block by block (one block = one series x cutoff x model).

    One DataFrame is built at the end: a DataFrame per block cost more than the seasonal
    naive and seasonal ES fits themselves (~2 ms per series, most of the fallback
    forecasts of the thousands of series the LSTM does not serve).
    """

    def __init__(self, horizon: int) -> None:
        self.horizon = horizon
        self._steps = np.arange(1, horizon + 1).astype("timedelta64[D]")
        self._meta: list[tuple] = []
        self._p50: list[np.ndarray] = []
        self._p90: list[np.ndarray] = []

    def add(self, series_id, cutoff: np.datetime64, model: str, used: str, p50: np.ndarray, p90: np.ndarray,
            scale: float) -> None:
        """One block: ``horizon`` days after ``cutoff`` (a ``datetime64[D]``)."""
        self._meta.append((series_id, cutoff, model, used, scale))
        self._p50.append(p50)
        self._p90.append(p90)

    def frame(self) -> pd.DataFrame:
        """Rows of :data:`FORECAST_COLUMNS` (dates as ``datetime.date``, as Spark's date type wants)."""
        if not self._meta:
            return pd.DataFrame({c: [] for c in FORECAST_COLUMNS})
        h = self.horizon
        sid, cut, model, used, scale = (list(c) for c in zip(*self._meta))
        cut = np.array(cut, dtype="datetime64[D]")
        dates = (cut[:, None] + self._steps[None, :]).ravel()
        return pd.DataFrame({
            "series_id": np.repeat(np.array(sid), h), "cutoff": np.repeat(cut, h).astype(object),
            "date": dates.astype(object), "model": np.repeat(np.array(model, dtype=object), h),
            "model_used": np.repeat(np.array(used, dtype=object), h),
            "p50": np.concatenate(self._p50).astype(np.float64), "p90": np.concatenate(self._p90).astype(np.float64),
            "mase_scale": np.repeat(np.array(scale, dtype=np.float64), h),
        })[FORECAST_COLUMNS]


def series_blocks(frame: pd.DataFrame, id_col: str = "series_id", date_col: str = "date"):
    """``(series_id, start, stop)`` of each series in ``frame`` sorted by id and date, and its days.

    Returns:
        ``(frame sorted, days as datetime64[D], list of (series_id, start, stop))``.
    """
    frame = frame.sort_values([id_col, date_col], kind="stable").reset_index(drop=True)
    days = pd.to_datetime(frame[date_col]).to_numpy("datetime64[D]")
    ids = frame[id_col].to_numpy()
    if len(ids) == 0:
        return frame, days, []
    cuts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts, stops = np.r_[0, cuts], np.r_[cuts, len(ids)]
    return frame, days, [(ids[a], int(a), int(b)) for a, b in zip(starts, stops)]


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
        the one that produced the row (a fallback where the history did not allow it).
    """
    cuts = np.array(list(cutoffs), dtype="datetime64[D]")
    models = list(models)
    frame, days, blocks = series_blocks(frame)
    units_all = frame["units"].to_numpy(np.float64)
    rows = ForecastRows(horizon)
    for sid, a, b in blocks:
        d, units = days[a:b], units_all[a:b]
        for c in cuts:
            y = units[:np.searchsorted(d, c, side="right")]  # days are sorted: the history up to the cutoff
            scale = mase_scale(y, season)
            for kind in models:
                p50, p90, used = forecast_one(kind, y, horizon, season, ets_model)
                rows.add(sid, c, kind, used, p50, p90, scale)
    return rows.frame()

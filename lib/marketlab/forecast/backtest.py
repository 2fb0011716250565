"""Backtest metrics: MASE, WAPE, bias, pinball loss (P50/P90) and P90 coverage.

Definitions (per model x cutoff, over the series evaluated, ``e = p50 - y``):

* MASE: mean over series of ``mean|e| / s``, ``s`` = in-sample mean absolute seasonal
  naive error of the series' history up to the cutoff (series with ``s = 0`` are left
  out of MASE only, and counted in ``n_series_mase``).
* WAPE: ``sum|e| / sum y``; bias: ``sum e / sum y`` (> 0 over-forecasts).
* pinball_p50, pinball_p90: ``sum pinball_q / sum y`` (scaled like WAPE; pinball_p50 =
  WAPE / 2); pinball = their mean; coverage_p90: share of days with ``y <= p90``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from marketlab.constants import DATE
from marketlab.forecast.series import SERIES_ID, UNITS

METRICS = ["mase", "wape", "bias", "pinball_p50", "pinball_p90", "pinball", "coverage_p90"]


def _pin(y, q, tau):
    return F.greatest(F.lit(tau) * (y - q), F.lit(tau - 1.0) * (y - q))


def per_series_errors(forecasts: DataFrame, series: DataFrame) -> DataFrame:
    """Errors per model x cutoff x series (Spark; one row each).

    Args:
        forecasts: FORECAST_SCHEMA rows (``series_id, cutoff, date, model, p50, p90, mase_scale``).
        series: Actuals ``series_id, date, units``.

    Returns:
        ``model, cutoff, series_id, n_days, abs_err, err, actual, pin50, pin90, covered,
        mase_scale, mase`` (``mase`` null where the scale is 0 or unknown).
    """
    y = F.col(UNITS)
    j = forecasts.join(series.select(SERIES_ID, DATE, UNITS), [SERIES_ID, DATE], "inner")
    agg = j.groupBy("model", "cutoff", SERIES_ID).agg(
        F.count("*").alias("n_days"),
        F.sum(F.abs(F.col("p50") - y)).alias("abs_err"),
        F.sum(F.col("p50") - y).alias("err"),
        F.sum(y).alias("actual"),
        F.sum(_pin(y, F.col("p50"), 0.5)).alias("pin50"),
        F.sum(_pin(y, F.col("p90"), 0.9)).alias("pin90"),
        F.sum((y <= F.col("p90")).cast("int")).alias("covered"),
        F.first("mase_scale").alias("mase_scale"),
    )
    mase = F.when(F.col("mase_scale") > 0, F.col("abs_err") / F.col("n_days") / F.col("mase_scale"))
    return agg.withColumn("mase", mase)


def summarize(errors: DataFrame) -> DataFrame:
    """Metrics per model x cutoff plus one row per model over all cutoffs (``cutoff`` null)."""
    def metrics(df: DataFrame, keys: list[str]) -> DataFrame:
        s = F.sum
        return df.groupBy(*keys).agg(
            F.countDistinct(SERIES_ID).alias("n_series"),
            F.count("mase").alias("n_series_mase"),
            F.avg("mase").alias("mase"),
            (s("abs_err") / s("actual")).alias("wape"),
            (s("err") / s("actual")).alias("bias"),
            (s("pin50") / s("actual")).alias("pinball_p50"),
            (s("pin90") / s("actual")).alias("pinball_p90"),
            ((s("pin50") + s("pin90")) / 2 / s("actual")).alias("pinball"),
            (s("covered") / s("n_days")).alias("coverage_p90"),
        )

    per_cut = metrics(errors, ["model", "cutoff"])
    overall = metrics(errors, ["model"]).withColumn("cutoff", F.lit(None).cast("date"))
    return per_cut.unionByName(overall)


def mase_gain_ci(errors: pd.DataFrame, model: str, baseline: str, confidence: float = 0.95, n_resamples: int = 2000,
                 seed: int = 0) -> tuple[float, float, float]:
    """Relative MASE gain of ``model`` over ``baseline`` (1 - MASE_m / MASE_b) with a bootstrap CI.

    Series are resampled (paired: the same series for both models), so the interval
    reflects how much the gain depends on which items happen to be in the sample.

    Args:
        errors: :func:`per_series_errors` collected to pandas (one row per model x cutoff x series).

    Returns:
        ``(gain, low, high)``; nan where fewer than 3 series have a MASE.
    """
    from scipy.stats import bootstrap

    wide = errors.pivot_table(index=["cutoff", SERIES_ID], columns="model", values="mase")
    wide = wide.groupby(level=SERIES_ID).mean()[[model, baseline]].dropna()
    if len(wide) < 3:
        return float("nan"), float("nan"), float("nan")
    a, b = wide[model].to_numpy(), wide[baseline].to_numpy()

    def gain(x, y, axis=-1):
        return 1.0 - np.mean(x, axis=axis) / np.mean(y, axis=axis)

    res = bootstrap((a, b), gain, paired=True, vectorized=True, confidence_level=confidence, n_resamples=n_resamples,
                    method="percentile", random_state=seed)
    return float(gain(a, b)), float(res.confidence_interval.low), float(res.confidence_interval.high)

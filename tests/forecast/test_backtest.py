import datetime as dt

import numpy as np
import pandas as pd

from marketlab.forecast.backtest import mase_gain_ci, per_series_errors, summarize


def test_metrics_match_numpy(spark):
    rng = np.random.default_rng(3)
    days = [dt.date(2011, 3, 1) + dt.timedelta(days=i) for i in range(5)]
    act, fc = [], []
    for sid in range(6):
        y = rng.poisson(5, 5).astype(float)
        act += [(sid, d, float(v)) for d, v in zip(days, y)]
        for model, noise in (("a", 1.0), ("b", 3.0)):
            p50 = np.maximum(y + rng.normal(0, noise, 5), 0)
            fc += [(sid, days[0] - dt.timedelta(days=1), d, model, model, float(p), float(p + 2), 1.5 + sid)
                   for d, p in zip(days, p50)]
    actuals = spark.createDataFrame(act, "series_id long, date date, units double")
    fcs = spark.createDataFrame(fc, "series_id long, cutoff date, date date, model string, model_used string, "
                                    "p50 double, p90 double, mase_scale double")
    summary = summarize(per_series_errors(fcs, actuals)).toPandas()
    f = pd.DataFrame(fc, columns=["series_id", "cutoff", "date", "model", "used", "p50", "p90", "s"])
    f = f.merge(pd.DataFrame(act, columns=["series_id", "date", "y"]), on=["series_id", "date"])
    for model, g in f.groupby("model"):
        row = summary[(summary.model == model) & summary.cutoff.isna()].iloc[0]
        e = g.p50 - g.y
        mase = (e.abs().groupby(g.series_id).mean() / g.groupby("series_id").s.first()).mean()
        pin90 = np.maximum(0.9 * (g.y - g.p90), -0.1 * (g.y - g.p90)).sum() / g.y.sum()
        assert abs(row.mase - mase) < 1e-12
        assert abs(row.wape - e.abs().sum() / g.y.sum()) < 1e-12
        assert abs(row.bias - e.sum() / g.y.sum()) < 1e-12
        assert abs(row.pinball_p50 - row.wape / 2) < 1e-12
        assert abs(row.pinball_p90 - pin90) < 1e-12
        assert abs(row.coverage_p90 - (g.y <= g.p90).mean()) < 1e-12
        assert row.n_series == 6


def test_gain_ci_brackets_gain_and_detects_no_difference():
    rng = np.random.default_rng(0)
    rows = []
    for sid in range(200):
        b = rng.uniform(0.5, 2)
        rows += [("base", dt.date(2011, 1, 1), sid, b), ("m", dt.date(2011, 1, 1), sid, b * rng.uniform(0.6, 1.0))]
    err = pd.DataFrame(rows, columns=["model", "cutoff", "series_id", "mase"])
    gain, lo, hi = mase_gain_ci(err, "m", "base")
    assert lo < gain < hi and 0.15 < lo and hi < 0.25
    same = err.copy()
    same.loc[same.model == "m", "mase"] = same.loc[same.model == "base", "mase"].to_numpy()
    g, lo, hi = mase_gain_ci(same, "m", "base")
    assert g == 0.0 and lo <= 0 <= hi


def test_fallback_backtest_scores_only_not_selected_series_like_pandas(spark, demand_df):
    from pyspark.sql import functions as F

    from marketlab.forecast.baselines import forecast_series
    from marketlab.forecast.params import ForecastParams
    from marketlab.forecast.run import fallback_backtest, prepare
    from marketlab.forecast.series import NOT_SELECTED, STATUS, series_profile

    p = ForecastParams(horizon=7, window=14, max_series=6, fallback_model="seasonal_es")
    series, end = prepare(demand_df)
    series = series.cache()
    cutoff = end - dt.timedelta(days=7)
    profile = series_profile(series, cutoff, p.history_needed, p.max_series).cache()
    out = fallback_backtest(series, profile, cutoff, p).set_index("model")
    ids = [r.series_id for r in profile.where(F.col(STATUS) == NOT_SELECTED).select("series_id").collect()]
    assert len(ids) >= 3 and sorted(out.index) == ["seasonal_es", "seasonal_naive"]
    frame = series.where(F.col("series_id").isin(ids)).select("series_id", "date", "units").toPandas()
    fc = forecast_series(frame, [cutoff], ["seasonal_naive", "seasonal_es"], 7, 7)
    fc["date"] = pd.to_datetime(fc["date"]).dt.date
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    j = fc.merge(frame, on=["series_id", "date"])
    for model, g in j.groupby("model"):
        per = (g.p50 - g.units).abs().groupby(g.series_id).mean() / g.groupby("series_id").mase_scale.first()
        assert out.loc[model, "n_series"] == len(ids)
        assert abs(out.loc[model, "mase"] - per[np.isfinite(per)].mean()) < 1e-9
    assert fallback_backtest(series, profile.where(F.col(STATUS) != NOT_SELECTED), cutoff, p) is None
    series.unpersist()
    profile.unpersist()

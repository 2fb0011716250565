import datetime as dt

import numpy as np
import pandas as pd
import pytest

from marketlab.forecast.baselines import forecast_one, forecast_series, mase_scale, seasonal_naive


def test_seasonal_naive_repeats_last_season_and_adds_error_quantile():
    y = np.array([1, 2, 3, 4, 5, 6, 7, 2, 3, 4, 5, 6, 7, 8], float)
    p50, p90 = seasonal_naive(y, 10, 7)
    np.testing.assert_allclose(p50, [2, 3, 4, 5, 6, 7, 8, 2, 3, 4])
    np.testing.assert_allclose(p90 - p50, np.quantile(y[7:] - y[:-7], 0.9))  # all +1
    assert mase_scale(y, 7) == 1.0


def test_ets_and_theta_match_statsforecast():
    from statsforecast.models import AutoETS, AutoTheta, Theta

    y = np.random.default_rng(1).poisson(10 * (1 + 0.5 * np.sin(np.arange(84) * 2 * np.pi / 7))).astype(float)
    for kind, model in (("ets", AutoETS(season_length=7, model="ANA")), ("auto_ets", AutoETS(season_length=7)),
                        ("theta", Theta(season_length=7)), ("auto_theta", AutoTheta(season_length=7))):
        ref = model.forecast(y=y, h=14, level=[80])
        p50, p90, used = forecast_one(kind, y, 14, 7)
        assert used == kind
        np.testing.assert_allclose(p50, np.maximum(ref["mean"], 0))
        np.testing.assert_allclose(p90, np.maximum(ref["hi-80"], p50))
    # the ETS specification is a parameter: ANN has no season, so its forecast is flat
    p50, _, _ = forecast_one("ets", y, 14, 7, ets_model="ANN")
    assert np.ptp(p50) < 1e-9 < np.ptp(forecast_one("ets", y, 14, 7)[0])


def test_seasonal_es_point_forecast_and_error_quantile():
    from statsforecast.models import SeasonalExponentialSmoothingOptimized

    y = np.random.default_rng(2).poisson(5 * (1 + 0.8 * np.sin(np.arange(70) * 2 * np.pi / 7))).astype(float)
    ref = SeasonalExponentialSmoothingOptimized(season_length=7).forecast(y=y, h=10, fitted=True)
    p50, p90, used = forecast_one("seasonal_es", y, 10, 7)
    assert used == "seasonal_es"
    np.testing.assert_allclose(p50, np.maximum(ref["mean"], 0))
    resid = y - ref["fitted"]
    np.testing.assert_allclose(p90 - p50, np.quantile(resid[np.isfinite(resid)], 0.9))
    assert np.ptp(p50) > 1  # weekly pattern kept


@pytest.mark.parametrize("y,kind,used", [
    (np.zeros(30), "ets", "zero"),
    (np.array([0, 0, 3.0]), "seasonal_naive", "mean"),
    (np.arange(10, dtype=float), "ets", "seasonal_naive"),
    (np.array([]), "theta", "zero"),
    (np.arange(12, dtype=float), "seasonal_es", "seasonal_naive"),
])
def test_fallbacks(y, kind, used):
    p50, p90, got = forecast_one(kind, y, 5, 7)
    assert got == used and len(p50) == 5 and (p90 >= p50).all() and (p50 >= 0).all()


def test_forecast_series_rows_per_cutoff_and_model():
    d = pd.date_range("2011-01-01", periods=40, freq="D").date
    frame = pd.DataFrame({"series_id": 7, "date": d, "units": np.tile(np.arange(7.0), 6)[:40]})
    out = forecast_series(frame, [d[27], d[33]], ["seasonal_naive", "ets"], horizon=3, season=7)
    assert len(out) == 2 * 2 * 3
    sn = out[(out.model == "seasonal_naive") & (out.cutoff == d[27])]
    assert list(sn["date"]) == list(d[28:31])
    np.testing.assert_allclose(sn["p50"], [0, 1, 2])  # a perfect weekly cycle
    assert (sn["mase_scale"] == 0).all()

"""Accuracy and cost of the statistical forecast models on the real demand series.

    .venv/bin/python bench/forecast_baselines.py [--top 300] [--tail 800]

Picks the series as the forecast job does (``series_profile`` at the first backtest cutoff
of the default conf): ``--top`` of the ``ok`` series (the top ``max_series`` by volume, the
LSTM's, where the baselines are compared; the lowest ids) and ``--tail`` of the
``not_selected`` ones (where the fallback model forecasts). Each model forecasts 14 days from the last backtest cutoff; MASE per
series is scaled by the in-sample weekly naive error, as in the job. Prints MASE with a
95 % bootstrap CI over series, the mean fit time per series (one process, one core), and
ends with ONE JSON line. Automatic ETS / Theta (``auto_ets`` / ``auto_theta``) are the
references the job used before the default became ETS(A,N,A) / standard Theta.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402
from scipy.stats import bootstrap  # noqa: E402

from forecast_training import real_demand  # noqa: E402
from marketlab.config import load_settings  # noqa: E402
from marketlab.forecast.baselines import forecast_one, mase_scale  # noqa: E402
from marketlab.forecast.run import backtest_cutoffs, prepare  # noqa: E402
from marketlab.forecast.series import NOT_SELECTED, OK, SERIES_ID, STATUS, series_profile  # noqa: E402
from marketlab.spark import get_spark  # noqa: E402

MODELS = ["seasonal_naive", "auto_ets", "ets", "auto_theta", "theta", "seasonal_es"]


def score(frame: pd.DataFrame, cutoff, h: int, season: int) -> tuple[dict[str, list[float]], dict[str, float]]:
    errs: dict[str, list[float]] = {m: [] for m in MODELS}
    secs = dict.fromkeys(MODELS, 0.0)
    for _, g in frame.sort_values([SERIES_ID, "date"]).groupby(SERIES_ID, sort=False):
        d, units = g["date"].to_numpy(), g["units"].to_numpy(np.float64)
        y, actual = units[d <= cutoff], units[d > cutoff][:h]
        scale = mase_scale(y, season)
        if not scale > 0 or len(actual) < h:
            continue
        for m in MODELS:
            t = time.perf_counter()
            p50, _, _ = forecast_one(m, y, h, season)
            secs[m] += time.perf_counter() - t
            errs[m].append(float(np.mean(np.abs(actual - p50)) / scale))
    return errs, secs


def table(errs: dict[str, list[float]], secs: dict[str, float]) -> dict[str, dict[str, float]]:
    out = {}
    for m, e in errs.items():
        a = np.asarray(e)
        ci = bootstrap((a,), np.mean, n_resamples=2000, method="percentile", random_state=0).confidence_interval
        out[m] = {"mase": round(float(a.mean()), 4), "ci_low": round(float(ci.low), 4), "ci_high": round(float(ci.high), 4),
                  "ms_per_series": round(1000 * secs[m] / max(len(a), 1), 2), "n_series": len(a)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=300)
    ap.add_argument("--tail", type=int, default=800)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-fcbase-"))
    st = load_settings(ROOT / "conf/local.yaml", [f"lake_root={tmp / 'lake'}", f"mlflow.tracking_uri=sqlite:///{tmp / 'mlflow.db'}",
                                                  "spark.master=local[2]"])
    p = st.jobs.forecast
    spark = get_spark(st)
    series, end = prepare(real_demand(spark))
    series = series.cache()
    cutoffs = backtest_cutoffs(end, p)
    prof = series_profile(series, cutoffs[0], p.history_needed, p.max_series).select(SERIES_ID, STATUS)
    groups = {"top_ok": prof.where(F.col(STATUS) == OK).orderBy(SERIES_ID).limit(args.top),
              "not_selected": prof.where(F.col(STATUS) == NOT_SELECTED).orderBy(SERIES_ID).limit(args.tail)}
    figures: dict = {"bench": "forecast_baselines", "cutoff": str(cutoffs[-1]), "horizon": p.horizon}
    for name, ids in groups.items():
        frame = series.join(ids.select(SERIES_ID), SERIES_ID).select(SERIES_ID, "date", "units").toPandas()
        errs, secs = score(frame, cutoffs[-1], p.horizon, p.season)
        res = table(errs, secs)
        figures[name] = res
        print(f"\n{name}: {res['ets']['n_series']} series, {p.horizon} days from {cutoffs[-1]}")
        print(pd.DataFrame(res).T.to_string())
    for name in groups:
        r = figures[name]
        figures[f"{name}_speedup_ets"] = round(r["auto_ets"]["ms_per_series"] / r["ets"]["ms_per_series"], 1)
        figures[f"{name}_speedup_theta"] = round(r["auto_theta"]["ms_per_series"] / r["theta"]["ms_per_series"], 1)
    spark.stop()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

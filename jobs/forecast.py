"""Demand forecast: distributed LSTM, rolling-origin backtest vs baselines, gold.forecasts.

spark-submit jobs/forecast.py --conf conf/cluster.yaml [--set jobs.forecast.train.backend=tf-distribute]
"""

from __future__ import annotations

import datetime as dt
import shutil

from marketlab.forecast import logging_mlflow as ml
from marketlab.training.launch import LaunchError, get_launcher
from marketlab.forecast.run import ForecastInputError, backtest_and_forecast, backtest_table, forecast_table, prepare, status_counts
from marketlab.runtime import JobContext, JobError, main_guard
from marketlab.tracking import job_run


def main(ctx: JobContext) -> dict:
    p = ctx.settings.jobs.forecast
    demand = ctx.lake.read(p.input_table)
    launcher = get_launcher(p.train.backend, p.train.start_timeout_s)
    with job_run(ctx.settings, "forecast", ctx.lake, params=p.model_dump()) as run:
        stage_uri = ctx.settings.resolve(ctx.settings.lake_root).rstrip("/") + f"/{p.staging_dir}/{run.info.run_id}"
        try:
            series, end = prepare(demand)
            series = series.cache()
            out = backtest_and_forecast(ctx.spark, series, p, launcher, stage_uri, end)
            bt, fc, final, profile = out.backtest, out.forecasts, out.final, out.profile
        except (ForecastInputError, LaunchError) as exc:
            raise JobError(f"forecast: {exc}") from exc
        finally:
            shutil.rmtree(stage_uri.replace("file://", ""), ignore_errors=True)
        metrics = ml.log_backtest(bt)
        ml.log_training({"backtest": bt.model, **({"final": final} if final else {})})
        counts = status_counts(profile)
        mv = ml.register_model(final or bt.model, p.model_name)
        gate = ml.gate(p.model_name, mv.version, bt, p.gate_metric, p.gate_margin, p.require_beats_baseline)
        made_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        ctx.lake.write(forecast_table(fc, f"{p.model_name}/{mv.version}", made_at), p.output_table)
        ctx.lake.write(backtest_table(ctx.spark, bt, made_at), p.backtest_table)
        series.unpersist()
    summary = {"end": str(end), "cutoffs": [str(c) for c in bt.cutoffs], "series": counts, "model_version": mv.version,
               "gate": gate, "lstm_mase": metrics.get("bt.lstm.mase"), "snaive_mase": metrics.get("bt.seasonal_naive.mase"),
               "ets_mase": metrics.get("bt.ets.mase"), "replicas_identical": bt.model.replicas_identical}
    print(f"forecast: {sum(counts.values())} series to {end} (+{p.horizon}d), {counts}; backtest MASE lstm "
          f"{summary['lstm_mase']:.3f} vs seasonal naive {summary['snaive_mase']:.3f}; model v{mv.version} {gate}")
    return summary


if __name__ == "__main__":
    main_guard("forecast", main)

"""Demand forecast: distributed LSTM, rolling-origin backtest vs baselines, gold.forecasts.

spark-submit jobs/forecast.py --conf conf/cluster.yaml [--set jobs.forecast.train.backend=tf-distribute]
"""

from __future__ import annotations

import shutil

from marketlab.errors import UserError
from marketlab.forecast import logging_mlflow as ml
from marketlab.training.launch import LaunchError, get_launcher
from marketlab.forecast.run import run
from marketlab.runtime import JobContext, main_guard
from marketlab.tracking import job_run


def main(ctx: JobContext) -> dict:
    p = ctx.settings.jobs.forecast
    launcher = get_launcher(p.train.backend, p.train.start_timeout_s)
    logged: dict = {}

    def register(out) -> str:
        logged.update(ml.log_and_register(out, p))
        return logged["version"]

    with job_run(ctx.settings, "forecast", ctx.lake, params=p.model_dump()) as mlrun:
        stage_uri = ctx.settings.resolve(ctx.settings.lake_root).rstrip("/") + f"/{p.staging_dir}/{mlrun.info.run_id}"
        try:
            res = run(ctx.lake, p, launcher, stage_uri, register)
        except LaunchError as exc:  # until the launcher's errors subclass UserError (it lives outside forecast/)
            raise UserError(f"forecast: {exc}") from exc
        finally:
            shutil.rmtree(stage_uri.replace("file://", ""), ignore_errors=True)
    metrics, gate, bt = logged["metrics"], logged["gate"], res.backtest
    summary = {"end": str(res.end), "cutoffs": [str(c) for c in bt.cutoffs], "series": res.series,
               "model_version": res.model_version, "gate": gate, "lstm_mase": metrics.get("bt.lstm.mase"),
               "snaive_mase": metrics.get("bt.seasonal_naive.mase"), "ets_mase": metrics.get("bt.ets.mase"),
               "replicas_identical": bt.model.replicas_identical}
    print(f"forecast: {sum(res.series.values())} series to {res.end} (+{p.horizon}d), {res.series}; backtest MASE lstm "
          f"{summary['lstm_mase']:.3f} vs seasonal naive {summary['snaive_mase']:.3f}; model v{res.model_version} {gate}")
    return summary


if __name__ == "__main__":
    main_guard("forecast", main)

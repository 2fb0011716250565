"""The forecast job end to end on a small synthetic gold.demand_daily with bad series."""

import argparse
import datetime as dt
import importlib.util
from importlib.metadata import version
from pathlib import Path

import mlflow
import pytest
from pyspark.sql import functions as F

from marketlab.forecast.run import ForecastInputError
from marketlab.runtime import JobContext
from marketlab.tables import Lake
from marketlab.tracking import KERAS_MODEL_REQUIREMENTS, pinned_requirements
from conftest import ROOT, make_settings
from forecast.conftest import N_DAYS, START

END = START + dt.timedelta(days=N_DAYS - 1)
SMALL = ["jobs.forecast.window=14", "jobs.forecast.horizon=7", "jobs.forecast.cutoff_step=7", "jobs.forecast.n_cutoffs=2",
         "jobs.forecast.baselines=[seasonal_naive,ets]", "jobs.forecast.max_series=12",
         "jobs.forecast.train.backend=tf-distribute", "jobs.forecast.train.epochs=2", "jobs.forecast.train.batch_size=32",
         "jobs.forecast.train.steps_per_epoch=4", "jobs.forecast.train.lstm_units=8", "jobs.forecast.train.dense_units=8",
         "jobs.forecast.train.use_gpu=false"]


def job_main():
    spec = importlib.util.spec_from_file_location("forecast_job", ROOT / "jobs" / "forecast.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


def _ctx(spark, tmp, overrides=()):
    st = make_settings(tmp, [*SMALL, *overrides])
    return JobContext("forecast", st, spark, Lake(spark, st), argparse.Namespace())


@pytest.fixture(scope="module")
def job_run(spark, demand_df, tmp_path_factory):
    main = job_main()
    tmp = tmp_path_factory.mktemp("forecast_job")
    ctx = _ctx(spark, tmp)
    ctx.lake.write(demand_df, "gold.demand_daily")
    summary = main(ctx)
    return ctx, summary


def test_forecast_table_covers_every_series_with_flags(job_run, demand_pd):
    ctx, summary = job_run
    fc = Lake(ctx.spark, ctx.settings).read("gold.forecasts")
    assert fc.columns[:8] == ["item_id", "warehouse", "date", "p50", "p90", "model", "model_version", "made_at"]
    n_series = demand_pd.groupby(["item_id", "warehouse"]).ngroups
    assert fc.count() == n_series * 7
    assert fc.select("date").distinct().agg(F.min("date"), F.max("date")).first() == (
        END + dt.timedelta(days=1), END + dt.timedelta(days=7))
    assert fc.where((F.col("p90") < F.col("p50")) | (F.col("p50") < 0)).count() == 0
    per = {(r.item_id, r.warehouse): (r.model, list(r.flags)) for r in fc.select("item_id", "warehouse", "model", "flags")
           .distinct().collect()}
    assert per[("SHORT", "UK")] == ("seasonal_naive", ["too_short"])  # 20 days < 28 needed
    assert per[("ZERO", "UK")] == ("zero", ["all_zero"])
    assert per[("I00", "EMPTY")] == ("zero", ["all_zero"])
    assert per[("GAPPY", "EU")][1][:2] == ["gaps_filled", "negative_clipped"]
    assert sum(m == "lstm" for m, _ in per.values()) == 12
    assert sum("not_selected" in f for _, f in per.values()) == 5
    assert {m for m, f in per.values() if "not_selected" in f} == {"seasonal_es"}
    assert summary["series"] == {"ok": 12, "too_short": 1, "all_zero": 2, "not_selected": 5}
    assert fc.where(F.col("model") == "zero").agg(F.max("p90")).first()[0] == 0.0


def test_backtest_table_and_mlflow(job_run):
    ctx, summary = job_run
    bt = Lake(ctx.spark, ctx.settings).read("gold.forecast_backtest").toPandas()
    assert sorted(bt.model.unique()) == ["ets", "lstm", "seasonal_naive"]
    assert len(bt) == 3 * 3  # 2 cutoffs + overall per model
    assert (bt[bt.cutoff.isna()].n_series == 12).all()
    assert summary["replicas_identical"] is True
    mlflow.set_tracking_uri(ctx.settings.tracking_uri())
    client = mlflow.MlflowClient()
    run = client.search_runs([client.get_experiment_by_name(ctx.settings.mlflow.experiment).experiment_id],
                             "tags.`marketlab.job` = 'forecast'")[0]
    m = run.data.metrics
    assert abs(m["bt.lstm.mase"] - bt[(bt.model == "lstm") & bt.cutoff.isna()].mase.iloc[0]) < 1e-9
    assert m["train.backtest.replica_max_divergence"] == 0.0
    # the not_selected series' fallback is backtested on them, against seasonal naive
    assert m["bt.not_selected.seasonal_es.n_series"] == m["bt.not_selected.seasonal_naive.n_series"] >= 1
    assert 0 < m["bt.not_selected.seasonal_es.mase"] < 10 and 0 < m["bt.not_selected.seasonal_naive.mase"] < 10
    assert run.data.params["read.gold.demand_daily"] == "0"
    arts = {a.path for a in client.list_artifacts(run.info.run_id, "backtest")}
    assert "backtest/metrics.png" in arts
    mv = client.get_model_version("marketlab-demand-lstm", summary["model_version"])
    expected = "promoted" if m["bt.lstm.mase"] < m["bt.seasonal_naive.mase"] else "rejected_baseline"
    assert summary["gate"] == expected and mv.tags["gate.result"] == expected
    # The model's environment: the job's pins (no inference subprocess), plus MLflow's own.
    reqs = Path(mlflow.pyfunc.get_model_dependencies(f"models:/marketlab-demand-lstm/{mv.version}")).read_text().split()
    assert set(reqs) == {*pinned_requirements(*KERAS_MODEL_REQUIREMENTS), f"mlflow=={mlflow.__version__}"}
    assert f"tensorflow-cpu=={version('tensorflow-cpu')}" in reqs  # the locked distribution


def test_too_little_history_is_a_job_error(spark, demand_df, tmp_path):
    main = job_main()
    ctx = _ctx(spark, tmp_path, ["jobs.forecast.n_cutoffs=30"])
    ctx.lake.write(demand_df, "gold.demand_daily")
    with pytest.raises(ForecastInputError, match="no series has 28 days of history"):
        main(ctx)

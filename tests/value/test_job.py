"""The value job on the real Online Retail data: table, MLflow run, registered model, holdout figures."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from pyspark.sql import functions as F

from conftest import ROOT, make_settings
from marketlab.runtime import JobContext
from marketlab.tables import Lake


def _load_job():
    spec = importlib.util.spec_from_file_location("value_job", ROOT / "jobs" / "value.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_value_job_on_online_retail(silver, capsys):
    lk, _ = silver
    st = make_settings(Path(lk.settings.lake_root).parent,
                       ["jobs.value.bootstrap=50", "jobs.value.model_name=marketlab-customer-value-test"])
    lake = Lake(lk.spark, st)
    out = _load_job().main(JobContext("value", st, lk.spark, lake, None))
    line = capsys.readouterr().out
    assert line.startswith("value: ") and "gold.customer_value" in line
    print(line)
    # Online Retail ends 2011-12-09: scored as of the 10th, evaluated from 2011-06-13 (180-day holdout).
    assert out["as_of"] == "2011-12-10"
    value = lake.read("gold.customer_value").where(F.col("as_of") == F.lit("2011-12-10").cast("date"))
    known = lake.read("silver.order_lines").where(F.col("customer_id").isNotNull()).select("customer_id").distinct().count()
    n = value.count()
    assert 0.97 * known <= n <= known  # customers whose only lines are outliers are left out
    assert value.where(F.col("p_alive").isNull() | F.col("clv").isNull() | (F.col("clv") < 0)).count() == 0
    # The MLflow run: fitted parameters, holdout metrics with intervals, the plot, a registered model behind the gate.
    run = mlflow.search_runs(filter_string="tags.`marketlab.job` = 'value'", output_format="list")[0]
    m = run.data.metrics
    for key in ("fit.r", "fit.alpha", "fit.a", "fit.b", "fit.p", "fit.q", "fit.gamma", "holdout.h90.count.rmse.model",
                "holdout.h180.spend.rmse.population", "holdout.h90.count.rmse_gain_vs_historical_lo"):
        assert np.isfinite(m[key]), key
    assert m["holdout.h90.count.rmse.model"] < m["holdout.h90.count.rmse.population"]
    assert out["gain"] == pytest.approx(m["holdout.h90.count.rmse_gain_vs_historical"])
    arts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id, "value")}
    assert {"value/calibration.png", "value/calibration_90d.csv", "value/calibration_180d.csv"} <= arts
    client = MlflowClient()
    mv = max(client.search_model_versions("name='marketlab-customer-value-test'"), key=lambda v: int(v.version))
    assert client.get_model_version("marketlab-customer-value-test", mv.version).tags["gate.result"] in (
        "promoted", "rejected_baseline")
    # The registered pyfunc reproduces the table's scores.
    sample = value.orderBy("customer_key").limit(20).toPandas()
    pred = mlflow.pyfunc.load_model(f"models:/marketlab-customer-value-test/{mv.version}").predict(sample)
    np.testing.assert_allclose(pred["clv"], sample["clv"], rtol=1e-9)
    np.testing.assert_allclose(pred["p_alive"], sample["p_alive"], rtol=1e-9)

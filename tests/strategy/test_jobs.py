"""effect + strategy jobs end to end on a small contract-shaped campaign: real Delta, real MLflow."""

from __future__ import annotations

import argparse
import importlib.util
import mlflow
import pytest
from mlflow.tracking import MlflowClient
from pyspark.sql import functions as F

from conftest import ROOT, make_settings, pass_gate
from marketlab.effect.data import EffectInputError
from marketlab.errors import BadInputError
from marketlab.runtime import JobContext
from marketlab.tables import Lake

from effect.synthetic import synthetic_campaign


def _job(name):
    spec = importlib.util.spec_from_file_location(f"job_{name}", ROOT / "jobs" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# Small on purpose (2 shared cores): one outcome, linear learners, few bootstrap replicates.
OVR = ["jobs.effect.learners=[t_learner, class_transformation]", "jobs.effect.base_model=logreg",
       "jobs.effect.max_iter=10", "jobs.effect.bootstrap=3", "jobs.effect.ks=[0.3]", "jobs.effect.outcomes=[visit]",
       "jobs.effect.calibration_bins=4", "jobs.strategy.outcome=visit", "jobs.strategy.margin=5.0",
       "jobs.strategy.bootstrap=10", "jobs.strategy.segment_caps={Web: 0.2}"]


def test_effect_then_strategy_jobs(spark, tmp_path, capsys):
    settings = make_settings(tmp_path, OVR)
    lake = Lake(spark, settings)
    lake.write(spark.createDataFrame(synthetic_campaign(2400, seed=11)), "silver.campaign_log")
    pass_gate(lake, "silver.campaign_log")
    ctx = JobContext("effect", settings, spark, lake, argparse.Namespace())
    _job("effect").main(ctx)
    scores = lake.read("gold.uplift_scores")
    assert scores.count() == 2400 * 2  # customers x arms x outcomes (control arm excluded)
    assert scores.where(F.col("effect_low") > F.col("effect_high")).count() == 0
    assert scores.select(F.length("customer_key").alias("l")).distinct().collect()[0]["l"] == 16
    client = MlflowClient()
    mv = client.get_model_version_by_alias("marketlab-uplift-mens_e_mail-visit", "champion")
    assert mv.tags["gate.result"] == "promoted"

    ctx2 = JobContext("strategy", settings, spark, Lake(spark, settings), argparse.Namespace())
    _job("strategy").main(ctx2)
    strat = lake.read("gold.strategy").toPandas()
    assert len(strat) == 2400 and strat["customer_key"].is_unique
    contacted = strat["action"] != "No E-Mail"
    assert contacted.sum() <= 1200  # 50 % budget
    web = strat["segment"] == "Web"
    assert (contacted & web).sum() <= int(0.2 * web.sum())
    assert (strat.loc[contacted, "expected_profit"] > 0).all()
    _job("strategy").main(JobContext("strategy", settings, spark, Lake(spark, settings), argparse.Namespace()))
    again = lake.read("gold.strategy").toPandas()
    assert lake.version("gold.strategy") == 1 and again.sort_values("customer_key").reset_index(drop=True).equals(
        strat.sort_values("customer_key").reset_index(drop=True))  # rerun = same table
    summary = lake.read("gold.strategy_summary").toPandas()
    assert summary["customers"].sum() == 2400
    run = mlflow.search_runs(filter_string="tags.`marketlab.job` = 'strategy'", output_format="list")[0]
    assert run.data.tags["marketlab.run_kind"] == "effect_evaluation"
    assert "ope.strategy.dr.value" in run.data.metrics and "budget.contacts" in run.data.metrics
    m = run.data.metrics
    assert m["ope.strategy.dr.mde"] == pytest.approx(2.8016 * m["ope.strategy.dr.diff_se"], rel=1e-4)
    assert m["ope.strategy.dr.diff_se"] > 0
    assert run.data.params["read.gold.uplift_scores"] == "0"
    out = capsys.readouterr().out
    assert "DR value/customer" in out and "(detectable: " in out


def test_effect_job_missing_arm_is_a_job_error(spark, tmp_path):
    settings = make_settings(tmp_path, OVR)
    lake = Lake(spark, settings)
    pdf = synthetic_campaign(600, seed=2)
    lake.write(spark.createDataFrame(pdf[pdf.treatment != "Womens E-Mail"]), "silver.campaign_log")
    pass_gate(lake, "silver.campaign_log")
    with pytest.raises(EffectInputError, match=r"silver.campaign_log: arm\(s\) \['Womens E-Mail'\] missing") as exc:
        _job("effect").main(JobContext("effect", settings, spark, lake, argparse.Namespace()))
    assert isinstance(exc.value, BadInputError)


def test_closed_loop_effects_exclude_the_ope_holdout(spark, tmp_path):
    """The measured effects that adjust the plan come from customers outside the OPE holdout only."""
    from marketlab import privacy
    from marketlab.strategy.run import run as strategy

    settings = make_settings(tmp_path, OVR)
    lake = Lake(spark, settings)
    lake.write(spark.createDataFrame(synthetic_campaign(2400, seed=11)), "silver.campaign_log")
    pass_gate(lake, "silver.campaign_log")
    _job("effect").main(JobContext("effect", settings, spark, lake, argparse.Namespace()))
    _job("evaluation").main(JobContext("evaluation", settings, spark, Lake(spark, settings), argparse.Namespace()))
    held = lake.read("gold.uplift_scores").where("is_holdout").select("customer_key").distinct().count()
    assert 0 < held < 2400
    res = strategy(Lake(spark, settings), settings.jobs.strategy, privacy.resolve_secret(settings),
                   settings.jobs.evaluation)
    note = next(n for n in res.notes if n.startswith("closed loop: effects re-measured"))
    assert f"on {2400 - held} customers outside" in note and f"({held} held out" in note
    leaky = strategy(Lake(spark, settings), settings.jobs.strategy, privacy.resolve_secret(settings))
    assert not any(n.startswith("closed loop: effects re-measured") for n in leaky.notes)

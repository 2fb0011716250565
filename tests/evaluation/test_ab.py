"""evaluate_campaign and the export on small Spark frames, cross-checked with pandas/statsmodels."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest

from marketlab.evaluation.ab import CampaignDataError, evaluate_campaign
from marketlab.evaluation.export import build_campaign_export, latest_evaluations
from marketlab.evaluation.params import EvaluationParams


def params(**kw) -> EvaluationParams:
    """Evaluation params of a test campaign: no segments, free contacts unless given."""
    return EvaluationParams(**({"campaign": "c", "segment_columns": [], "default_cost_per_contact": 0.0} | kw))


def synthetic_log(n=3000, seed=1):
    """A randomized 3-arm campaign with known lifts and a 2-valued segment column."""
    rng = np.random.default_rng(seed)
    arm = rng.choice(["No E-Mail", "Mens E-Mail", "Womens E-Mail"], n)
    channel = rng.choice(["Web", "Phone"], n)
    p_visit = np.where(arm == "No E-Mail", 0.10, np.where(arm == "Mens E-Mail", 0.18, 0.15))
    visit = (rng.random(n) < p_visit).astype(int)
    conversion = visit * (rng.random(n) < 0.2).astype(int)
    spend = conversion * rng.gamma(2.0, 50.0, n)
    return pd.DataFrame({"customer_id": np.arange(n, dtype=np.int64), "treatment": arm, "channel": channel,
                         "visit": visit, "conversion": conversion, "spend": spend})


@pytest.fixture(scope="module")
def log_pd():
    return synthetic_log()


@pytest.fixture(scope="module")
def result(spark, log_pd):
    return evaluate_campaign(spark.createDataFrame(log_pd), params(
        campaign="c1", segment_columns=["channel"], cost_per_contact={"Mens E-Mail": 0.5, "Womens E-Mail": 0.25},
        margin_rate=0.4, min_segment_size=100))


def test_overall_rows_match_pandas_and_statsmodels(result, log_pd):
    rows = result.rows
    ctrl = log_pd[log_pd.treatment == "No E-Mail"]
    for arm in ["Mens E-Mail", "Womens E-Mail"]:
        trt = log_pd[log_pd.treatment == arm]
        r = rows[(rows.arm == arm) & (rows.segment == "all")].set_index("metric")
        assert r.loc["visit_rate", "n_treated"] == len(trt) and r.loc["visit_rate", "n_control"] == len(ctrl)
        assert r.loc["visit_rate", "effect"] == pytest.approx(trt.visit.mean() - ctrl.visit.mean(), abs=1e-12)
        _, p = proportions_ztest([trt.visit.sum(), ctrl.visit.sum()], [len(trt), len(ctrl)])
        assert r.loc["visit_rate", "p_value"] == pytest.approx(p, rel=1e-9)
        welch = stats.ttest_ind(trt.spend, ctrl.spend, equal_var=False)
        assert r.loc["spend_per_customer", "p_value"] == pytest.approx(welch.pvalue, rel=1e-6)
        ci = welch.confidence_interval()
        assert r.loc["spend_per_customer", "ci_low"] == pytest.approx(ci.low, rel=1e-6)
        # Economic metrics are exact transforms of the spend effect.
        cpc = 0.5 if arm == "Mens E-Mail" else 0.25
        d = trt.spend.mean() - ctrl.spend.mean()
        cost = cpc * len(trt)
        assert r.loc["incremental_revenue", "effect"] == pytest.approx(d * len(trt), rel=1e-9)
        assert r.loc["incremental_margin", "effect"] == pytest.approx(0.4 * d * len(trt) - cost, rel=1e-9)
        assert r.loc["roi", "effect"] == pytest.approx((0.4 * d * len(trt) - cost) / cost, rel=1e-9)
        assert r.loc["roi", "ci_high"] == pytest.approx((0.4 * ci.high * len(trt) - cost) / cost, rel=1e-6)
        inc_conv = (trt.conversion.mean() - ctrl.conversion.mean()) * len(trt)
        assert r.loc["cost_per_incremental_conversion", "effect"] == pytest.approx(cost / inc_conv, rel=1e-9)
        assert np.isnan(r.loc["roi", "p_value"])
        assert r.loc["incremental_revenue", "p_adjusted"] == r.loc["spend_per_customer", "p_adjusted"]
    # Holm over the 6 overall tests (2 arms x 3 metrics).
    fam = rows[(rows.segment == "all") & rows.metric.isin(["visit_rate", "conversion_rate", "spend_per_customer"])]
    from statsmodels.stats.multitest import multipletests
    np.testing.assert_allclose(fam.p_adjusted, multipletests(fam.p_value, method="holm")[1])
    # The strong visit lift is detected and flagged significant after correction.
    mens = rows[(rows.arm == "Mens E-Mail") & (rows.segment == "all") & (rows.metric == "visit_rate")].iloc[0]
    assert mens.significant and mens.ci_low > 0


def test_segments_srm_and_shape(result, log_pd, spark):
    rows = result.rows
    assert set(rows.segment) == {"all", "channel=Web", "channel=Phone"}
    seg = rows[(rows.segment == "channel=Web") & (rows.arm == "Womens E-Mail") & (rows.metric == "conversion_rate")].iloc[0]
    w = log_pd[log_pd.channel == "Web"]
    assert seg.n_treated == (w.treatment == "Womens E-Mail").sum()
    assert seg.segment_column == "channel" and seg.segment_value == "Web"
    assert result.srm.mismatch is False
    assert len(rows) == 3 * 2 * 7  # segments x arms x metrics
    sdf = result.to_spark(spark)
    assert sdf.count() == len(rows)
    assert dict(sdf.dtypes)["n_treated"] == "bigint" and dict(sdf.dtypes)["evaluated_at"] == "timestamp"
    # NaN p-values of derived metrics are nulls in the table.
    assert sdf.where("metric = 'roi' and p_value is null").count() == 6


def test_small_segments_skipped_and_bad_input(spark, log_pd):
    res = evaluate_campaign(spark.createDataFrame(log_pd), params(segment_columns=["channel"], min_segment_size=10_000))
    assert set(res.rows.segment) == {"all"}
    assert "channel=Web:Mens E-Mail" in res.segments_skipped
    with pytest.raises(CampaignDataError, match="control arm"):
        evaluate_campaign(spark.createDataFrame(log_pd), params(control_arm="Control"))
    with pytest.raises(CampaignDataError, match="lacks column"):
        evaluate_campaign(spark.createDataFrame(log_pd).drop("spend"), params())
    bad = log_pd.head(50).copy().astype({"visit": "float"})
    bad.loc[3, "visit"] = np.nan
    with pytest.raises(CampaignDataError, match="nulls"):
        evaluate_campaign(spark.createDataFrame(bad).replace(float("nan"), None), params())


def test_srm_flag_on_skewed_log(spark, log_pd):
    # Drop 40% of one arm's customers: a broken assignment the SRM check must catch.
    skew = log_pd[~((log_pd.treatment == "Mens E-Mail") & (log_pd.customer_id % 5 < 2))]
    res = evaluate_campaign(spark.createDataFrame(skew), params())
    assert res.srm.mismatch is True and res.rows.srm_mismatch.all()


def test_bootstrap_spend_option(spark, log_pd):
    res = evaluate_campaign(spark.createDataFrame(log_pd), params(spend_test="bootstrap", bootstrap_resamples=500, seed=3))
    r = res.rows[(res.rows.metric == "spend_per_customer")].set_index("arm")
    assert set(r.test) == {"bootstrap_bca"}
    trt, ctrl = log_pd[log_pd.treatment == "Mens E-Mail"].spend, log_pd[log_pd.treatment == "No E-Mail"].spend
    assert r.loc["Mens E-Mail", "effect"] == pytest.approx(trt.mean() - ctrl.mean())
    assert r.loc["Mens E-Mail", "ci_low"] < r.loc["Mens E-Mail", "effect"] < r.loc["Mens E-Mail", "ci_high"]


def test_campaign_export_holdout_is_random_stable_and_validated(spark):
    aud = spark.range(20_000).selectExpr("format_string('k%05d', id) AS customer_key",
                                         "IF(id % 3 = 0, 'Womens E-Mail', 'Mens E-Mail') AS action")
    ex = build_campaign_export(aud, campaign="w2", control_arm="No E-Mail", holdout_fraction=0.1, seed=9).toPandas()
    ex2 = build_campaign_export(aud.repartition(7), campaign="w2", control_arm="No E-Mail", holdout_fraction=0.1,
                                seed=9).toPandas()
    pd.testing.assert_frame_equal(ex.drop(columns="exported_at").sort_values("customer_key").reset_index(drop=True),
                                  ex2.drop(columns="exported_at").sort_values("customer_key").reset_index(drop=True))
    assert len(ex) == 20_000
    # Holdout share within 3 sd of 10%, the same in each intended arm (independent of the choice).
    for _, g in ex.groupby("intended_arm"):
        sd = np.sqrt(0.09 / len(g))
        assert abs(g.is_holdout.mean() - 0.1) < 3 * sd
    assert (ex[ex.is_holdout].arm == "No E-Mail").all() and not ex[ex.is_holdout].send_email.any()
    assert (ex[~ex.is_holdout].arm == ex[~ex.is_holdout].intended_arm).all()
    # No arm column: arms drawn uniformly.
    rnd = build_campaign_export(aud.select("customer_key"), campaign="w3", control_arm="No E-Mail",
                                holdout_fraction=0.2, seed=1, arm_col=None, arms=["A", "B"]).toPandas()
    assert set(rnd.intended_arm) == {"A", "B"} and abs((rnd.intended_arm == "A").mean() - 0.5) < 0.015
    with pytest.raises(ValueError, match="duplicate"):
        build_campaign_export(aud.union(aud.limit(3)), campaign="w", control_arm="x", holdout_fraction=0.1, seed=1)
    with pytest.raises(ValueError, match="holdout_fraction"):
        build_campaign_export(aud, campaign="w", control_arm="x", holdout_fraction=1.0, seed=1)


def test_latest_evaluations_picks_newest(spark, result):
    from datetime import datetime
    a = result.to_spark(spark)
    from pyspark.sql import functions as F
    newer = a.withColumn("evaluated_at", F.lit(datetime(2030, 1, 1))).withColumn("effect", F.lit(1.0))
    latest = latest_evaluations(a.unionByName(newer), segment="all")
    assert latest.count() == 2 * 7 and latest.where("effect = 1.0").count() == 14

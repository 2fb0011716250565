"""Spark uplift metrics against scikit-uplift on the same predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklift.metrics import qini_auc_score, uplift_at_k as sk_uplift_at_k, uplift_auc_score, qini_curve

from marketlab.effect.metrics import (
    auc_scores, calibration_table, curve_points, poisson_replicates, uplift_at_k, uplift_metrics,
)


@pytest.fixture(scope="module")
def preds(spark):
    """4,000 rows with a real signal and many tied scores (rounded), as a tree model gives."""
    rng = np.random.default_rng(7)
    n = 4000
    x = rng.uniform(size=n)
    t = rng.integers(0, 2, size=n)
    y = (rng.uniform(size=n) < 0.1 + 0.15 * x * t).astype(int)
    score = np.round(x * 0.15 + rng.normal(0, 0.03, size=n), 2)
    pdf = pd.DataFrame({"id": np.arange(n), "score": score, "y": y, "t": t})
    return pdf, spark.createDataFrame(pdf).repartition(3)


def test_qini_and_uplift_auc_match_sklift(preds):
    pdf, sdf = preds
    row = auc_scores(sdf, "score", "y", "t").first()
    assert row["qini_auc"] == pytest.approx(qini_auc_score(pdf.y, pdf.score, pdf.t), rel=1e-9)
    assert row["uplift_auc"] == pytest.approx(uplift_auc_score(pdf.y, pdf.score, pdf.t), rel=1e-9)
    assert 0.05 < row["qini_auc"] < 1


def test_curve_points_match_sklift_qini_curve(preds):
    pdf, sdf = preds
    pts = curve_points(sdf, "score", "y", "t").orderBy("n").toPandas()
    x, q = qini_curve(pdf.y, pdf.score, pdf.t)
    np.testing.assert_allclose(pts["n"].to_numpy(), x[1:])
    np.testing.assert_allclose(pts["qini"].to_numpy(), q[1:], rtol=1e-12)


@pytest.mark.parametrize("strategy", ["by_group", "overall"])
@pytest.mark.parametrize("k", [0.1, 0.3])
def test_uplift_at_k_matches_sklift_with_ties(preds, strategy, k):
    pdf, sdf = preds
    got = uplift_at_k(sdf, "score", "y", "t", k, strategy, tiebreak_col="id").first()["uplift_at_k"]
    # sklift breaks ties by position (last first): rows are in id order.
    assert got == pytest.approx(sk_uplift_at_k(pdf.y, pdf.score, pdf.t, strategy=strategy, k=k), abs=1e-12)


def test_poisson_weights_are_deterministic_and_poisson(spark):
    df = spark.range(20000).withColumnRenamed("id", "rid")
    a = poisson_replicates(df, 3, 11, "rid").toPandas().sort_values(["_rep", "rid"]).reset_index(drop=True)
    b = poisson_replicates(df.repartition(5), 3, 11, "rid").toPandas().sort_values(["_rep", "rid"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    # Poisson(1): P(0) = e^-1, mean weight 1 over all rows (zeros dropped).
    per_rep = a.groupby("_rep")["_w"].agg(["count", "sum"])
    assert ((per_rep["count"] / 20000 - (1 - np.exp(-1))).abs() < 0.015).all()
    assert ((per_rep["sum"] / 20000 - 1).abs() < 0.03).all()


def test_bootstrap_ci_brackets_point_and_weights_of_one_are_unweighted(preds):
    pdf, sdf = preds
    m = uplift_metrics(sdf, "score", "y", "t", "id", ks=[0.3], bootstrap=30, seed=1)
    assert m["qini_auc"] == pytest.approx(qini_auc_score(pdf.y, pdf.score, pdf.t), rel=1e-9)
    assert m["uplift_at_30"] == pytest.approx(sk_uplift_at_k(pdf.y, pdf.score, pdf.t, strategy="by_group", k=0.3))
    for name in ("qini_auc", "uplift_auc", "uplift_at_30", "uplift_at_30_overall"):
        assert m[f"{name}_lo"] < m[name] < m[f"{name}_hi"], name
    assert m["qini_auc_hi"] - m["qini_auc_lo"] < 0.5


def test_calibration_table_observed_matches_pandas(preds):
    pdf, sdf = preds
    cal = calibration_table(sdf, "score", "y", "t", bins=4).toPandas()
    assert list(cal["bin"]) == [1, 2, 3, 4]
    assert cal["n_t"].sum() + cal["n_c"].sum() == len(pdf)
    # Highest predicted bin has the largest observed effect for this signal.
    assert cal["observed"].iloc[0] == cal["observed"].max()
    assert (cal["observed_lo"] < cal["observed"]).all() and (cal["observed"] < cal["observed_hi"]).all()


def _frame(spark, kind: str):
    rng = np.random.default_rng(11)
    n = 3000
    x, t = rng.uniform(size=n), rng.integers(0, 2, size=n)
    if kind == "binary":
        y = (rng.uniform(size=n) < 0.1 + 0.15 * x * t).astype(float)
    elif kind == "mostly_responders":  # control responders outnumber treated non-responders
        y = (rng.uniform(size=n) < 0.9 + 0.05 * t).astype(float)
    else:  # spend-like: zero-inflated, continuous
        y = np.where(rng.uniform(size=n) < 0.05 + 0.05 * t * x, rng.gamma(2.0, 50.0, size=n), 0.0)
    score = np.round(x * 0.2 + rng.normal(0, 0.05, size=n), 2)  # ties, as trees give
    return spark.createDataFrame(pd.DataFrame({"id": np.arange(n), "score": score, "y": y, "t": t})).repartition(3)


@pytest.mark.parametrize("kind", ["binary", "mostly_responders", "spend"])
def test_bootstrap_replicates_equal_the_spark_column_definitions(spark, kind):
    """The numpy replicate scorer = auc_scores / uplift_at_k on the same weighted replicates."""
    from marketlab.effect.metrics import REP, W, bootstrap_metrics, metric_names

    sdf, ks = _frame(spark, kind), [0.1, 0.3]
    got = bootstrap_metrics(sdf, "score", "y", "t", "id", ks, bootstrap=5, seed=3).toPandas().set_index(REP).sort_index()
    reps = poisson_replicates(sdf.select("id", "score", "y", "t"), 5, 3, "id")
    ref = auc_scores(reps, "score", "y", "t", W, [REP]).toPandas().set_index(REP)
    for k in ks:
        for strategy, suffix in (("by_group", ""), ("overall", "_overall")):
            u = uplift_at_k(reps, "score", "y", "t", k, strategy, "id", W, [REP]).toPandas().set_index(REP)
            ref[f"uplift_at_{int(k * 100)}{suffix}"] = u["uplift_at_k"]
    assert list(got.columns) == metric_names(ks) and len(got) == 5
    pd.testing.assert_frame_equal(got, ref[got.columns].sort_index(), rtol=1e-9, atol=1e-12, check_dtype=False)

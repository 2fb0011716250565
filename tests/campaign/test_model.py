"""Response models: the Spark partial-sum fit equals a pandas/numpy ridge solve; the effects it recovers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketlab.campaign import model as rm

pytestmark = pytest.mark.spark
ACTS = ["no_contact", "email"]


def _log(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    t = np.where(rng.random(n) < 0.5, "email", "no_contact")
    p = np.clip(0.3 + 0.1 * x1 + np.where(t == "email", 0.05 + 0.04 * x2, 0.0), 0, 1)
    ordered = rng.random(n) < p
    revenue = np.where(ordered, np.exp(3.0 + 0.3 * x1 + rng.normal(0, 0.5, n)), 0.0)
    return pd.DataFrame({"x1": x1, "x2": x2, "treatment": t, "ordered": ordered.astype(float), "revenue": revenue,
                         "profit": 0.3 * revenue - (t == "email") * 0.1, "weight": 2.0,
                         "_h": rng.integers(0, 2**62, n)})


def test_spark_fit_equals_numpy_weighted_ridge(spark):
    pdf = _log(3000)
    m = rm.fit(spark.createDataFrame(pdf).repartition(3), ACTS, ["x1", "x2"], bags=3, ridge=1.0, ridge_effect=5.0,
               seed=1)
    # The same normal equations in numpy, bag 1.
    z = (pdf[["x1", "x2"]].to_numpy() - pdf[["x1", "x2"]].mean().to_numpy()) / pdf[["x1", "x2"]].std(ddof=0).to_numpy()
    x = np.hstack([np.ones((len(pdf), 1)), z])
    xo = rm.order_design(x, pdf["treatment"].to_numpy(object), ACTS)
    w = rm.poisson_weights(pdf["_h"].to_numpy(), 3, 1)[:, 1]  # constant weights scale to 1
    pen = np.diag([0, 1, 1, 0, 5, 5.0])
    beta = np.linalg.solve(xo.T @ (w[:, None] * xo) + pen, xo.T @ (w * pdf["ordered"].to_numpy()))
    np.testing.assert_allclose(m.order[1], beta, rtol=1e-8, atol=1e-10)
    assert m.n_train == {"email": int((pdf.treatment == "email").sum()), "no_contact": int((pdf.treatment != "email").sum())}


def test_recovers_the_lift_and_its_heterogeneity(spark):
    pdf = _log(20000, seed=3)
    m = rm.fit(spark.createDataFrame(pdf), ACTS, ["x1", "x2"], bags=5, ridge=1.0, ridge_effect=1.0, seed=2)
    grid = pd.DataFrame({"x1": [0.0, 0.0], "x2": [-1.0, 1.0]})
    x = m.design(grid)
    lift = (m.p_order(x, "email") - m.p_order(x, "no_contact")).mean(axis=1)
    # True lift 0.05 + 0.04 * x2: 0.01 at x2 = -1, 0.09 at x2 = +1 (sampling noise ~0.01).
    assert lift[0] == pytest.approx(0.01, abs=0.025) and lift[1] == pytest.approx(0.09, abs=0.025)
    assert m.spend.mean(axis=0)[0] == pytest.approx(3.0 + np.log(1), abs=0.15)


def test_poisson_weights_have_mean_and_variance_one():
    w = rm.poisson_weights(np.arange(200000, dtype=np.uint64) * 7919, 2, 5)
    assert w.mean() == pytest.approx(1.0, abs=0.01) and w.var() == pytest.approx(1.0, abs=0.02)
    np.testing.assert_array_equal(w, rm.poisson_weights(np.arange(200000, dtype=np.uint64) * 7919, 2, 5))


def test_clv_weight_adds_its_term_to_the_objective_not_to_the_measured_profit(spark):
    pdf = _log(3000, seed=4)
    m = rm.fit(spark.createDataFrame(pdf), ACTS, ["x1", "x2"], bags=3, ridge=1.0, ridge_effect=5.0, seed=1)
    rng = np.random.default_rng(5)
    cust = spark.createDataFrame(pd.DataFrame({"customer_key": [f"k{i}" for i in range(50)],
                                               "x1": rng.normal(size=50), "x2": rng.normal(size=50),
                                               "delta_clv": rng.gamma(2.0, 40.0, 50)}))
    args = (m, ACTS, {"no_contact": 0.0, "email": 0.0}, 0.3, 1.0, "no_contact")  # a costly e-mail
    plain = rm.score(cust, *args).toPandas().set_index("customer_key").sort_index()
    with_clv = rm.score(cust, *args, clv_weight=0.5).toPandas().set_index("customer_key").sort_index()
    dclv = cust.toPandas().set_index("customer_key").sort_index()["delta_clv"]
    np.testing.assert_allclose(with_clv["inc_email"], plain["inc_email"] + 0.5 * plain["dp_email"] * dclv)
    np.testing.assert_allclose(np.stack(with_clv["bags_email"]), np.stack(plain["bags_email"]))
    assert (with_clv["inc_no_contact"] == 0).all()
    # The weight changes decisions: customers worth an e-mail only for their future value.
    assert ((with_clv["inc_email"] > 0) & (plain["inc_email"] <= 0)).sum() >= 10

    # Incremental revenue: order-probability difference x expected basket, no margin, no cost;
    # with no coupon, margin x revenue - contact cost is the bags' mean profit.
    np.testing.assert_allclose(0.3 * plain["rev_email"] - 1.0, np.stack(plain["bags_email"]).mean(axis=1), atol=1e-9)
    assert (plain["rev_no_contact"] == 0).all()

"""A wave's per-customer prediction of its assigned arm, in Spark, against numpy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketlab.campaign.plan import PREDICTION_COLS, assigned_prediction

pytestmark = pytest.mark.spark
ACTS = ["no_contact", "email", "email_coupon_5"]


def test_assigned_arm_prediction_equals_numpy_order_statistics(spark):
    rng = np.random.default_rng(7)
    n, bags = 40, 30
    pdf = pd.DataFrame({"customer_key": [f"k{i}" for i in range(n)], "arm": rng.choice(ACTS, n)})
    for a in ACTS:
        pdf[f"bags_{a}"] = [list(np.zeros(bags) if a == "no_contact" else rng.normal(1.0, 2.0, bags)) for _ in range(n)]
        pdf[f"rev_{a}"] = 0.0 if a == "no_contact" else rng.gamma(2.0, 3.0, n)
    got = (assigned_prediction(spark.createDataFrame(pdf), ACTS, 0.9).toPandas()
           .set_index("customer_key").loc[pdf["customer_key"]])
    b = np.stack([pdf.loc[i, f"bags_{pdf.loc[i, 'arm']}"] for i in range(n)])
    s = np.sort(b, axis=1)
    np.testing.assert_allclose(got["predicted_profit"], b.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(got["predicted_profit_low"], s[:, int(np.floor(0.05 * (bags - 1)))])
    np.testing.assert_allclose(got["predicted_profit_high"], s[:, int(np.ceil(0.95 * (bags - 1)))])
    np.testing.assert_allclose(got["predicted_revenue"], [pdf.loc[i, f"rev_{pdf.loc[i, 'arm']}"] for i in range(n)])
    nc = (pdf["arm"] == "no_contact").to_numpy()
    assert nc.any() and (got.loc[nc, PREDICTION_COLS].to_numpy() == 0).all()
    assert (got.loc[~nc, "predicted_profit_low"] < got.loc[~nc, "predicted_profit_high"]).all()


def test_a_wave_no_model_scored_predicts_nothing(spark):
    df = spark.createDataFrame(pd.DataFrame({"customer_key": ["a"], "arm": ["email"]}))
    row = assigned_prediction(df, ACTS, 0.9, predicted=False).first()
    assert [row[c] for c in PREDICTION_COLS] == [None] * 4

"""The Spark summary and scoring against pandas / lifetimes on a small hand-made order history."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from marketlab import constants as C
from marketlab.value import models as M
from marketlab.value import summary as S

D = dt.date


def _lines(spark, rows):
    pdf = pd.DataFrame(rows, columns=[C.CUSTOMER_ID, C.DATE, C.AMOUNT, C.IS_OUTLIER])
    return spark.createDataFrame(pdf, f"{C.CUSTOMER_ID} long, {C.DATE} date, {C.AMOUNT} double, {C.IS_OUTLIER} boolean")


ROWS = [
    # customer 1: three purchase days, two lines on the first one
    (1, D(2011, 1, 1), 10.0, False), (1, D(2011, 1, 1), 5.0, False), (1, D(2011, 1, 11), 20.0, False),
    (1, D(2011, 1, 31), 40.0, False),
    # customer 2: one purchase day only
    (2, D(2011, 1, 20), 7.0, False),
    # customer 3: a repeat purchase made only of an outlier line, and a return-like negative line
    (3, D(2011, 1, 5), 8.0, False), (3, D(2011, 1, 15), 9000.0, True), (3, D(2011, 1, 16), -8.0, False),
    # guests
    (None, D(2011, 1, 2), 3.0, False),
    # customer 4: buys after the end of the window only
    (4, D(2011, 2, 5), 11.0, False),
]


@pytest.fixture(scope="module")
def lines(spark):
    return _lines(spark, ROWS)


def test_summary_follows_the_lifetimes_convention(lines):
    days, dropped = S.order_days(lines, exclude_outliers=True)
    assert lines.agg(dropped).first()["dropped"].asDict() == {"guest": 1, "nonpositive": 1, "outlier": 1}
    got = S.summarise(days, D(2011, 2, 1)).toPandas().set_index(C.CUSTOMER_ID).sort_index()
    assert got.index.tolist() == [1, 2, 3]
    assert got.loc[1, [S.FREQUENCY, S.RECENCY, S.AGE, S.MONETARY, S.MEAN_VALUE]].tolist() == [2, 30, 31, 30.0, 25.0]
    assert got.loc[2, [S.FREQUENCY, S.RECENCY, S.AGE, S.MONETARY]].tolist() == [0, 0, 12, 0.0]
    assert got.loc[3, [S.FREQUENCY, S.RECENCY, S.AGE, S.MONETARY]].tolist() == [0, 0, 27, 0.0]
    # With outliers kept, customer 3's 9000 line is a repeat purchase.
    days_all, _ = S.order_days(lines, exclude_outliers=False)
    c3 = S.summarise(days_all, D(2011, 2, 1)).where(f"{C.CUSTOMER_ID} = 3").first()
    assert (c3[S.FREQUENCY], c3[S.MONETARY]) == (1, 9000.0)


def test_summary_matches_lifetimes(lines):
    utils = pytest.importorskip("lifetimes.utils", reason="lifetimes (the peer library) is not installed")
    days, _ = S.order_days(lines)
    tx = days.toPandas()
    tx = tx[pd.to_datetime(tx[C.DATE]) < pd.Timestamp("2011-02-01")]
    # lifetimes measures T to the last day observed (inclusive); ours to the exclusive end = one day more.
    ref = utils.summary_data_from_transaction_data(tx, C.CUSTOMER_ID, C.DATE, monetary_value_col="value",
                                                   observation_period_end="2011-01-31", freq="D")
    got = S.summarise(days, D(2011, 2, 1)).toPandas().set_index(C.CUSTOMER_ID).sort_index()
    np.testing.assert_allclose(got[S.FREQUENCY], ref["frequency"])
    np.testing.assert_allclose(got[S.RECENCY], ref["recency"])
    np.testing.assert_allclose(got[S.AGE], ref["T"] + 1)
    np.testing.assert_allclose(got[S.MONETARY], ref["monetary_value"])


def test_holdout_actuals_window(lines):
    days, _ = S.order_days(lines)
    got = {r[C.CUSTOMER_ID]: (r["actual_purchases_10"], r["actual_spend_10"])
           for r in S.holdout_actuals(days, D(2011, 1, 11), 10).collect()}
    # [Jan 11, Jan 21): customer 1's Jan 11 day and customer 2's Jan 20; customer 3's lines are dropped.
    assert got == {1: (1.0, 20.0), 2: (1.0, 7.0)}


def test_spark_scoring_equals_driver_numpy(spark):
    bg, gg = M.BGNBD(0.24, 4.4, 0.79, 2.4), M.GammaGamma(6.25, 3.74, 15.44)
    rng = np.random.default_rng(1)
    T = rng.integers(1, 60, 300).astype(float)
    x = rng.integers(0, 8, 300).astype(float)
    t_x = np.where(x > 0, np.floor(rng.uniform(0, 1, 300) * T), 0.0)
    mx = np.where(x > 0, rng.gamma(5, 5, 300), 0.0)
    pdf = pd.DataFrame({C.CUSTOMER_ID: np.arange(300), S.FREQUENCY: x, S.RECENCY: t_x, S.AGE: T, S.MONETARY: mx})
    got = S.score(spark.createDataFrame(pdf).repartition(3), bg, gg, 52, 4, 0.01, 0.5, extra_horizons=(13,)) \
        .toPandas().sort_values(C.CUSTOMER_ID)
    np.testing.assert_allclose(got[S.P_ALIVE], M.p_alive(bg, x, t_x, T))
    np.testing.assert_allclose(got[S.EXP_PURCHASES], M.expected_purchases(bg, 52, x, t_x, T))
    np.testing.assert_allclose(got[S.EXP_SPEND], M.expected_purchases(bg, 52, x, t_x, T) * M.expected_spend(gg, x, mx))
    np.testing.assert_allclose(got[S.CLV], M.discounted_clv(bg, gg, x, t_x, T, mx, 52, 4, 0.01, 0.5))
    np.testing.assert_allclose(got[f"{S.EXP_PURCHASES}_13"], M.expected_purchases(bg, 13, x, t_x, T))
    assert (got[S.CLV] < got[S.EXP_SPEND]).all()


def test_delta_clv_is_the_clv_of_one_more_purchase_on_the_last_day(spark):
    bg, gg = M.BGNBD(0.24, 4.4, 0.79, 2.4), M.GammaGamma(6.25, 3.74, 15.44)
    # Two customers alike but for recency (lapsed / recent), one single-purchase customer.
    pdf = pd.DataFrame({C.CUSTOMER_ID: [1, 2, 3], S.FREQUENCY: [5.0, 5.0, 0.0], S.RECENCY: [5.0, 59.0, 0.0],
                        S.AGE: [60.0, 60.0, 30.0], S.MONETARY: [20.0, 20.0, 0.0], S.MEAN_VALUE: [20.0, 20.0, 12.0]})
    got = S.delta_clv(spark.createDataFrame(pdf), bg, gg, 52, 4, 0.01, 0.5).toPandas().sort_values(C.CUSTOMER_ID)
    x, t_x, T, mx, v = (pdf[c].to_numpy(float) for c in (S.FREQUENCY, S.RECENCY, S.AGE, S.MONETARY, S.MEAN_VALUE))
    now = M.discounted_clv(bg, gg, x, t_x, T, mx, 52, 4, 0.01, 0.5)
    after = M.discounted_clv(bg, gg, x + 1, T, T, (mx * x + v) / (x + 1), 52, 4, 0.01, 0.5)
    np.testing.assert_allclose(got[S.CLV], now)
    np.testing.assert_allclose(got[S.DELTA_CLV], after - now)
    d = got.set_index(C.CUSTOMER_ID)[S.DELTA_CLV]
    # A purchase revives the lapsed customer (P(alive) jumps); the recent one was alive already.
    assert d[1] > d[2] > 0 and d[3] > 0

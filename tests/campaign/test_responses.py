"""Response checks: every bad-input case quarantined with its reason, exact accounting."""

from __future__ import annotations

import datetime as dt

import pytest

from marketlab import constants as C
from marketlab.campaign.params import CampaignParams
from marketlab.campaign.responses import check
from marketlab.privacy import customer_key

pytestmark = pytest.mark.spark
SECRET = "test-secret-0123456789abcdef0123456789"
T0 = dt.datetime(2011, 11, 1, 9)


def _frames(spark):
    from pyspark.sql import functions as F

    waves = spark.createDataFrame(
        [("shop_w1", 1, cid, arm, hold, 0.9, 0.05, 0.1, "targeted")
         for cid, arm, hold in [(1, "email", False), (2, "email", True), (3, "email_coupon_5", False),
                                (4, "no_contact", False), (5, "email", False), (6, "email", False),
                                (7, "email", False), (8, "email", False)]],
        "campaign_id string, wave int, customer_id long, arm string, holdout boolean, propensity double, "
        "p_none double, holdout_fraction double, design string")
    waves = waves.withColumn(C.CUSTOMER_KEY, customer_key("customer_id", SECRET)).drop("customer_id")
    rows = [  # campaign, customer, arm, holdout, coupon, ordered, revenue, line -> expected reason
        ("shop_w1", 1, "email", False, None, True, 50.0, 2),            # ok
        ("shop_w1", 2, "email", True, None, False, 0.0, 3),             # ok (held out)
        ("shop_w1", 3, "email_coupon_5", False, 5.0, True, 20.0, 4),    # ok: 5 means 5 %
        ("shop_w1", 4, "no_contact", False, None, False, 0.0, 5),       # ok
        ("shop_w9", 1, "email", False, None, True, 10.0, 6),            # unknown_campaign
        ("shop_w1", 99, "email", False, None, True, 10.0, 7),           # not_in_export
        ("shop_w1", 1, "email", False, None, True, 50.0, 8),            # duplicate_response
        ("shop_w1", 5, "email", False, None, True, -3.0, 9),            # negative_money
        ("shop_w1", 6, "email", False, 0.07, True, 10.0, 10),           # coupon_not_in_conf
        ("shop_w1", 7, "email_coupon_10", False, None, True, 10.0, 11),  # arm_not_planned
        ("shop_w1", 8, "email", False, None, False, 10.0, 12),          # revenue_without_order
    ]
    bronze = spark.createDataFrame(
        [(c, i, a, h, T0, lv, o, r, "f.csv", ln) for c, i, a, h, lv, o, r, ln in rows],
        f"campaign_id string, customer_id long, arm string, holdout boolean, sent_at timestamp, coupon_level double, "
        f"ordered boolean, revenue double, {C.SOURCE_FILE} string, {C.LINE} long")
    for col, typ in [("window_end", "timestamp"), ("featured_items", "string"), ("propensity", "double"),
                     ("sent", "boolean"), ("opened", "boolean"), ("clicked", "boolean"), ("coupon_cost", "double"),
                     ("contact_cost", "double")]:
        bronze = bronze.withColumn(col, F.lit(None).cast(typ))
    return waves, bronze


def test_every_bad_response_is_quarantined_with_its_reason(spark):
    waves, bronze = _frames(spark)
    p = CampaignParams()
    res = check(bronze, waves, p, SECRET)
    rej = {r[C.LINE]: r[C.REASON] for r in res.rejects.collect()}
    assert rej == {6: "unknown_campaign", 7: "not_in_export", 8: "duplicate_response", 9: "negative_money",
                   10: "coupon_not_in_conf", 11: "arm_not_planned", 12: "revenue_without_order"}
    assert res.counts["bronze"] == 11 and res.counts["silver"] == 4 and res.counts["rejected"] == 7
    assert res.counts["bronze"] == res.counts["silver"] + res.counts["rejected"]


def test_valid_responses_get_treatment_profit_and_realised_propensity(spark):
    waves, bronze = _frames(spark)
    p = CampaignParams()
    v = {r[C.LINE]: r for r in check(bronze, waves, p, SECRET).valid.collect()}
    sent1, held2, coupon3, none4 = v[2], v[3], v[4], v[5]
    assert sent1.treatment == "email" and sent1.sent
    assert sent1.profit == pytest.approx(p.margin * 50.0 - 0.0 - p.contact_cost)
    assert sent1.p_realised == pytest.approx(0.9 * (1 - 0.1))
    assert held2.treatment == "no_contact" and not held2.sent and held2.profit == 0.0
    assert held2.p_realised == pytest.approx(0.05 + 0.95 * 0.1)
    assert coupon3.coupon_level == pytest.approx(0.05)
    assert coupon3.profit == pytest.approx(p.margin * 20 - 0.05 * 20 - p.contact_cost)
    assert none4.treatment == "no_contact" and none4.contact_cost == 0.0

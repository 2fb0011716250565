"""Gold feature transforms on small hand-made frames (exact values, point in time)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pytest
from chispa import assert_df_equality

from marketlab.errors import BadInputError
from marketlab.features import build
from marketlab.privacy import customer_key

SALT = "s"
SALES_SCHEMA = ("invoice_no string, stock_code string, description string, quantity int, invoice_ts timestamp, "
                "date date, unit_price double, amount double, customer_id long, country string, warehouse string, "
                "is_outlier boolean")
RET_SCHEMA = ("invoice_no string, stock_code string, description string, quantity int, invoice_ts timestamp, date date, "
              "unit_price double, amount double, customer_id long, country string, warehouse string, "
              "original_invoice_no string")


def _sale(inv, code, qty, day, price, cust, wh="UK", outlier=False):
    ts = dt.datetime(2011, 3, day, 10)
    return (inv, code, code.lower(), qty, ts, ts.date(), price, qty * price, cust, "United Kingdom", wh, outlier)


def _ret(inv, code, qty, day, price, cust, wh="UK"):
    ts = dt.datetime(2011, 3, day, 12)
    return (inv, code, code.lower(), qty, ts, ts.date(), price, qty * price, cust, "United Kingdom", wh, None)


@pytest.fixture(scope="module")
def frames(spark):
    sales = spark.createDataFrame([
        _sale("1", "A", 10, 1, 1.0, 100), _sale("1", "B", 2, 1, 5.0, 100),
        _sale("2", "A", 5, 4, 1.0, 100),
        _sale("3", "A", 1, 2, 2.0, 200), _sale("4", "B", 3, 3, 5.0, None, wh="EU"),
        _sale("9", "A", 50, 20, 1.0, 100),  # after the cutoff used below
    ], SALES_SCHEMA)
    rets = spark.createDataFrame([_ret("C1", "A", 4, 5, 1.0, 100), _ret("C2", "A", 1, 2, 2.0, 200),
                                  _ret("C9", "B", 2, 21, 5.0, 100)], RET_SCHEMA)
    return sales, rets


def key(cid):
    return hmac.new(SALT.encode(), str(cid).encode(), hashlib.sha256).hexdigest()[:16]


def test_customer_key_is_contract_hash(spark):
    import pyspark.sql.functions as F

    got = spark.range(1).select(customer_key(F.lit(17850), SALT)).first()[0]
    assert got == key(17850)


def test_interactions_net_strength(frames):
    sales, rets = frames
    got = {(r["customer_key"], r["item_id"]): (r["strength"], r["n_purchases"]) for r in
           build.interactions(sales, rets, SALT).collect()}
    # 100 x A: 10 + 5 + 50 - 4 = 61 over 3 invoices; 100 x B: 2 - 2 = 0 -> dropped; 200 x A: 1 - 1 = 0 -> dropped
    assert got == {(key(100), "A"): (61.0, 3)}


def test_item_features(frames):
    sales, rets = frames
    got = {r["item_id"]: r for r in build.item_features(sales, rets).collect()}
    a = got["A"]
    assert (a["n_orders"], a["n_customers"], a["units"], a["returned_units"]) == (4, 2, 66, 5)
    assert a["return_rate"] == pytest.approx(5 / 66) and a["price_median"] == pytest.approx(1.0)
    assert (a["first_sold"], a["last_sold"]) == (dt.date(2011, 3, 1), dt.date(2011, 3, 20))
    assert got["B"]["n_customers"] == 1  # the guest does not count as a customer


def test_demand_daily_zero_filled_and_clipped(frames):
    sales, rets = frames
    d = build.demand_daily(sales, rets, end_date=dt.date(2011, 3, 6))
    rows = {(r["item_id"], r["warehouse"], r["date"].day): r for r in d.collect()}
    # A/UK from its first sale (1st) to the end date (6th): 6 days; B/UK 1..6; B/EU 3..6
    assert len([k for k in rows if k[:2] == ("A", "UK")]) == 6 and len([k for k in rows if k[:2] == ("B", "EU")]) == 4
    assert [rows[("A", "UK", day)]["units"] for day in range(1, 7)] == [10.0, 0.0, 0.0, 5.0, 0.0, 0.0]
    # day 2: one sold, one returned -> 0; day 5: 4 returned, nothing sold -> clipped at 0
    assert rows[("A", "UK", 5)]["returned_units"] == 4.0 and rows[("A", "UK", 5)]["units"] == 0.0
    r = rows[("A", "UK", 5)]
    assert (r["dow"], r["month"], r["is_weekend"]) == (7, 3, True)  # 2011-03-05 was a Saturday
    wk = build.demand_weekly(d).where("item_id = 'A' AND warehouse = 'UK'").orderBy("week_start").collect()
    assert [(w["week_start"], w["units"]) for w in wk] == [(dt.date(2011, 2, 28), 15.0)]


def test_demand_calendar_capped(frames):
    """One far date would zero-fill every item to it: past the cap that is one error, not a table."""
    sales, rets = frames
    end = dt.date(2011, 3, 6)
    assert build.demand_daily(sales, rets, end_date=end, max_calendar_days=6).count() == 6 + 6 + 4
    with pytest.raises(BadInputError, match=r"span 6 days \(2011-03-01 to 2011-03-06\), more than "
                                            r"jobs.features.demand_calendar_max_days=5"):
        build.demand_daily(sales, rets, end_date=end, max_calendar_days=5)
    ts = dt.datetime(2030, 1, 1, 10)
    far = sales.unionByName(sales.sparkSession.createDataFrame(
        [("99", "B", "b", 1, ts, ts.date(), 5.0, 5.0, 300, "United Kingdom", "EU", False)], SALES_SCHEMA))
    # Uncapped, the three pairs each run to 2030-01-01: 6,882 + 6,882 + 6,880 rows instead of 16.
    days = (ts.date() - dt.date(2011, 3, 1)).days + 1
    assert build.demand_daily(far, rets).count() == days * 2 + (days - 2) == 20_644
    with pytest.raises(BadInputError, match="span 6,882 days \\(2011-03-01 to 2030-01-01\\)"):
        build.demand_daily(far, rets, max_calendar_days=3660)


def test_customer_features_values(frames):
    sales, rets = frames
    cf = {r["customer_key"]: r for r in build.customer_features(sales, rets, dt.date(2011, 3, 10), SALT, [7, 30]).collect()}
    assert set(cf) == {key(100), key(200)}  # the guest is excluded
    c = cf[key(100)]
    assert (c["recency_days"], c["frequency"], c["tenure_days"]) == (6, 2, 9)
    assert c["monetary"] == pytest.approx(10 + 10 + 5 - 4)  # gross 25 minus the refund 4
    assert c["orders_7d"] == 1 and c["orders_30d"] == 2 and c["revenue_7d"] == pytest.approx(5.0)
    assert c["return_rate"] == pytest.approx(4 / 17) and c["avg_basket_items"] == pytest.approx(1.5)
    assert (c["r_score"], c["f_score"], c["m_score"]) == (5, 5, 5)
    assert (cf[key(200)]["r_score"], cf[key(200)]["f_score"]) == (1, 1)


def test_customer_features_point_in_time(spark, frames):
    """Features as of D do not change when rows on or after D are added or altered."""
    sales, rets = frames
    cutoff = dt.date(2011, 3, 10)
    before = build.customer_features(sales, rets, cutoff, SALT)
    later_sales = sales.unionByName(spark.createDataFrame(
        [_sale("10", "B", 1000, 10, 9.0, 100), _sale("11", "C", 7, 25, 1.0, 300)], SALES_SCHEMA))
    later_rets = rets.unionByName(spark.createDataFrame([_ret("C10", "A", 10, 10, 1.0, 200)], RET_SCHEMA))
    after = build.customer_features(later_sales, later_rets, cutoff, SALT)
    assert_df_equality(before, after, ignore_row_order=True, ignore_nullable=True)


def test_sequences_in_time_order(frames):
    sales, _ = frames
    got = {r["customer_key"]: r for r in build.customer_sequences(sales, SALT).collect()}
    c = got[key(100)]
    assert [b["invoice_no"] for b in c["baskets"]] == ["1", "2", "9"]
    assert c["item_sequence"] == ["A", "B", "A", "A"] and c["n_baskets"] == 3
    assert build.customer_sequences(sales, SALT, max_baskets=1).where(f"customer_key = '{key(100)}'").first()["item_sequence"] == ["A"]


def test_table_names_are_catalog_names(settings):
    from marketlab.features.params import FeaturesParams

    p = FeaturesParams()
    names = [v for k, v in p.model_dump().items() if k.endswith("_table")]
    assert len(names) == 9 and [t for t in names if t not in settings.catalog] == []

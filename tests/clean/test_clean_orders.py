"""Order-line rules on small hand-made frames: routing, descriptions, links, outliers."""

from __future__ import annotations

import datetime as dt

import pytest

from marketlab.clean.audit import Accounting, check_accounting
from marketlab.clean.orders import canonical_descriptions, clean_orders, route_orders
from marketlab.clean.params import OrderRules, OutlierRule
from marketlab.errors import GateFailedError

SCHEMA = ("invoice_no string, stock_code string, description string, quantity int, invoice_date timestamp, "
          "unit_price double, customer_id long, country string, _source_file string, _line long, _batch_id string")


def T(day, hour=10):
    return dt.datetime(2011, 1, day, hour)


ROWS = [
    # line, invoice, code, description, qty, ts, price, customer, country
    (2, "500001", "85123A", "HEART HOLDER ", 6, T(3), 2.55, 17850, "United Kingdom"),
    (3, "500001", "85123A", "HEART HOLDER ", 6, T(3), 2.55, 17850, "United Kingdom"),  # exact duplicate
    (4, "500002", "85123A", "HEART HOLDER", 2, T(5), 2.55, 17850, "France"),
    (5, "C500003", "85123A", "HEART HOLDER", -3, T(6), 2.55, 17850, "France"),  # return, links to 500002
    (6, "500004", "POST", "POSTAGE", 1, T(5), 18.0, 17850, "France"),  # non-product
    (7, "A500005", "B", "Adjust bad debt", 1, T(7), -11062.06, None, "United Kingdom"),  # bad debt
    (8, "500006", "22423", None, -20, T(8), 0.0, None, "United Kingdom"),  # stock write-off
    (9, "500007", "22423", "CAKESTAND", 1, T(8), 0.0, 12346, "United Kingdom"),  # free line
    (10, "500008", "22423", "REGENCY CAKESTAND", 4, T(9), 12.75, None, "Unspecified"),  # guest sale: kept
    (11, "C500009", "22423", "REGENCY CAKESTAND", -1, T(9), 12.75, None, "Unspecified"),  # guest return: unlinked
]


@pytest.fixture(scope="module")
def bronze(spark):
    return spark.createDataFrame([(*r[1:], "f.csv", r[0], "b") for r in ROWS], SCHEMA)


RULES = OrderRules(warehouses={"United Kingdom": "UK", "France": "EU"}, default_warehouse="INTL")


def test_routes(bronze):
    got = {r["_line"]: (r["_route"], r["_reason"]) for r in route_orders(bronze, RULES).collect()}
    assert got == {2: ("sale", "sale"), 3: ("exclude", "duplicate"), 4: ("sale", "sale"), 5: ("return", "cancellation"),
                   6: ("adjustment", "non_product"), 7: ("adjustment", "bad_debt"),
                   8: ("exclude", "non_positive_quantity"), 9: ("exclude", "non_positive_price"),
                   10: ("sale", "sale"), 11: ("return", "cancellation")}


def test_clean_orders_outputs_and_accounting(bronze):
    co = clean_orders(bronze, RULES)
    sales = {r["_line"]: r for r in co.order_lines.collect()}
    rets = {r["_line"]: r for r in co.returns.collect()}
    adj = {r["_line"]: r for r in co.adjustments.collect()}
    audit = co.audit.collect()
    excluded = [r for r in audit if r["action"] == "excluded"]
    assert len(bronze.collect()) == len(sales) + len(rets) + len(adj) + len(excluded)
    assert sorted(sales) == [2, 4, 10] and sorted(rets) == [5, 11] and sorted(adj) == [6, 7]
    assert sales[2]["description"] == "HEART HOLDER" and sales[2]["warehouse"] == "UK" and sales[4]["warehouse"] == "EU"
    assert sales[10]["customer_id"] is None and sales[10]["warehouse"] == "INTL"
    assert sales[10]["description"] == "REGENCY CAKESTAND"
    assert sales[2]["amount"] == pytest.approx(6 * 2.55) and sales[2]["date"] == dt.date(2011, 1, 3)
    assert rets[5]["quantity"] == 3 and rets[5]["original_invoice_no"] == "500002"  # latest earlier sale
    assert rets[11]["original_invoice_no"] is None
    assert adj[7]["kind"] == "bad_debt" and adj[6]["kind"] == "non_product"
    reasons = sorted((r["action"], r["reason"], r["_line"]) for r in audit)
    assert reasons == [("altered", "description_trimmed", 2), ("excluded", "duplicate", 3),
                       ("excluded", "non_positive_price", 9), ("excluded", "non_positive_quantity", 8)]
    co.routed.unpersist()


def test_canonical_description_most_frequent_then_alphabetical(spark):
    df = spark.createDataFrame([("1", "B "), ("1", "B"), ("1", "A"), ("2", "Y"), ("2", "X"), ("3", None)],
                               "stock_code string, description string")
    got = {r[0]: r[1] for r in canonical_descriptions(df).collect()}
    assert got == {"1": "B", "2": "X"}


def test_iqr_outlier_flag(spark):
    from marketlab.clean.orders import flag_outliers

    rows = [("i", q) for q in [1, 1, 2, 2, 2, 3, 3, 4, 4, 5, 500]] + [("few", 1000)]
    df = spark.createDataFrame(rows, "stock_code string, quantity int")
    lin = {(r[0], r[1]): r["is_outlier"] for r in flag_outliers(df, OrderRules(outliers=OutlierRule(log_scale=False))).collect()}
    # q1=2, q3=4 -> limit 4 + 3*2 = 10; the item with one line is never flagged
    assert [k for k, v in lin.items() if v] == [("i", 500)]


def test_accounting_imbalance_fails_the_gate():
    check_accounting(Accounting("bronze.orders", 10, {"silver.order_lines": 7}, {"duplicate": 3}))
    with pytest.raises(GateFailedError, match=r"does not balance.*difference 1"):
        check_accounting(Accounting("bronze.orders", 10, {"silver.order_lines": 6}, {"duplicate": 3}))

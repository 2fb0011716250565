"""Strict typing at ingest: each accepted or rejected string through the real Spark typing.

Every case is asserted with its value (or its reason); accepted numbers are cross-checked
against Python's ``decimal.Decimal`` / ``int`` on the same string, and every string the
grammar rejects is one Python either rejects too or that docs/CONTRACTS.md ("Ingest
typing") excludes on purpose.
"""

from __future__ import annotations

import datetime as dt
import gzip
import math
from decimal import Decimal, InvalidOperation

import pytest
from pyspark.sql import functions as F

from conftest import DATA, ROOT, make_settings
from marketlab.config import load_settings
from marketlab.ingest.params import TimestampBounds
from marketlab.ingest.parse import bound_timestamps, parse_table, type_columns
from marketlab.ingest.run import run as ingest
from marketlab.ingest.schemas import CanonicalField
from marketlab.tables import Lake

OK = None  # reason of an accepted value

DOUBLE_CASES = [
    ("2.50", 2.5, OK), ("3", 3.0, OK), ("-1.5", -1.5, OK), ("+2.5", 2.5, OK), ("007.5", 7.5, OK),
    ("1e3", 1000.0, OK), ("1.5E-2", 0.015, OK), ("  2.5  ", 2.5, OK), ("0.1", 0.1, OK),
    ("1.7976931348623157e308", 1.7976931348623157e308, OK), ("1e-400", 0.0, OK),
    ("£2.50", None, "unparseable_double:x"), ("$3", None, "unparseable_double:x"),
    ("2,5", None, "unparseable_double:x"), ("2.5d", None, "unparseable_double:x"),
    ("1f", None, "unparseable_double:x"), ("3L", None, "unparseable_double:x"),
    ("0x1p3", None, "unparseable_double:x"), ("0x10", None, "unparseable_double:x"),
    ("NaN", None, "unparseable_double:x"), ("nan", None, "unparseable_double:x"),
    ("Infinity", None, "unparseable_double:x"), ("-Infinity", None, "unparseable_double:x"),
    ("inf", None, "unparseable_double:x"), (".5", None, "unparseable_double:x"),
    ("5.", None, "unparseable_double:x"), ("1_000", None, "unparseable_double:x"),
    ("\u0661\u0662", None, "unparseable_double:x"), ("2.5.1", None, "unparseable_double:x"),
    ("1e", None, "unparseable_double:x"), ("e3", None, "unparseable_double:x"),
    ("--1", None, "unparseable_double:x"), ("+-1", None, "unparseable_double:x"),
    ("1 000", None, "unparseable_double:x"), ("abc", None, "unparseable_double:x"),
    ("1e400", None, "out_of_range_double:x"), ("-1e309", None, "out_of_range_double:x"),
]

INT_CASES = [
    ("6", 6, OK), ("-3", -3, OK), ("+4", 4, OK), ("007", 7, OK), ("2147483647", 2147483647, OK),
    ("-2147483648", -2147483648, OK),
    ("6.0", None, "unparseable_int:x"), ("6.5", None, "unparseable_int:x"), ("1e3", None, "unparseable_int:x"),
    ("3L", None, "unparseable_int:x"), ("0x10", None, "unparseable_int:x"), ("6,0", None, "unparseable_int:x"),
    ("1_000", None, "unparseable_int:x"), ("\u0661\u0662", None, "unparseable_int:x"),
    ("2147483648", None, "out_of_range_int:x"), ("-2147483649", None, "out_of_range_int:x"),
]

LONG_CASES = [
    ("9223372036854775807", 2**63 - 1, OK), ("-9223372036854775808", -(2**63), OK),
    ("9007199254740993", 2**53 + 1, OK),
    ("9223372036854775808", None, "out_of_range_long:x"), ("-9223372036854775809", None, "out_of_range_long:x"),
    ("1.0", None, "unparseable_long:x"), ("5L", None, "unparseable_long:x"),
]

ID_CASES = [
    ("17850", 17850, OK), ("17850.0", 17850, OK), ("17850.00", 17850, OK),
    ("9007199254740993", 2**53 + 1, OK), ("9007199254740993.0", 2**53 + 1, OK),
    ("9223372036854775807", 2**63 - 1, OK),
    ("9223372036854775808", None, "out_of_range_id:x"), ("9223372036854775808.0", None, "out_of_range_id:x"),
    ("17850.5", None, "unparseable_id:x"), ("17850.", None, "unparseable_id:x"),
    ("1.785e4", None, "unparseable_id:x"), ("17850L", None, "unparseable_id:x"),
    ("0x45BA", None, "unparseable_id:x"), ("17850.0.0", None, "unparseable_id:x"),
]

# What Python accepts and the grammar rejects on purpose (docs/CONTRACTS.md, "Ingest typing").
DELIBERATE = {".5", "5.", "17850.", "1.785e4", "1_000", "\u0661\u0662"}


def _type(spark, ftype: str, values: list[str]) -> dict[str, tuple[object, str | None]]:
    """raw -> (typed value, reason) through :func:`type_columns` with one field ``x``."""
    df = spark.createDataFrame([(i + 2, v) for i, v in enumerate(values)], "_line long, raw string")
    out = type_columns(df, {"x": F.col("raw")}, [CanonicalField("x", ftype)], "yyyy-MM-dd HH:mm:ss", [])
    rows = {r._line: (r.x, r.reason) for r in out.collect()}
    return {v: rows[i + 2] for i, v in enumerate(values)}


def _python(ftype: str, text: str):
    """The same string read by Python: an exact number, or None where Python refuses it."""
    s = text.strip()
    try:
        if ftype == "double":
            d = Decimal(s)
            return float(d) if d.is_finite() else None
        if ftype == "id":
            d = Decimal(s)
            return int(d) if d.is_finite() and d == d.to_integral_value() else None
        return int(s)
    except (InvalidOperation, ValueError):
        return None


@pytest.mark.parametrize("ftype,cases", [("double", DOUBLE_CASES), ("int", INT_CASES), ("long", LONG_CASES),
                                         ("id", ID_CASES)])
def test_numbers_typed_strictly_and_exactly(spark, ftype, cases):
    got = _type(spark, ftype, [raw for raw, _, _ in cases])
    for raw, value, reason in cases:
        assert got[raw] == (value, reason), raw
        py = _python(ftype, raw)
        if reason is None:
            assert py == value and type(py) is type(value), raw  # exact: 2**53 + 1 stays itself
        elif reason.startswith("out_of_range"):
            limit = {"int": 2**31, "long": 2**63, "id": 2**63}.get(ftype)
            assert (py is None or math.isinf(py)) if ftype == "double" else not -limit <= py < limit, raw
        else:
            assert py is None or raw.strip() in DELIBERATE, raw


def test_empty_is_missing_not_unparseable(spark):
    df = spark.createDataFrame([(2, ""), (3, "   "), (4, None)], "_line long, raw string")
    out = type_columns(df, {"x": F.col("raw")}, [CanonicalField("x", "double", required=True)], "yyyy", [])
    assert [r.reasons for r in out.orderBy("_line").collect()] == [["missing:x"]] * 3


def test_typed_sources_integral_and_finite(spark):
    """Parquet keeps its own types: a fractional id / int must be integral, a double finite."""
    rows = spark.createDataFrame(
        [(1, 17850.0, 6.0, 2.5, 7), (2, 17850.5, 6.5, float("nan"), 2**31 - 1), (3, 1e19, 3.0, float("inf"), 2**31),
         (4, 9007199254740992.0, 2.0, 1.0, -(2**31))],
        "_line long, cid double, qty double, price double, visits long")
    fields = [CanonicalField("customer_id", "id"), CanonicalField("quantity", "int"),
              CanonicalField("unit_price", "double"), CanonicalField("visits", "int")]
    out = parse_table(rows, {"customer_id": "cid", "quantity": "qty", "unit_price": "price", "visits": "visits"},
                      fields)
    got = {r._line: (r.customer_id, r.quantity, r.unit_price, r.visits, r.reasons) for r in out.collect()}
    assert got == {
        1: (17850, 6, 2.5, 7, []),
        2: (None, None, None, 2**31 - 1,
            ["unparseable_id:customer_id", "unparseable_int:quantity", "unparseable_double:unit_price"]),
        3: (None, 3, None, None,
            ["out_of_range_id:customer_id", "out_of_range_double:unit_price", "out_of_range_int:visits"]),
        4: (2**53, 2, 1.0, -(2**31), []),
    }


TS_CASES = [
    ("2011-12-09 12:50:00", OK), ("2000-01-01 00:00:00", OK), ("2024-06-02 12:00:00", OK),
    ("1999-12-31 23:59:59", "out_of_range_timestamp:t"), ("2024-06-02 12:00:01", "out_of_range_timestamp:t"),
    ("2030-01-01 00:00:00", "out_of_range_timestamp:t"), ("0000-01-01 00:00:00", "out_of_range_timestamp:t"),
    ("0001-01-01 00:00:00", "out_of_range_timestamp:t"), ("9999-12-31 23:59:59", "out_of_range_timestamp:t"),
    ("-0001-01-01 00:00:00", "out_of_range_timestamp:t"), ("2011-13-01 00:00:00", "unparseable_timestamp:t"),
]


def test_timestamps_bounded(spark):
    values = [raw for raw, _ in TS_CASES] + ["2011-12-09 12:50:00"]
    df = spark.createDataFrame([(i + 2, v, "oops" if i == len(values) - 1 else "7") for i, v in enumerate(values)],
                               "_line long, t string, n string")
    fields = [CanonicalField("t", "timestamp"), CanonicalField("n", "int")]
    typed = type_columns(df, {"t": F.col("t"), "n": F.col("n")}, fields, "yyyy-MM-dd HH:mm:ss", [], keep=("_line",))
    window = TimestampBounds(min=dt.date(2000, 1, 1), max_days_ahead=1).window(dt.datetime(2024, 6, 1, 12))
    assert window == (dt.datetime(2000, 1, 1), dt.datetime(2024, 6, 2, 12))
    # (typed values not collected: Python's datetime has no year 0 or -1)
    bounded = bound_timestamps(typed, fields, window).select("_line", "reason", "reasons")
    out = {r._line: (r.reason, r.reasons) for r in bounded.collect()}
    for i, (raw, reason) in enumerate(TS_CASES):
        assert out[i + 2] == (reason, [reason] if reason else []), raw
    # A record keeps every reason it has, the field rules' first.
    assert out[len(values) + 1] == ("unparseable_int:n", ["unparseable_int:n"])


def test_timestamp_bounds_from_conf():
    st = load_settings(ROOT / "conf" / "test.yaml", ["jobs.ingest.timestamp_bounds.min=2005-06-01",
                                                     "jobs.ingest.timestamp_bounds.max_days_ahead=0"])
    assert st.jobs.ingest.timestamp_bounds == TimestampBounds(min=dt.date(2005, 6, 1), max_days_ahead=0)
    assert load_settings(ROOT / "conf" / "test.yaml").jobs.ingest.timestamp_bounds == TimestampBounds()
    # bad values: tests/test_config.py


def test_fuzz_defects_quarantined_through_ingest(spark, tmp_path):
    """The fuzz run's records, end to end: rejected with a reason, or loaded exactly."""
    with gzip.open(DATA / "online_retail/online_retail.csv.gz", "rt", encoding="utf-8") as fh:
        header = next(fh).rstrip("\n")
    good = "536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,{cid},United Kingdom"
    lines = [
        header,
        good.format(cid="9007199254740993"),                                   # 2: 2^53 + 1, exact
        good.format(cid="17850.0"),                                            # 3
        '536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,"2,5",17850.0,United Kingdom',
        "536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,£2.50,17850.0,United Kingdom",
        "536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.5d,17850.0,United Kingdom",
        "536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,0x1p3,17850.0,United Kingdom",
        good.format(cid="9223372036854775808"),                                # 8: 2^63
        good.format(cid="17850.5"),                                            # 9
        "536365,85123A,WHITE HANGING HEART,6,2030-01-01 08:26:00,2.55,17850.0,United Kingdom",
        "536365,85123A,WHITE HANGING HEART,6,0001-01-01 00:00:00,2.55,17850.0,United Kingdom",
        "536365,85123A,WHITE HANGING HEART,3L,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
    ]
    path = tmp_path / "orders.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    lake = Lake(spark, make_settings(tmp_path, [
        f"sources.online_retail.path={path}", "jobs.ingest.sources=[online_retail]",
        "sources.online_retail.max_reject_fraction=1.0"]))
    res = ingest(lake, lake.settings.jobs.ingest).files[0]
    assert (res.status, res.records, res.bronze_rows, res.rejected_rows) == ("ok", 11, 2, 9)
    bronze = {r._line: r.customer_id for r in lake.read("bronze.orders").collect()}
    assert bronze == {2: 9007199254740993, 3: 17850}
    rejects = {r._line: r.reasons for r in lake.read("bronze._rejects").collect()}
    assert rejects == {
        4: ["unparseable_double:unit_price"], 5: ["unparseable_double:unit_price"],
        6: ["unparseable_double:unit_price"], 7: ["unparseable_double:unit_price"],
        8: ["out_of_range_id:customer_id"], 9: ["unparseable_id:customer_id"],
        10: ["out_of_range_timestamp:invoice_date"], 11: ["out_of_range_timestamp:invoice_date"],
        12: ["unparseable_int:quantity"],
    }
    assert res.rejected_by_reason == {"unparseable_double:unit_price": 4, "out_of_range_id:customer_id": 1,
                                      "unparseable_id:customer_id": 1, "out_of_range_timestamp:invoice_date": 2,
                                      "unparseable_int:quantity": 1}

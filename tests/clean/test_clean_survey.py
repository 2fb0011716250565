"""Campaign and session rules on small hand-made frames."""

from __future__ import annotations

import pytest

from marketlab.clean.params import CampaignRules, SessionRules
from marketlab.clean.survey import clean_campaign, clean_sessions

CAMPAIGN_SCHEMA = ("recency int, history_segment string, history double, mens int, womens int, zip_code string, "
                   "newbie int, channel string, segment string, visit int, conversion int, spend double, "
                   "_source_file string, _line long, _batch_id string")


def _campaign(spark, rows):
    return spark.createDataFrame([(*r, "f.csv", line, "b") for line, r in rows], CAMPAIGN_SCHEMA)


def test_campaign_rules(spark):
    bronze = _campaign(spark, [
        (2, (10, "2) $100 - $200", 142.4, 1, 0, "Surburban", 0, "Phone", "Womens E-Mail", 0, 0, 0.0)),
        (3, (6, "7) $1,000 +", 1500.0, 1, 1, "Rural", 1, "Web", "No E-Mail", 1, 1, 29.99)),
        (4, (6, "garbage", 10.0, 1, 1, "Urban", 1, "Web", "Mens E-Mail", 0, 0, 0.0)),
        (5, (6, "1) $0 - $100", 10.0, 1, 1, "Urban", 1, "Web", "SMS", 0, 0, 0.0)),
    ])
    silver, audit = clean_campaign(bronze, CampaignRules())
    got = {r["customer_id"]: r for r in silver.collect()}
    assert sorted(got) == [1, 2, 3]  # line - 1; the unknown arm "SMS" is excluded
    assert got[1]["zip_code"] == "Suburban" and got[1]["treatment"] == "Womens E-Mail" and got[1]["history_bin"] == 2
    assert got[2]["history_bin"] == 7 and got[2]["spend"] == pytest.approx(29.99)
    assert got[3]["history_bin"] is None
    a = {(r["action"], r["reason"]): r for r in audit.collect()}
    assert set(a) == {("excluded", "unknown_treatment"), ("altered", "fix_zip_code"), ("altered", "history_bin_unparsed")}
    assert a[("altered", "fix_zip_code")]["detail"] == "zip_code: Surburban -> Suburban"
    assert a[("altered", "fix_zip_code")][ "_line"] == 2
    assert '"segment":"SMS"' in a[("excluded", "unknown_treatment")]["record"]


def test_campaign_fix_on_unknown_column_is_a_clear_error(spark):
    bronze = _campaign(spark, [(2, (1, "1) $0 - $100", 1.0, 1, 0, "Urban", 0, "Web", "No E-Mail", 0, 0, 0.0))])
    with pytest.raises(ValueError, match="value_fixes: column 'zip'"):
        clean_campaign(bronze, CampaignRules(value_fixes={"zip": {"a": "b"}}))


SESSION_COLS = ["administrative", "administrative_duration", "informational", "informational_duration",
                "product_related", "product_related_duration", "bounce_rates", "exit_rates", "page_values",
                "special_day", "month", "operating_systems", "browser", "region", "traffic_type", "visitor_type",
                "weekend", "revenue"]
SESSION_SCHEMA = ("administrative int, administrative_duration double, informational int, informational_duration double, "
                  "product_related int, product_related_duration double, bounce_rates double, exit_rates double, "
                  "page_values double, special_day double, month string, operating_systems int, browser int, region int, "
                  "traffic_type int, visitor_type string, weekend boolean, revenue boolean, _source_file string, "
                  "_line long, _batch_id string")


def test_session_rules(spark):
    tail = (0.0, 0.0, "June", 1, 1, 1, 1, "Returning_Visitor", False)
    rows = [
        (1, 10.0, 0, 0.0, 3, 50.0, 0.0, 0.1, *tail, True, "f", 2, "b"),
        (1, -1.0, 0, -1.0, 1, -1.0, 0.2, 0.2, 0.0, 0.0, "Mar", 1, 1, 1, 1, "New_Visitor", True, False, "f", 3, "b"),
        (None, None, None, None, None, None, None, None, 0.0, 0.0, "Mar", 2, 2, 2, 1, "Returning_Visitor", False, False,
         "f", 4, "b"),
    ]
    silver, audit = clean_sessions(spark.createDataFrame(rows, SESSION_SCHEMA), SessionRules())
    got = {r["session_id"]: r for r in silver.collect()}
    assert sorted(got) == [1, 2]
    assert got[1]["month"] == "Jun" and got[1]["label"] == 1 and got[1]["revenue"] is True
    assert got[2]["administrative_duration"] is None and got[2]["product_related_duration"] is None
    assert got[2]["administrative"] == 1 and got[2]["label"] == 0
    a = sorted((r["action"], r["reason"], r["_line"], r["detail"]) for r in audit.collect())
    assert a == [("altered", "fix_month", 2, "month: June -> Jun"),
                 ("altered", "sentinel_to_null", 3, "administrative_duration,informational_duration,product_related_duration"),
                 ("excluded", "all_missing", 4, "all of " + ",".join(SessionRules().all_missing_columns) + " null")]

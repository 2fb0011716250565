"""The quality gate: exact offending counts, results table, blocking a corrupted version."""

from __future__ import annotations

import datetime as dt

import pytest

from marketlab.quality.gate import evaluate
from marketlab.quality.params import Expectation, QualityParams
from marketlab.errors import GateFailedError
from marketlab.quality.run import require_passed, run as check

E = Expectation


def test_evaluate_counts(spark):
    df = spark.createDataFrame(
        [(1, 5, "a", dt.date(2011, 1, 1)), (2, -1, "b", dt.date(2011, 1, 2)), (2, 0, None, dt.date(2011, 1, 3)),
         (4, None, "z", dt.date(2011, 1, 4))], "id long, q int, s string, d date")
    ref = spark.createDataFrame([(1,), (2,)], "id long")
    exps = [E(name="schema", kind="schema", columns={"id": "bigint", "q": "int", "missing": "string"}),
            E(name="q_pos", kind="range", column="q", min=1), E(name="q_nn", kind="not_null", column="q"),
            E(name="s_in", kind="isin", column="s", values=["a", "b"]),
            E(name="s_null", kind="null_rate", column="s", max_fraction=0.2, severity="warning"),
            E(name="id_unique", kind="unique", columns_list=["id"]),
            E(name="fk", kind="foreign_key", column="id", ref_table="ref", ref_column="id"),
            E(name="drift", kind="row_count_drift", max_fraction=0.1),
            E(name="fresh", kind="freshness", column="d", max_age_days=3, reference_date="2011-01-06")]
    got = {r.expectation: r for r in evaluate(df, "t", exps, version=3, previous_rows=5, read_ref=lambda _: ref)}
    assert not got["schema"].passed and "missing" in got["schema"].detail
    assert (got["q_pos"].passed, got["q_pos"].offending) == (False, 2)  # -1 and 0; the null is not_null's business
    assert (got["q_nn"].passed, got["q_nn"].offending) == (False, 1)
    assert (got["s_in"].passed, got["s_in"].offending) == (False, 1)
    assert (got["s_null"].passed, got["s_null"].observed) == (False, 0.25)
    assert (got["id_unique"].passed, got["id_unique"].offending) == (False, 1)
    assert (got["fk"].passed, got["fk"].offending) == (False, 1)  # id 4
    assert (got["drift"].passed, got["drift"].offending, got["drift"].observed) == (False, 1, pytest.approx(-0.2))
    assert (got["fresh"].passed, got["fresh"].observed) == (True, 2.0)
    assert all(r.rows == 4 and r.version == 3 for r in got.values())


def test_bad_expectation_conf_is_rejected():
    with pytest.raises(ValueError, match="needs"):
        E(name="x", kind="range")
    with pytest.raises(ValueError, match="duplicate names"):
        QualityParams(expectations={"t": [E(name="a", kind="not_null", column="c")] * 2})


def test_corrupted_version_is_blocked(spark, fresh_lake):
    lake = fresh_lake
    params = QualityParams(expectations={"silver.returns": [
        E(name="quantity_positive", kind="range", column="quantity", min=1),
        E(name="unlinked", kind="null_rate", column="original_invoice_no", max_fraction=0.5, severity="warning"),
        E(name="row_count_drift", kind="row_count_drift", max_fraction=0.5)]})
    good = spark.createDataFrame([(1, "a"), (2, None), (3, "b")], "quantity int, original_invoice_no string")
    lake.write(good, "silver.returns")
    res = check(lake, ["silver.returns"], params)
    assert len(res.results) == 3 and all(r.passed for r in res.results) and res.failures == []
    res.raise_if_failed()
    require_passed(lake, ["silver.returns"])  # v0 passed

    bad = spark.createDataFrame([(1, None), (-2, None), (0, None)], "quantity int, original_invoice_no string")
    lake.write(bad, "silver.returns")
    gate = check(lake, ["silver.returns"], params)  # records the failure, raises only when asked
    assert [r.expectation for r in gate.failures] == ["quantity_positive"]
    assert [r.expectation for r in gate.warnings] == ["unlinked"]
    assert gate.metrics() == {"quality.silver.returns.quantity_positive.offending": 2,
                              "quality.silver.returns.unlinked.offending": 3,
                              "quality.silver.returns.row_count_drift.offending": 0,
                              "quality.failed_blocking": 1, "quality.failed_warning": 1}
    # the drift check read v0 for its count; the lineage records the checked version
    assert lake.reads["silver.returns"] == 1
    with pytest.raises(GateFailedError, match=r"quantity_positive \(range, blocking\) FAILED: 2 offending of 3 rows"):
        gate.raise_if_failed()
    with pytest.raises(GateFailedError, match=r"silver.returns version 1 failed the data-quality gate: quantity_positive \(2 offending rows\)"):
        require_passed(lake, ["silver.returns"])
    rows = {(r["version"], r["expectation"]): r for r in lake.read("quality.results").collect()}
    assert len(rows) == 6
    assert rows[(1, "unlinked")]["passed"] is False and rows[(1, "unlinked")]["severity"] == "warning"
    assert rows[(1, "row_count_drift")]["passed"] is True  # 3 rows vs 3

    # a rerun of the gate on the same version replaces its results (merge on key)
    assert check(lake, ["silver.returns"], params).failures
    assert lake.read("quality.results").count() == 6

    lake.write(good.limit(1), "silver.returns")  # v2: no result yet
    with pytest.raises(GateFailedError, match="version 2 has no data-quality result"):
        require_passed(lake, ["silver.returns"])


def test_timestamp_bounds_evaluated_against_the_window(spark):
    ts = [dt.datetime(2011, 12, 9, 12, 50), dt.datetime(2000, 1, 1), dt.datetime(2024, 6, 2, 12),  # in (inclusive)
          dt.datetime(1999, 12, 31, 23, 59, 59), dt.datetime(2024, 6, 2, 12, 0, 1), dt.datetime(2030, 1, 1), None]
    df = spark.createDataFrame([(t, t.date() if t else None) for t in ts], "invoice_ts timestamp, date date")
    exps = [E(name="ts_in", kind="timestamp_bounds", column="invoice_ts"),
            E(name="date_in", kind="timestamp_bounds", column="date")]
    window = (dt.datetime(2000, 1, 1), dt.datetime(2024, 6, 2, 12))
    got = {r.expectation: r for r in evaluate(df, "silver.order_lines", exps, timestamp_window=window)}
    assert (got["ts_in"].passed, got["ts_in"].offending, got["ts_in"].rows) == (False, 3, 7)  # the null is not_null's
    assert got["ts_in"].detail == "invoice_ts within [2000-01-01 00:00:00, 2024-06-02 12:00:00] (jobs.ingest.timestamp_bounds)"
    # as a date, 2024-06-02 12:00:01 is 2024-06-02 00:00 and inside
    assert (got["date_in"].passed, got["date_in"].offending) == (False, 2)
    with pytest.raises(ValueError, match="needs timestamp_window"):
        evaluate(df, "silver.order_lines", exps[:1])
    with pytest.raises(ValueError, match=r"needs \['column'\]"):
        E(name="x", kind="timestamp_bounds")


def test_a_far_silver_date_blocks_the_gate(spark, fresh_lake):
    """The conf's own expectation on silver.order_lines, with the lake's jobs.ingest.timestamp_bounds."""
    lake = fresh_lake
    bounds = lake.settings.jobs.ingest.timestamp_bounds
    exps = [e for e in lake.settings.jobs.quality.expectations["silver.order_lines"] if e.kind == "timestamp_bounds"]
    assert [(e.name, e.column, e.severity) for e in exps] == [("invoice_ts_in_bounds", "invoice_ts", "blocking")]
    params = QualityParams(expectations={"silver.order_lines": exps})
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    lo, hi = bounds.window(now)
    ok = [dt.datetime(2010, 12, 1, 8, 26), dt.datetime(2011, 12, 9, 12, 50), lo, now]
    lake.write(spark.createDataFrame([(t,) for t in ok], "invoice_ts timestamp"), "silver.order_lines")
    check(lake, ["silver.order_lines"], params).raise_if_failed()
    far = ok + [dt.datetime(2030 if hi.year < 2030 else hi.year + 1, 1, 1), dt.datetime(1, 1, 1)]
    lake.write(spark.createDataFrame([(t,) for t in far], "invoice_ts timestamp"), "silver.order_lines")
    gate = check(lake, ["silver.order_lines"], params)
    with pytest.raises(GateFailedError, match=r"silver.order_lines v1: invoice_ts_in_bounds \(timestamp_bounds, "
                                              r"blocking\) FAILED: 2 offending of 6 rows"):
        gate.raise_if_failed()
    with pytest.raises(GateFailedError, match="version 1 failed the data-quality gate: invoice_ts_in_bounds"):
        require_passed(lake, ["silver.order_lines"])

"""Malformed input: per-record quarantine with reasons, whole-file failures, other exports by conf."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import re
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as F

from conftest import DATA, make_settings
from marketlab.errors import BadInputError
from marketlab.ingest.run import run as ingest
from marketlab.tables import Lake

RETAIL = DATA / "online_retail/online_retail.csv.gz"


def _retail_lines(n: int) -> list[str]:
    with gzip.open(RETAIL, "rt", encoding="utf-8") as fh:
        return [next(fh).rstrip("\n") for _ in range(n + 1)]  # header + n records


def _lake_for(spark, tmp_path: Path, path: Path, **source) -> Lake:
    """A fresh lake whose `online_retail` source points at ``path`` (other sources unused)."""
    overrides = [f"sources.online_retail.path={path}", "jobs.ingest.sources=[online_retail]"]
    overrides += [f"sources.online_retail.{k}={json.dumps(v)}" for k, v in source.items()]
    return Lake(spark, make_settings(tmp_path, overrides))


def _write_bytes(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_each_malformed_kind_quarantined_with_reason_and_line(spark, tmp_path):
    lines = [ln.encode() for ln in _retail_lines(300)]
    bad = {
        10: b"536370,22728,ALARM CLOCK,abc,2010-12-01 08:45:00,3.75,12583.0,France",          # number
        20: b"536370,22728,ALARM CLOCK,24,01/12/2010 08:45,3.75,12583.0,France",              # date format
        30: b"536370,22728,ALARM CLOCK,24,2010-12-01 08:45:00,3.75,12583.0,France,EXTRA",     # too many columns
        40: b"536370,22728,ALARM CLOCK,24,2010-12-01 08:45:00",                                # too few columns
        50: b"536370,22728,ALARM \xff\xfe CLOCK,24,2010-12-01 08:45:00,3.75,12583.0,France",  # bad encoding
        60: b"",                                                                              # blank line
        70: b"536370,22728,ALARM CLOCK,24,2010-12-01 08:45:00,3.75,12583.5,France",           # non-integral id
        80: b",22728,ALARM CLOCK,24,2010-12-01 08:45:00,3.75,12583.0,France",                 # missing required
        90: b"536370,22728,ALARM CLOCK,24,2010-12-01 08:45:00,NaN,12583.0,France",            # non-finite price
    }
    for idx, raw in bad.items():
        lines[idx] = raw
    path = _write_bytes(tmp_path / "orders.csv", lines)
    lake = _lake_for(spark, tmp_path, path)
    summary = ingest(lake, lake.settings.jobs.ingest)
    res = summary.files[0]
    assert res.status == "ok"
    assert (res.records, res.bronze_rows, res.rejected_rows) == (300, 300 - len(bad), len(bad))
    rejects = {r._line: r.reasons for r in lake.read("bronze._rejects").collect()}
    # file line = list index + 1 (the header is line 1)
    assert rejects == {
        11: ["unparseable_int:quantity"],
        21: ["unparseable_timestamp:invoice_date"],
        31: ["wrong_column_count"],
        41: ["wrong_column_count"],  # field rules are not reported on a broken record
        51: ["bad_encoding"],
        61: ["blank_line"],
        71: ["unparseable_id:customer_id"],
        81: ["missing:invoice_no"],
        91: ["unparseable_double:unit_price"],
    }
    raw41 = lake.read("bronze._rejects").where(F.col("_line") == 41).first()
    assert raw41.raw == "536370,22728,ALARM CLOCK,24,2010-12-01 08:45:00" and raw41.reason == "wrong_column_count"
    assert summary.rejected_by_reason()["wrong_column_count"] == 2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fuzzed_records_balance_exactly(spark, tmp_path, seed):
    """Random byte-level damage: every record ends in bronze or quarantine, never lost or doubled."""
    rng = random.Random(seed)
    lines = [ln.encode() for ln in _retail_lines(400)]
    damaged = set(rng.sample(range(1, len(lines)), 15))
    garbage = [b",", b"\xff", b'"', b"\x00", b"abc", b"", b",,,,", b"9" * 40]
    for idx in damaged:
        ln = bytearray(lines[idx])
        for _ in range(rng.randint(1, 3)):
            pos = rng.randint(0, len(ln))
            ln[pos:pos + rng.randint(0, 4)] = rng.choice(garbage)
        lines[idx] = bytes(ln)
    path = _write_bytes(tmp_path / "fuzz.csv", lines)
    lake = _lake_for(spark, tmp_path, path, max_reject_fraction=1.0)
    res = ingest(lake, lake.settings.jobs.ingest).files[0]
    bronze = lake.read("bronze.orders").select("_line").toPandas()["_line"]
    rejected = lake.read("bronze._rejects").select("_line").toPandas()["_line"]
    # A stray quote may open a field that closes lines later: records, not lines, are counted,
    # and they start where Python's csv reader starts them.
    starts = _record_starts(path.read_bytes())[1:]
    assert res.records == len(starts) == len(bronze) + len(rejected)
    assert set(bronze).isdisjoint(set(rejected))
    assert set(bronze) | set(rejected) == set(starts)
    # undamaged records (one line each, not swallowed by a quote) are never quarantined
    assert set(rejected) <= {i + 1 for i in damaged}


def _record_starts(data: bytes) -> list[int]:
    """First physical line of each record, by Python's csv reader (the independent oracle)."""
    reader = csv.reader(io.StringIO(data.decode("utf-8", "surrogateescape"), newline=""))
    starts, consumed = [], 0
    for _ in reader:
        starts.append(consumed + 1)
        consumed = reader.line_num
    return starts


INJECTED = "536999,22728,INJECTED ROW,1,2010-12-01 08:45:00,1.0,12583.0,France"


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_a_quoted_line_break_stays_in_its_record(spark, tmp_path, eol):
    """A description holding an order-shaped second line is one record, not an injected row."""
    lines = _retail_lines(40)
    edits = {  # record index -> description, as written in the file
        5: f'"FRAME{eol}{INJECTED}"',
        12: '"RECORD FRAME 7"" SINGLE SIZE "',
        20: '"TWO\r\nLINES"',
        30: '"LF\nONLY"',
    }
    for idx, text in edits.items():
        parts = lines[idx].split(",")  # these records have no quoted field of their own
        assert len(parts) == 8, lines[idx]
        lines[idx] = ",".join(parts[:2] + [text] + parts[3:])
    data = eol.join(lines).encode() + eol.encode()
    path = tmp_path / "orders.csv"
    path.write_bytes(data)
    lake = _lake_for(spark, tmp_path, path)
    res = ingest(lake, lake.settings.jobs.ingest).files[0]
    assert data.count(b"\n") == 41 + 3  # physical lines: header, 40 records, 3 quoted breaks
    assert (res.status, res.records, res.bronze_rows, res.rejected_rows) == ("ok", 40, 40, 0)
    got = lake.read("bronze.orders").select("_line", "invoice_no", "description").orderBy("_line").collect()
    assert "536999" not in {r.invoice_no for r in got}
    # _line is the record's first physical line: each quoted break shifts the later records by one
    assert [r._line for r in got] == _record_starts(data)[1:]
    assert [r._line for r in got][4:8] == [6, 8, 9, 10]
    desc = {i: got[i - 1].description for i in edits}
    assert desc == {5: f"FRAME{eol}{INJECTED}", 12: 'RECORD FRAME 7" SINGLE SIZE ', 20: "TWO\r\nLINES",
                    30: "LF\nONLY"}


def _ingest_with_description(spark, tmp_path: Path, lines: list[str], index: int, field: str, **source):
    """Write ``lines`` with line ``index``'s description field replaced by ``field`` (raw CSV
    text) and ingest the file: ``(lake, FileResult)``."""
    parts = lines[index].split(",")
    lines[index] = ",".join(parts[:2] + [field] + parts[3:])
    path = tmp_path / "orders.csv"
    path.write_text("\n".join(lines) + "\n")
    lake = _lake_for(spark, tmp_path, path, **source)
    return lake, ingest(lake, lake.settings.jobs.ingest).files[0]


def test_backslash_escape_still_loads_when_configured(spark, tmp_path):
    lake, res = _ingest_with_description(spark, tmp_path, _retail_lines(20), 3, '"7\\" FRAME \\\\ BIG"', escape="\\")
    assert (res.records, res.bronze_rows) == (20, 20)
    assert lake.read("bronze.orders").where(F.col("_line") == 4).first().description == '7" FRAME \\ BIG'


def test_an_unterminated_quote_is_one_quarantine_row(spark, tmp_path):
    lines = _retail_lines(200)
    lake, res = _ingest_with_description(spark, tmp_path, lines, 197, '"NEVER CLOSED')
    # RFC 4180: the open quote holds every line after it, so data records 197..200 are one record
    assert (res.status, res.records, res.bronze_rows, res.rejected_rows) == ("ok", 197, 196, 1)
    assert res.rejected_by_reason == {"unterminated_quote": 1}
    rej = lake.read("bronze._rejects").first()
    assert (rej._line, rej.reasons) == (198, ["unterminated_quote"])
    assert rej.raw == "\n".join(lines[197:]) + "\n"
    assert sorted(r._line for r in lake.read("bronze.orders").select("_line").collect()) == list(range(2, 198))


def test_an_unterminated_quote_that_holds_most_lines_fails_the_file(spark, tmp_path):
    """One rejected record of 100 is under max_reject_fraction (5 %), but it holds 101 of the
    file's 200 data lines: the file fails as a whole instead of losing half of it quietly."""
    head, *body = _retail_lines(400)
    lines = [head, *[r for r in body if '"' not in r][:200]]  # no later quote closes the open one
    lake, res = _ingest_with_description(spark, tmp_path, lines, 100, '"NEVER CLOSED')
    assert res.status == "failed"
    assert "rejected records hold 101 of 200 physical lines (50.5% > max_reject_fraction 5.0%" in res.message
    assert "an unterminated quote holds every line after it" in res.message
    assert not lake.exists("bronze.orders") or lake.read("bronze.orders").count() == 0


def test_other_export_loads_by_conf_alone(spark, tmp_path, ingested):
    """The 2009-2011 re-export: other headers, other column order, US-style dates."""
    src = pd.read_csv(RETAIL, nrows=3000, dtype=str, keep_default_na=False)
    ts = pd.to_datetime(src["InvoiceDate"])
    other = pd.DataFrame({
        "Customer ID": src["CustomerID"], "Invoice": src["InvoiceNo"], "StockCode": src["StockCode"],
        "Description": src["Description"], "Quantity": src["Quantity"],
        "InvoiceDate": [f"{t.month}/{t.day}/{t.year} {t.hour}:{t.minute:02d}" for t in ts],
        "Price": src["UnitPrice"], "Country": src["Country"],
    })
    path = tmp_path / "online_retail_II.csv"
    other.to_csv(path, index=False)
    lake = _lake_for(spark, tmp_path, path, timestamp_format="M/d/yyyy H:mm", columns={
        "invoice_no": "Invoice", "stock_code": "StockCode", "description": "Description", "quantity": "Quantity",
        "invoice_date": "InvoiceDate", "unit_price": "Price", "customer_id": "Customer ID", "country": "Country"})
    res = ingest(lake, lake.settings.jobs.ingest).files[0]
    assert (res.status, res.records, res.bronze_rows, res.rejected_rows) == ("ok", 3000, 3000, 0)
    cols = ["_line", "invoice_no", "stock_code", "description", "quantity", "invoice_date", "unit_price",
            "customer_id", "country"]
    got = lake.read("bronze.orders").select(cols).orderBy("_line").toPandas()
    ref_lake, _ = ingested
    ref = ref_lake.read("bronze.orders").where(F.col("_line") <= 3001).select(cols).orderBy("_line").toPandas()
    pd.testing.assert_frame_equal(got, ref)


def test_json_lines_and_parquet_sources(spark, tmp_path):
    src = pd.read_csv(DATA / "hillstrom/hillstrom.csv", nrows=500)
    jpath = tmp_path / "campaign.jsonl"
    records = [json.dumps(r) for r in src.to_dict(orient="records")]
    records[7] = '{"recency": 3, "history": '  # truncated object
    jpath.write_text("\n".join(records) + "\n")
    lake = Lake(spark, make_settings(tmp_path / "j", [
        f"sources.hillstrom.path={jpath}", "sources.hillstrom.format=json", "jobs.ingest.sources=[hillstrom]"]))
    res = ingest(lake, lake.settings.jobs.ingest).files[0]
    assert (res.records, res.bronze_rows, res.rejected_rows) == (500, 499, 1)
    assert lake.read("bronze._rejects").first().reasons == ["malformed_json"]
    assert lake.read("bronze.campaign_log").agg(F.sum("spend")).first()[0] == pytest.approx(
        src.drop(index=7)["spend"].sum())

    ppath = tmp_path / "campaign.parquet"
    src.assign(recency=src["recency"].astype(str)).to_parquet(ppath, index=False)
    lake2 = Lake(spark, make_settings(tmp_path / "p", [
        f"sources.hillstrom.path={ppath}", "sources.hillstrom.format=parquet", "jobs.ingest.sources=[hillstrom]"]))
    res2 = ingest(lake2, lake2.settings.jobs.ingest).files[0]
    assert (res2.status, res2.records, res2.bronze_rows) == ("ok", 500, 500)
    assert sorted(r._line for r in lake2.read("bronze.campaign_log").select("_line").collect()) == list(range(1, 501))


@pytest.mark.parametrize("kind", ["truncated_gzip", "empty", "binary", "wrong_header"])
def test_corrupt_file_fails_alone_and_tables_keep_version(spark, tmp_path, kind):
    good = tmp_path / "in" / "a_good.csv"
    good.parent.mkdir()
    good.write_text("\n".join(_retail_lines(50)) + "\n")
    lake = _lake_for(spark, tmp_path, good.parent)  # a folder: each of its files
    ingest(lake, lake.settings.jobs.ingest)
    version = lake.version("bronze.orders")
    bad = good.parent / "b_bad.csv.gz"
    if kind == "truncated_gzip":
        data = RETAIL.read_bytes()
        bad.write_bytes(data[: len(data) // 3])
    elif kind == "empty":
        bad.write_bytes(b"")
    elif kind == "binary":
        bad = bad.with_suffix("")
        bad.write_bytes(bytes(random.Random(0).randrange(256) for _ in range(5000)))
    else:
        bad = bad.with_suffix("")
        bad.write_text("a;b;c\n1;2;3\n")
    summary = ingest(lake, lake.settings.jobs.ingest)
    statuses = {Path(f.file).name: (f.status, f.message) for f in summary.files}
    assert statuses["a_good.csv"][0] == "skipped"
    status, message = statuses[bad.name]
    assert status == "failed"
    expected = {"truncated_gzip": "EOFException", "empty": "empty file", "binary": "header does not match",
                "wrong_header": "missing column(s) ['InvoiceNo'"}[kind]
    assert expected in message and "Traceback" not in message
    assert lake.version("bronze.orders") == version
    assert lake.read("bronze.orders").count() == 50
    log = lake.read("ops.ingest_log").where(F.col("status") == "failed").collect()
    assert [r.file.rsplit("/", 1)[-1] for r in log] == [bad.name]
    assert {k: v for k, v in summary.metrics().items() if k.startswith("files_")} == \
        {"files_ok": 0, "files_skipped": 1, "files_failed": 1}
    with pytest.raises(BadInputError, match=re.escape(message)):  # after the good file was kept
        summary.raise_if_failed()


def test_changed_file_replaces_its_rows_and_a_withdrawn_correction_loads_again(spark, tmp_path):
    path = tmp_path / "orders.csv"
    v1, v2 = "\n".join(_retail_lines(100)) + "\n", "\n".join(_retail_lines(120)) + "\n"
    path.write_text(v1)
    lake = _lake_for(spark, tmp_path, path)
    ingest(lake, lake.settings.jobs.ingest)
    path.write_text(v2)  # corrected re-export, same path
    res = ingest(lake, lake.settings.jobs.ingest).files[0]
    assert res.status == "ok" and res.bronze_rows == 120
    assert lake.read("bronze.orders").count() == 120
    path.write_text(v1)  # the correction withdrawn: bronze must hold v1's rows again
    res = ingest(lake, lake.settings.jobs.ingest).files[0]
    assert (res.status, res.bronze_rows) == ("ok", 100)
    assert lake.read("bronze.orders").count() == 100
    assert ingest(lake, lake.settings.jobs.ingest).files[0].status == "skipped"  # now up to date


def test_identical_copies_load_once_each_in_one_run_or_in_two(spark, tmp_path):
    body = "\n".join(_retail_lines(30)) + "\n"
    one, two = tmp_path / "one", tmp_path / "two"
    for folder in (one, two):
        folder.mkdir()
    (one / "a.csv").write_text(body)
    (one / "b.csv").write_text(body)
    lake1 = _lake_for(spark, tmp_path / "l1", one, pattern="*.csv")
    assert [(f.status, f.bronze_rows) for f in ingest(lake1, lake1.settings.jobs.ingest).files] == [("ok", 30)] * 2
    (two / "a.csv").write_text(body)
    lake2 = _lake_for(spark, tmp_path / "l2", two, pattern="*.csv")
    ingest(lake2, lake2.settings.jobs.ingest)
    (two / "b.csv").write_text(body)  # the copy arrives a run later
    got = {Path(f.file).name: (f.status, f.bronze_rows) for f in ingest(lake2, lake2.settings.jobs.ingest).files}
    assert got == {"a.csv": ("skipped", 0), "b.csv": ("ok", 30)}
    for lake in (lake1, lake2):  # the same bronze either way
        assert lake.read("bronze.orders").groupBy("_source_file").count().orderBy("_source_file") \
            .select("count").collect() == [(30,), (30,)]


@pytest.mark.parametrize("layout", ["bom_crlf_gzip", "no_header"])
def test_header_modes_read_records(spark, tmp_path, layout):
    """A BOM before the header, CRLF breaks and gzip; or no header and columns by position."""
    lines = _retail_lines(60)
    parts = lines[7].split(",")
    lines[7] = ",".join(parts[:2] + ['"TWO\r\nLINES, ONE ""RECORD"""'] + parts[3:])
    source = {}
    if layout == "no_header":
        lines = lines[1:]
        source = {"header": False, "columns": {
            name: str(i) for i, name in enumerate(["invoice_no", "stock_code", "description", "quantity",
                                                   "invoice_date", "unit_price", "customer_id", "country"])}}
        path = tmp_path / "orders.csv"
        path.write_bytes(("\n".join(lines) + "\n").encode())
    else:
        path = tmp_path / "orders.csv.gz"
        path.write_bytes(gzip.compress(("\ufeff" + "\r\n".join(lines) + "\r\n").encode()))
    lake = _lake_for(spark, tmp_path, path, **source)
    res = ingest(lake, lake.settings.jobs.ingest).files[0]
    assert (res.status, res.records, res.bronze_rows, res.rejected_rows) == ("ok", 60, 60, 0)
    got = lake.read("bronze.orders").select("_line", "description").orderBy("_line").collect()
    first = 1 if layout == "no_header" else 2  # the header is line 1
    assert [r._line for r in got] == list(range(first, first + 7)) + list(range(first + 8, first + 61))
    assert got[6].description == 'TWO\r\nLINES, ONE "RECORD"'

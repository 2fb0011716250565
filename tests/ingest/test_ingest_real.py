"""Ingest of the three vendored real files: exact counts, types, lineage, idempotency."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest
from pyspark.sql import functions as F

from conftest import DATA
from marketlab.ingest.run import run as ingest


def test_real_files_counts_exact(ingested):
    lake, summary = ingested
    assert not summary.failed, [f.message for f in summary.failed]
    assert summary.totals("online_retail") == {"records": 541_909, "bronze_rows": 541_909, "rejected_rows": 0}
    assert summary.totals("hillstrom") == {"records": 64_000, "bronze_rows": 64_000, "rejected_rows": 0}
    assert summary.totals("online_shoppers") == {"records": 12_330, "bronze_rows": 12_330, "rejected_rows": 0}
    assert lake.read("bronze.orders").count() == 541_909
    assert lake.read("bronze.campaign_log").count() == 64_000
    assert lake.read("bronze.sessions").count() == 12_330
    assert lake.read("bronze._rejects").count() == 0


def test_orders_typed_and_cross_checked_with_pandas(ingested):
    lake, _ = ingested
    orders = lake.read("bronze.orders")
    types = dict(orders.dtypes)
    assert types["quantity"] == "int" and types["unit_price"] == "double"
    assert types["invoice_date"] == "timestamp" and types["customer_id"] == "bigint"
    ref = pd.read_csv(DATA / "online_retail/online_retail.csv.gz", dtype={"InvoiceNo": str, "StockCode": str})
    agg = orders.agg(
        F.sum("quantity").alias("q"), F.sum("unit_price").alias("p"),
        F.sum(F.col("customer_id").isNull().cast("int")).alias("no_cust"),
        F.sum(F.col("description").isNull().cast("int")).alias("no_desc"),
        F.countDistinct("invoice_no").alias("invoices"), F.countDistinct("customer_id").alias("customers"),
        F.min("invoice_date").alias("first"), F.max("invoice_date").alias("last"),
    ).first()
    assert agg.q == int(ref.Quantity.sum())
    assert agg.p == pytest.approx(float(ref.UnitPrice.sum()), rel=1e-9)  # summation order differs
    assert agg.no_cust == int(ref.CustomerID.isna().sum()) == 135_080
    assert agg.no_desc == 1_454
    assert agg.invoices == 25_900
    assert agg.customers == 4_372
    assert str(agg.first) == "2010-12-01 08:26:00" and str(agg.last) == "2011-12-09 12:50:00"


def test_quoted_descriptions_load_as_rfc_4180(ingested):
    """1,239 descriptions hold a doubled quote in the file: each loads with one quote, like pandas reads it."""
    lake, _ = ingested
    desc = lake.read("bronze.orders").select("description")
    ref = pd.read_csv(DATA / "online_retail/online_retail.csv.gz", usecols=["Description"], dtype=str)["Description"]
    assert desc.where(F.col("description").contains('""')).count() == 0
    assert desc.where(F.col("description").contains('"')).count() == int(ref.str.contains('"', na=False).sum()) == 1_239
    row = lake.read("bronze.orders").where(F.col("_line") == 873).first()  # the first of them in the file
    assert (row.stock_code, row.description) == ("22041", 'RECORD FRAME 7" SINGLE SIZE ')


def test_lineage_columns_and_exact_line_numbers(ingested):
    lake, _ = ingested
    orders = lake.read("bronze.orders")
    first = orders.where(F.col("_line") == 2).first()
    assert (first.invoice_no, first.stock_code, first.quantity, first.unit_price, first.customer_id) == (
        "536365", "85123A", 6, 2.55, 17850)
    assert first._source == "online_retail" and first._source_file.endswith("online_retail.csv.gz")
    stats = orders.agg(F.min("_line"), F.max("_line"), F.countDistinct("_line"), F.countDistinct("_batch_id")).first()
    assert tuple(stats) == (2, 541_910, 541_909, 1)
    with gzip.open(DATA / "online_retail/online_retail.csv.gz", "rt") as fh:
        lines = fh.read().splitlines()
    for n in (1000, 250_001, 541_910):
        row = orders.where(F.col("_line") == n).first()
        assert lines[n - 1].split(",")[0] == row.invoice_no


def test_a_gzip_file_is_parsed_and_written_on_every_core(spark, ingested):
    # gzip is one split: without spreading its lines, one task parses and writes it all,
    # and every later scan of bronze.orders starts from one file.
    lake, _ = ingested
    assert len(lake.read("bronze.orders").inputFiles()) == spark.sparkContext.defaultParallelism > 1
    # A small uncompressed file keeps Spark's one split (and its models their inputs).
    assert len(lake.read("bronze.campaign_log").inputFiles()) == 1


def test_line_numbers_exact_across_many_splits(spark, fresh_lake):
    """A large uncompressed file read in many splits still gets exact physical line numbers."""
    spark.conf.set("spark.sql.files.maxPartitionBytes", str(256 * 1024))
    try:
        ingest(fresh_lake, fresh_lake.settings.jobs.ingest.model_copy(update={"sources": ["hillstrom"]}))
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    ref = pd.read_csv(DATA / "hillstrom/hillstrom.csv")
    got = fresh_lake.read("bronze.campaign_log").select("_line", "history", "recency").toPandas().sort_values("_line")
    assert got["_line"].tolist() == list(range(2, 64_002))
    assert got["history"].tolist() == ref["history"].tolist()
    assert got["recency"].tolist() == ref["recency"].tolist()


def test_rerun_is_idempotent(ingested):
    lake, _ = ingested
    before = {t: lake.version(t) for t in ("bronze.orders", "bronze.campaign_log", "bronze.sessions", "bronze._rejects")}
    again = ingest(lake, lake.settings.jobs.ingest)
    assert {f.status for f in again.files} == {"skipped"}
    assert {t: lake.version(t) for t in before} == before
    assert lake.read("bronze.orders").count() == 541_909

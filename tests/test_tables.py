"""The Lake (marketlab.tables): catalog-named Delta reads and writes, versions, lineage.

Every test writes small frames into an empty lake of its own (``fresh_lake``) under real
catalog names; a table's schema is whatever the test writes (Lake does not check it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import Row

from conftest import make_settings
from marketlab.tables import Lake

PLAIN = "silver.adjustments"  # not partitioned, not gated (reads of gated tables: test_gate_guard.py)
PARTITIONED = "gold.demand_daily"  # partition_by: [warehouse]


def _rows(df, *cols: str) -> list[tuple]:
    return sorted(tuple(r[c] for c in cols) for r in df.collect())


def _history(lake: Lake, name: str, limit: int = 20):
    """The table's Delta history, newest first (read with Delta's own API, not through Lake)."""
    return DeltaTable.forPath(lake.spark, lake.path(name)).history(limit)


def _df(spark, rows: list[tuple], schema: str = "id long, qty long"):
    return spark.createDataFrame(rows, schema)


def test_write_then_read_round_trips_under_the_catalog_path(spark, fresh_lake):
    lake = fresh_lake
    assert not lake.exists(PLAIN) and lake.version(PLAIN) is None
    assert lake.write(_df(spark, [(1, 10), (2, 20)]), PLAIN) == 0
    assert lake.exists(PLAIN) and lake.version(PLAIN) == 0
    assert lake.path(PLAIN) == lake.settings.table_path(PLAIN)
    assert lake.path(PLAIN).endswith("/silver/adjustments")
    assert (Path(lake.path(PLAIN)) / "_delta_log" / "00000000000000000000.json").is_file()
    assert _rows(lake.read(PLAIN), "id", "qty") == [(1, 10), (2, 20)]


def test_overwrite_replaces_rows_in_one_commit_and_old_versions_stay_readable(spark, fresh_lake):
    lake = fresh_lake
    lake.write(_df(spark, [(1, 10), (2, 20)]), PLAIN)
    assert lake.write(_df(spark, [(3, 30)]), PLAIN) == 1
    assert _rows(lake.read(PLAIN), "id", "qty") == [(3, 30)]
    assert _rows(lake.read(PLAIN, version=0), "id", "qty") == [(1, 10), (2, 20)]
    hist = _history(lake, PLAIN).select("version", "operation").collect()
    assert [(r["version"], r["operation"]) for r in hist] == [(1, "WRITE"), (0, "WRITE")]


def test_append_adds_rows_and_merges_a_new_column(spark, fresh_lake):
    lake = fresh_lake
    lake.write(_df(spark, [(1, 10)]), PLAIN)
    assert lake.write(_df(spark, [(2, 20)]), PLAIN, mode="append") == 1
    assert _rows(lake.read(PLAIN), "id", "qty") == [(1, 10), (2, 20)]
    # append merges the schema: older rows read the new column as null
    lake.write(_df(spark, [(3, 30, "x")], "id long, qty long, note string"), PLAIN, mode="append")
    got = sorted(lake.read(PLAIN).collect(), key=lambda r: r["id"])
    assert [(r["id"], r["note"]) for r in got] == [(1, None), (2, None), (3, "x")]


def test_full_overwrite_may_change_the_schema(spark, fresh_lake):
    lake = fresh_lake
    lake.write(_df(spark, [(1, 10)]), PLAIN)
    lake.write(spark.createDataFrame([("a", 1.5)], "code string, price double"), PLAIN)
    df = lake.read(PLAIN)
    assert df.columns == ["code", "price"]
    assert _rows(df, "code", "price") == [("a", 1.5)]


def test_lineage_records_the_version_read_and_the_latest_version_written(spark, fresh_lake):
    lake = fresh_lake
    lake.write(_df(spark, [(1, 10)]), PLAIN)
    lake.write(_df(spark, [(2, 20)]), PLAIN)
    lake.write(_df(spark, [(5, 50)]), "silver.returns")
    assert lake.writes == {PLAIN: 1, "silver.returns": 0}

    # A job's own lake starts empty; what tracking logs as read.<table> / wrote.<table>.
    job = Lake(spark, lake.settings)
    assert job.reads == {} and job.writes == {}
    job.read(PLAIN, version=0)
    assert job.reads == {PLAIN: 0}
    df = job.read(PLAIN)
    assert job.reads == {PLAIN: 1}
    # The read is pinned to the version recorded: a later commit does not change what it sees.
    lake.write(_df(spark, [(9, 90)]), PLAIN)
    assert _rows(df, "id", "qty") == [(2, 20)]
    assert job.reads == {PLAIN: 1} and job.writes == {}


def test_replace_where_rewrites_one_partition_only(spark, fresh_lake):
    lake = fresh_lake
    schema = "warehouse string, stock_code string, units long"
    lake.write(spark.createDataFrame([("UK", "A", 1), ("UK", "B", 2), ("EU", "A", 3)], schema), PARTITIONED)
    assert {p.name for p in Path(lake.path(PARTITIONED)).iterdir() if p.name.startswith("warehouse=")} == {
        "warehouse=UK", "warehouse=EU"}
    v = lake.write(spark.createDataFrame([("UK", "C", 7)], schema), PARTITIONED, replace_where="warehouse = 'UK'")
    assert v == 1
    assert _rows(lake.read(PARTITIONED), "warehouse", "stock_code", "units") == [("EU", "A", 3), ("UK", "C", 7)]
    # one commit, of the slice only
    metrics = _history(lake, PARTITIONED, 1).select("operation", "operationParameters").first()
    assert metrics["operation"] == "WRITE" and "UK" in metrics["operationParameters"]["predicate"]


def test_replace_where_refuses_rows_outside_the_slice_and_keeps_the_version(spark, fresh_lake):
    lake = fresh_lake
    schema = "warehouse string, stock_code string, units long"
    lake.write(spark.createDataFrame([("UK", "A", 1), ("EU", "A", 3)], schema), PARTITIONED)
    with pytest.raises(Exception, match="(?i)replaceWhere|predicate|constraint|does not conform"):
        lake.write(spark.createDataFrame([("EU", "Z", 9)], schema), PARTITIONED, replace_where="warehouse = 'UK'")
    assert lake.version(PARTITIONED) == 0
    assert _rows(lake.read(PARTITIONED), "warehouse", "stock_code", "units") == [("EU", "A", 3), ("UK", "A", 1)]


def test_replace_where_on_a_new_table_creates_it(spark, fresh_lake):
    lake = fresh_lake
    schema = "warehouse string, stock_code string, units long"
    assert lake.write(spark.createDataFrame([("UK", "A", 1)], schema), PARTITIONED, replace_where="warehouse = 'UK'") == 0
    assert _rows(lake.read(PARTITIONED), "warehouse", "stock_code", "units") == [("UK", "A", 1)]


def test_merge_upserts_on_keys_and_can_delete_a_slice(spark, fresh_lake):
    lake = fresh_lake
    schema = "customer_key long, wave string, score double"
    # first merge creates the table
    assert lake.merge(spark.createDataFrame([(1, "w1", 0.1), (2, "w1", 0.2), (3, "w2", 0.3)], schema),
                      "gold.strategy", keys=["customer_key", "wave"]) == 0
    # (2, w1) updated, (4, w1) inserted, the rest kept
    v = lake.merge(spark.createDataFrame([(2, "w1", 0.9), (4, "w1", 0.4)], schema), "gold.strategy",
                   keys=["customer_key", "wave"])
    assert v == 1 and lake.writes["gold.strategy"] == 1
    assert _rows(lake.read("gold.strategy"), "customer_key", "wave", "score") == [
        (1, "w1", 0.1), (2, "w1", 0.9), (3, "w2", 0.3), (4, "w1", 0.4)]
    # replace the w1 slice by merge: w1 rows missing from the source go, w2 stays
    lake.merge(spark.createDataFrame([(4, "w1", 0.5)], schema), "gold.strategy", keys=["customer_key", "wave"],
               delete_missing_in="t.wave = 'w1'")
    assert _rows(lake.read("gold.strategy"), "customer_key", "wave", "score") == [(3, "w2", 0.3), (4, "w1", 0.5)]
    assert lake.version("gold.strategy") == 2


def test_merge_matches_null_keys(spark, fresh_lake):
    lake = fresh_lake
    schema = "customer_key long, wave string, score double"
    lake.merge(spark.createDataFrame([(None, "w1", 0.1), (1, "w1", 0.2)], schema), "gold.strategy", ["customer_key", "wave"])
    lake.merge(spark.createDataFrame([(None, "w1", 0.7)], schema), "gold.strategy", ["customer_key", "wave"])
    assert sorted(lake.read("gold.strategy").collect(), key=lambda r: r["score"]) == [
        Row(customer_key=1, wave="w1", score=0.2), Row(customer_key=None, wave="w1", score=0.7)]


def test_unknown_catalog_names_and_missing_tables_are_clear_errors(spark, fresh_lake):
    lake = fresh_lake
    with pytest.raises(KeyError, match="'silver.order_line' is not in the catalog; did you mean"):
        lake.read("silver.order_line")
    with pytest.raises(KeyError, match="silver.nope"):
        lake.write(_df(spark, [(1, 1)]), "silver.nope")
    with pytest.raises(KeyError, match="not in the catalog"):
        lake.version("gold.nope")
    # a catalog table nobody wrote yet: one LookupError naming the table and what to do
    with pytest.raises(LookupError, match=r"table 'gold.segments' does not exist at .*gold/segments: run the job"):
        lake.read("gold.segments")
    assert lake.reads == {} and lake.writes == {}


def test_a_copied_lake_folder_reads_the_same_tables_and_versions(spark, fresh_lake, tmp_path):
    """Delta logs hold paths relative to the table: the suite copies whole lakes (conftest)."""
    lake = fresh_lake
    lake.write(_df(spark, [(1, 10)]), PLAIN)
    lake.write(_df(spark, [(2, 20)]), PLAIN, mode="append")
    src = Path(lake.settings.resolve(lake.settings.lake_root).removeprefix("file:"))
    shutil.copytree(src, tmp_path / "copy" / "lake")
    shutil.rmtree(src)
    copy = Lake(spark, make_settings(tmp_path / "copy"))
    assert copy.version(PLAIN) == 1
    assert _rows(copy.read(PLAIN), "id", "qty") == [(1, 10), (2, 20)]
    assert _rows(copy.read(PLAIN, version=0), "id", "qty") == [(1, 10)]
    assert copy.write(_df(spark, [(3, 30)]), PLAIN, mode="append") == 2


def test_what_a_write_creates_is_owner_only(spark, fresh_lake):
    """bronze/silver hold raw customer ids: no file or folder under lake_root is open to the
    group or others (Hadoop's umask-mode and the process umask, docs/CONTRACTS.md)."""
    import stat

    lake = fresh_lake
    lake.write(_df(spark, [(1, 10), (2, 20)]), PLAIN)
    lake.write(_df(spark, [(3, 30)]), PLAIN, mode="append")
    root = Path(lake.settings.resolve(lake.settings.lake_root))
    paths = [root, *root.rglob("*")]
    assert any(p.suffix == ".parquet" for p in paths) and any(p.name.endswith(".crc") for p in paths)
    loose = {str(p.relative_to(root)): oct(p.lstat().st_mode & 0o777) for p in paths
             if p.lstat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)}
    assert loose == {}

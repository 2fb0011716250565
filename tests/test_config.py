"""Conf loading: merge order, overrides, and validation errors that name the key path."""

from __future__ import annotations

import pytest

from conftest import ROOT
from marketlab.config import ConfigError, load_settings

LOCAL = ROOT / "conf" / "local.yaml"


def test_local_and_cluster_conf_validate():
    local = load_settings(LOCAL)
    assert local.spark.mode == "local" and local.env == "local"
    assert local.table_path("bronze.orders") == str(ROOT / "lake" / "bronze" / "orders")
    assert local.tracking_uri() == f"sqlite:///{ROOT / 'mlflow' / 'mlflow.db'}"
    assert set(local.sources) == {"online_retail", "hillstrom", "online_shoppers", "shop_campaign"}
    assert local.source_path(local.sources["shop_campaign"]) == str(ROOT / "lake" / "_exchange" / "responses")
    cluster = load_settings(ROOT / "conf" / "cluster.yaml")
    assert cluster.spark.mode == "cluster"
    assert cluster.table_path("gold.forecasts") == "file:///tmp/marketlab-cluster/lake/gold/forecasts"
    assert cluster.catalog == local.catalog


def test_override_applies_and_is_typed():
    s = load_settings(LOCAL, ["jobs.ingest.sources=[hillstrom]", "spark.conf.spark.sql.shuffle.partitions=3"])
    assert s.jobs.ingest.sources == ["hillstrom"]
    assert s.spark.conf["spark.sql.shuffle.partitions"] == "3"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["jobs.ingest.sourcez=[a]"], "jobs.ingest.sourcez: unknown key"),
        (["jobs.ingest.sources=5"], "jobs.ingest.sources: Input should be a valid list"),
        (["spark.mode=yarn"], "spark.mode: Input should be 'local' or 'cluster'"),
        (["sources.hillstrom.table=bronze.nope"], "sources.hillstrom.table: 'bronze.nope' is not in the catalog"),
        (["sources.hillstrom.columns={recency: recency}"], "required canonical column(s) ['conversion'"),
        (["sources.hillstrom.columns.shoe_size=x"], "unknown canonical column(s) ['shoe_size']"),
        (["sources.hillstrom.delimiter=;;"], "sources.hillstrom.delimiter: String should have at most 1 character"),
        (["sources.hillstrom.delimiter=\"\\\"\""], "delimiter, quote and escape must be ASCII, differ"),
        (["sources.hillstrom.quote=§"], "must be ASCII, differ (escape may equal quote) and not be a line break; got {'delimiter': ',', 'quote': '§'"),
        (["catalog.gold.x={layer: silver, path: p}"], "catalog.gold.x: name must start with its layer"),
        (["mlflow.ui_port=99999"], "mlflow.ui_port: Input should be less than or equal to 65535"),
        (["lake_root"], "must look like dotted.key=value"),
        (["jobs.recommend.gate_metric=val_map_at_10"], "is a validation metric, which only a tuning run logs"),
        (["jobs.ingest.timestamp_bounds.min=2011-13-01"],
         "override 'jobs.ingest.timestamp_bounds.min=2011-13-01': month must be in 1..12"),
        (['jobs.ingest.timestamp_bounds.min="2011-13-01"'],
         "jobs.ingest.timestamp_bounds.min: Input should be a valid date"),
        (["jobs.ingest.timestamp_bounds.min=2999-01-01"],
         "jobs.ingest.timestamp_bounds.min: Value error, min 2999-01-01 is in the future"),
        (["jobs.ingest.timestamp_bounds.max_days_ahead=-1"],
         "jobs.ingest.timestamp_bounds.max_days_ahead: Input should be greater than or equal to 0"),
        (["jobs.ingest.timestamp_bounds.max=2020-01-01"], "jobs.ingest.timestamp_bounds.max: unknown key"),
        (["jobs.features.demand_calendar_max_days=0"],
         "jobs.features.demand_calendar_max_days: Input should be greater than or equal to 1"),
    ],
)
def test_bad_conf_is_rejected_with_key_path(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_settings(LOCAL, overrides)
    assert message in str(err.value)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="conf file not found"):
        load_settings(tmp_path / "missing.yaml")
    bad = tmp_path / "conf" / "bad.yaml"
    bad.parent.mkdir()
    bad.write_text("spark: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad)
    no_date = tmp_path / "conf" / "no_date.yaml"
    no_date.write_text("jobs:\n  ingest:\n    timestamp_bounds: {min: 2011-13-01}\n")
    with pytest.raises(ConfigError, match="no_date.yaml: not valid YAML: month must be in 1..12"):
        load_settings(no_date)
    listy = tmp_path / "conf" / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_settings(listy)

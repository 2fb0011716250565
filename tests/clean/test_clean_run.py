"""The clean stage's entry point: table names from params (catalog defaults), its result's metrics."""

from __future__ import annotations

from marketlab.clean.audit import Accounting
from marketlab.clean.params import CleanParams
from marketlab.clean.run import CleanResult


def test_params_name_catalog_tables_per_kind(settings):
    p = CleanParams()
    assert [p.input_table(k) for k in p.tables] == ["bronze.orders", "bronze.campaign_log", "bronze.sessions"]
    assert p.output_tables("orders") == ("silver.order_lines", "silver.returns", "silver.adjustments")
    every = [p.audit_table, *(p.input_table(k) for k in p.tables), *(t for k in p.tables for t in p.output_tables(k))]
    assert [t for t in every if t not in settings.catalog] == []


def test_result_metrics_flatten_every_accounting():
    orders = Accounting("bronze.orders", 10, {"silver.order_lines": 6, "silver.returns": 1}, {"duplicate": 3},
                        {"description_trimmed": 2})
    campaign = Accounting("bronze.campaign_log", 5, {"silver.campaign_log": 5})
    res = CleanResult([orders, campaign], ["silver.order_lines", "silver.returns", "silver.campaign_log"])
    assert res.metrics() == {"orders.bronze_rows": 10, "orders.rows.order_lines": 6, "orders.rows.returns": 1,
                             "orders.excluded.duplicate": 3, "orders.altered.description_trimmed": 2,
                             "campaign_log.bronze_rows": 5, "campaign_log.rows.campaign_log": 5}

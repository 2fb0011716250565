"""Orchestration of the clean stage over a lake: read bronze, clean, write silver + audit,
check the row accounting. Used by ``jobs/clean.py``, the ``silver`` test fixture and the
benchmark, so all three run exactly the same code.
"""

from __future__ import annotations

import logging

from pyspark.sql import functions as F

from marketlab.clean.audit import Accounting, build_accounting, check_accounting, count_audit, union_all
from marketlab.clean.orders import clean_orders
from marketlab.clean.params import CleanParams
from marketlab.clean.survey import clean_campaign, clean_sessions
from marketlab.tables import Lake

log = logging.getLogger(__name__)

BRONZE_OF = {"orders": "bronze.orders", "campaign": "bronze.campaign_log", "sessions": "bronze.sessions"}
SILVER_OF = {"orders": ("silver.order_lines", "silver.returns", "silver.adjustments"),
             "campaign": ("silver.campaign_log",), "sessions": ("silver.sessions",)}
AUDIT_TABLE = "silver._audit"


def clean_tables(lake: Lake, params: CleanParams, log_metrics: bool = True) -> list[Accounting]:
    """Clean ``params.tables`` from bronze into silver and write ``silver._audit``.

    Each silver table is one overwrite commit; the audit is replaced for the cleaned
    sources only (``replaceWhere`` on ``source_table``), so cleaning one source leaves the
    others' audit rows in place. Reruns produce the same tables.

    Args:
        lake: The lake.
        params: Clean params.
        log_metrics: Log the accounting to the active MLflow run (if any).

    Returns:
        One :class:`Accounting` per cleaned bronze table.

    Raises:
        marketlab.runtime.JobError: A bronze table is missing or the accounting does not
            balance.
    """
    from marketlab.runtime import JobError

    audits, silver_counts, bronze_counts, cached = [], {}, {}, []
    for kind in params.tables:
        src = BRONZE_OF[kind]
        if not lake.exists(src):
            raise JobError(f"{src} does not exist: run the ingest job first")
        bronze = lake.read(src)
        bronze_counts[kind] = bronze.count()
        if kind == "orders":
            co = clean_orders(bronze, params.orders)
            cached.append(co.routed)
            outs = {"silver.order_lines": co.order_lines, "silver.returns": co.returns, "silver.adjustments": co.adjustments}
            audits.append(co.audit)
        elif kind == "campaign":
            silver, audit = clean_campaign(bronze, params.campaign)
            outs = {"silver.campaign_log": silver}
            audits.append(audit)
        else:
            silver, audit = clean_sessions(bronze, params.sessions)
            outs = {"silver.sessions": silver}
            audits.append(audit)
        for name, df in outs.items():
            lake.write(df, name)
            silver_counts.setdefault(kind, {})[name] = lake.read(name).count()
    sources = [BRONZE_OF[k] for k in params.tables]
    audit = union_all(audits)
    replace = None if set(params.tables) == set(BRONZE_OF) else "source_table IN (" + ",".join(f"'{s}'" for s in sources) + ")"
    lake.write(audit, AUDIT_TABLE, replace_where=replace)
    counts = count_audit(lake.read(AUDIT_TABLE).where(F.col("source_table").isin(sources)))
    for df in cached:
        df.unpersist()
    accounting = [build_accounting(BRONZE_OF[k], bronze_counts[k], silver_counts[k], counts) for k in params.tables]
    if log_metrics:
        import mlflow

        if mlflow.active_run() is not None:
            for acc in accounting:
                mlflow.log_metrics(acc.as_metrics())
    for acc in accounting:
        check_accounting(acc)
    return accounting

"""The clean stage's entry point: bronze -> silver + audit through the lake, with exact row
accounting. Used by ``jobs/clean.py``, the ``silver`` test fixture and the benchmarks, so all
of them run exactly the same code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import get_args

from pyspark.sql import functions as F

from marketlab.clean.audit import Accounting, build_accounting, check_accounting, count_audit, union_all
from marketlab.clean.orders import clean_orders
from marketlab.clean.params import CleanParams, Kind
from marketlab.clean.survey import clean_campaign, clean_sessions
from marketlab.errors import MissingTableError
from marketlab.tables import Lake

log = logging.getLogger(__name__)


@dataclass
class CleanResult:
    """What the clean stage wrote.

    Attributes:
        accounting: One :class:`Accounting` per cleaned bronze table (balanced).
        silver_tables: Silver tables written, in order (what the quality gate checks next).
        versions: Catalog name -> Delta version written (silver tables and the audit).
    """

    accounting: list[Accounting]
    silver_tables: list[str]
    versions: dict[str, int] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """The accounting as flat MLflow metrics, e.g. ``orders.excluded.duplicate``."""
        return {k: v for acc in self.accounting for k, v in acc.as_metrics().items()}


def run(lake: Lake, params: CleanParams) -> CleanResult:
    """Clean ``params.tables`` from bronze into silver and write the audit table.

    Each silver table is one overwrite commit; the audit is replaced for the cleaned
    sources only (``replaceWhere`` on ``source_table``), so cleaning one source leaves the
    others' audit rows in place. Reruns produce the same tables.

    Args:
        lake: The lake.
        params: Clean params (rules and table names).

    Returns:
        The row accounting and the tables written.

    Raises:
        MissingTableError: A bronze table has not been ingested.
        GateFailedError: The accounting of a source does not balance (tables were written).
    """
    audits, silver_counts, bronze_counts, cached, versions = [], {}, {}, [], {}
    for kind in params.tables:
        src = params.input_table(kind)
        if not lake.exists(src):
            raise MissingTableError(f"{src} does not exist: run the ingest job first")
        bronze = lake.read(src)
        bronze_counts[kind] = bronze.count()
        if kind == "orders":
            co = clean_orders(bronze, params.orders, source_table=src, sales_table=params.order_lines_table,
                              returns_table=params.returns_table)
            cached.append(co.routed)
            silver = (co.order_lines, co.returns, co.adjustments)
            audits.append(co.audit)
        else:
            clean = clean_campaign if kind == "campaign" else clean_sessions
            rules = params.campaign if kind == "campaign" else params.sessions
            table, audit = clean(bronze, rules, table=params.output_tables(kind)[0], source_table=src)
            silver = (table,)
            audits.append(audit)
        for name, df in zip(params.output_tables(kind), silver):
            versions[name] = lake.write(df, name)
            # ungated: the gate has not evaluated this fresh version yet (the job runs it next)
            silver_counts.setdefault(kind, {})[name] = lake.read_ungated(name).count()
    sources = [params.input_table(k) for k in params.tables]
    every_kind = set(params.tables) == set(get_args(Kind))
    replace = None if every_kind else "source_table IN (" + ",".join(f"'{s}'" for s in sources) + ")"
    versions[params.audit_table] = lake.write(union_all(audits), params.audit_table, replace_where=replace)
    counts = count_audit(lake.read(params.audit_table).where(F.col("source_table").isin(sources)))
    for df in cached:
        df.unpersist()
    accounting = [build_accounting(params.input_table(k), bronze_counts[k], silver_counts[k], counts)
                  for k in params.tables]
    for acc in accounting:
        check_accounting(acc)
    silver_tables = [t for k in params.tables for t in params.output_tables(k)]
    return CleanResult(accounting, silver_tables, versions)

"""The audit trail of cleaning: one row per bronze row a rule excluded or altered.

``silver._audit`` columns: ``table`` (silver table the row was bound for), ``source_table``
(bronze table), ``action`` (``excluded`` | ``altered``), ``reason`` (rule code),
``detail`` (what changed), the bronze lineage ``_source_file``, ``_line``, ``_batch_id``
and ``record`` (the bronze row as JSON, so nothing excluded is lost).

Accounting invariant, checked by :func:`check_accounting`: for every bronze table,
``bronze rows = rows in its silver tables + excluded audit rows`` — exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.errors import GateFailedError

EXCLUDED = "excluded"
ALTERED = "altered"

AUDIT_COLUMNS = ("table", "source_table", "action", "reason", "detail", C.SOURCE_FILE, C.LINE, C.BATCH_ID, "record")


def data_columns(df: DataFrame) -> list[str]:
    """Columns of ``df`` that are data (not lineage, not helper columns starting with ``_``)."""
    return [c for c in df.columns if not c.startswith("_")]


def audit_rows(
    df: DataFrame,
    condition: Column,
    *,
    table: str | Column,
    source_table: str,
    action: str,
    reason: str | Column,
    detail: str | Column | None = None,
    record_columns: list[str] | None = None,
) -> DataFrame:
    """Audit rows for the rows of ``df`` matching ``condition``.

    Args:
        df: Bronze-shaped rows (with lineage columns).
        condition: Which rows the rule hit.
        table: Silver table the rows were bound for.
        source_table: Bronze table they came from.
        action: ``excluded`` or ``altered``.
        reason: Rule code (literal or per-row column).
        detail: Human-readable change (literal or column).
        record_columns: Columns serialised into ``record`` (default: the data columns).

    Returns:
        Rows with :data:`AUDIT_COLUMNS`.
    """
    cols = record_columns or data_columns(df)
    as_col = lambda v: v if isinstance(v, Column) else F.lit(v)  # noqa: E731
    return df.where(condition).select(
        as_col(table).cast("string").alias("table"),
        F.lit(source_table).alias("source_table"),
        F.lit(action).alias("action"),
        as_col(reason).cast("string").alias("reason"),
        as_col(detail).cast("string").alias("detail"),
        _col_or_null(df, C.SOURCE_FILE, "string"),
        _col_or_null(df, C.LINE, "long"),
        _col_or_null(df, C.BATCH_ID, "string"),
        F.to_json(F.struct(*[F.col(c) for c in cols]), {"ignoreNullFields": "false"}).alias("record"),
    )


def _col_or_null(df: DataFrame, name: str, dtype: str) -> Column:
    return (F.col(name) if name in df.columns else F.lit(None)).cast(dtype).alias(name)


def union_all(frames: list[DataFrame]) -> DataFrame:
    """Union by name of non-empty list of frames."""
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out


@dataclass
class Accounting:
    """Row accounting of one bronze table.

    Attributes:
        source_table: Bronze table.
        bronze_rows: Rows read.
        silver_rows: Rows written per silver table.
        excluded: Excluded rows per reason.
        altered: Altered rows per reason (informative; they are also silver rows).
    """

    source_table: str
    bronze_rows: int
    silver_rows: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)
    altered: dict[str, int] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        """Whether bronze = silver + excluded exactly."""
        return self.bronze_rows == sum(self.silver_rows.values()) + sum(self.excluded.values())

    def as_metrics(self) -> dict[str, float]:
        """Flat MLflow metrics, e.g. ``orders.excluded.duplicate``."""
        short = self.source_table.split(".")[-1]
        out: dict[str, float] = {f"{short}.bronze_rows": self.bronze_rows}
        out.update({f"{short}.rows.{t.split('.')[-1]}": n for t, n in self.silver_rows.items()})
        out.update({f"{short}.excluded.{r}": n for r, n in self.excluded.items()})
        out.update({f"{short}.altered.{r}": n for r, n in self.altered.items()})
        return out


def count_audit(audit: DataFrame) -> dict[tuple[str, str, str], int]:
    """``(source_table, action, reason) -> rows`` of an audit frame (one Spark job)."""
    rows = audit.groupBy("source_table", "action", "reason").count().collect()
    return {(r["source_table"], r["action"], r["reason"]): int(r["count"]) for r in rows}


def build_accounting(source_table: str, bronze_rows: int, silver_rows: dict[str, int],
                     audit_counts: dict[tuple[str, str, str], int]) -> Accounting:
    """Assemble the :class:`Accounting` of one bronze table from counted parts."""
    acc = Accounting(source_table, bronze_rows, dict(silver_rows))
    for (src, action, reason), n in sorted(audit_counts.items()):
        if src != source_table:
            continue
        (acc.excluded if action == EXCLUDED else acc.altered)[reason] = n
    return acc


def check_accounting(acc: Accounting) -> None:
    """Raise if rows were lost or duplicated by cleaning.

    Raises:
        GateFailedError: bronze rows != silver rows + excluded rows (the row-accounting
            gate); the message gives every term.
    """
    if not acc.balanced:
        raise GateFailedError(
            f"row accounting of {acc.source_table} does not balance: bronze {acc.bronze_rows} != "
            f"silver {acc.silver_rows} + excluded {acc.excluded} "
            f"(difference {acc.bronze_rows - sum(acc.silver_rows.values()) - sum(acc.excluded.values())})")

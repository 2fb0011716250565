"""Cleaning of the survey-like sources: the campaign log (Hillstrom) and the sessions
(Online Shoppers). Each rule comes from conf and each hit leaves an audit row.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.clean.audit import ALTERED, EXCLUDED, audit_rows, union_all
from marketlab.clean.params import CampaignRules, SessionRules
from marketlab.errors import ConfError


def _fix_values(df: DataFrame, fixes: dict[str, dict[str, str]], *, table: str, source_table: str,
                record_columns: list[str]) -> tuple[DataFrame, list[DataFrame]]:
    """Apply the spelling fixes of ``fixes`` (column -> {wrong: right}).

    Returns:
        The fixed frame and one ``altered`` audit frame (reason ``fix_<column>``) per fixed
        column, computed on the rows before the fix.

    Raises:
        ConfError: A fix names a column the table does not have.
    """
    fixed, audits = df, []
    for col, mapping in fixes.items():
        if not mapping:
            continue
        if col not in df.columns:
            raise ConfError(f"value_fixes: column '{col}' is not in the table (columns: {df.columns})")
        mapped = F.create_map(*[F.lit(x) for kv in mapping.items() for x in kv])
        audits.append(audit_rows(df, F.col(col).isin(list(mapping)), table=table, source_table=source_table,
                                 action=ALTERED, reason=f"fix_{col}",
                                 detail=F.concat(F.lit(f"{col}: "), F.col(col), F.lit(" -> "), mapped[F.col(col)]),
                                 record_columns=record_columns))
        fixed = fixed.withColumn(col, F.coalesce(mapped[F.col(col)], F.col(col)))
    return fixed, audits


def _lineage(df: DataFrame) -> list[str]:
    return [c for c in (C.SOURCE_FILE, C.LINE, C.BATCH_ID) if c in df.columns]


def _duplicate_flag(df: DataFrame, cols: list[str]) -> Column:
    """True for every copy of an exact duplicate but the first (by source line)."""
    from pyspark.sql.window import Window

    order = [F.col(C.LINE)] if C.LINE in df.columns else [F.monotonically_increasing_id()]
    return F.row_number().over(Window.partitionBy(*cols).orderBy(*order)) > 1


def clean_campaign(
    bronze: DataFrame,
    rules: CampaignRules,
    *,
    table: str = "silver.campaign_log",
    source_table: str = "bronze.campaign_log",
) -> tuple[DataFrame, DataFrame]:
    """Bronze campaign log -> silver rows and audit rows.

    ``customer_id`` is the record's source line minus 1 (stable across re-ingests of the
    same file); the arm column ``segment`` becomes ``treatment``; ``history_bin`` is the
    bin number parsed from ``history_segment``.

    Args:
        bronze: ``bronze.campaign_log`` rows (with lineage).
        rules: Campaign rules from conf.
        table: Silver table name (for the audit).
        source_table: Bronze table name (for the audit).

    Returns:
        ``(silver, audit)``.
    """
    data_cols = [c for c in bronze.columns if not c.startswith("_")]
    df = bronze.withColumn("_unknown_arm", ~F.coalesce(F.col(C.TREATMENT).isin(rules.treatments), F.lit(False)))
    df = df.withColumn("_dup", _duplicate_flag(df, data_cols) if rules.drop_duplicates else F.lit(False))
    df = df.withColumn("_bin", F.regexp_extract(F.coalesce(F.col("history_segment"), F.lit("")),
                                                rules.history_bin_pattern, 1))
    excluded = F.col("_unknown_arm") | F.col("_dup")
    audits = [
        audit_rows(df, F.col("_unknown_arm"), table=table, source_table=source_table, action=EXCLUDED,
                   reason="unknown_treatment", detail=F.concat(F.lit("segment="), F.coalesce(F.col(C.TREATMENT), F.lit("null"))),
                   record_columns=data_cols),
        audit_rows(df, ~F.col("_unknown_arm") & F.col("_dup"), table=table, source_table=source_table,
                   action=EXCLUDED, reason="duplicate", record_columns=data_cols),
    ]
    kept = df.where(~excluded)
    audits.append(audit_rows(kept, F.col("_bin") == "", table=table, source_table=source_table, action=ALTERED,
                             reason="history_bin_unparsed",
                             detail=F.concat(F.lit("history_segment="), F.coalesce(F.col("history_segment"), F.lit("null"))),
                             record_columns=data_cols))
    fixed, fix_audits = _fix_values(kept, rules.value_fixes, table=table, source_table=source_table,
                                    record_columns=data_cols)
    audits += fix_audits
    line = F.col(C.LINE) if C.LINE in fixed.columns else F.monotonically_increasing_id() + 2
    silver = fixed.select(
        (line - 1).cast("long").alias("customer_id"),
        F.col(C.TREATMENT).alias("treatment"),
        F.col("recency").cast("int"), F.col("history").cast("double"),
        F.when(F.col("_bin") == "", None).otherwise(F.col("_bin")).cast("int").alias("history_bin"),
        "history_segment",
        F.col("mens").cast("int"), F.col("womens").cast("int"), "zip_code", F.col("newbie").cast("int"), "channel",
        F.col("visit").cast("int"), F.col("conversion").cast("int"), F.col("spend").cast("double"),
        *_lineage(fixed),
    )
    return silver, union_all(audits)


def clean_sessions(
    bronze: DataFrame,
    rules: SessionRules,
    *,
    table: str = "silver.sessions",
    source_table: str = "bronze.sessions",
    revenue_col: str = C.REVENUE,
) -> tuple[DataFrame, DataFrame]:
    """Bronze sessions -> silver rows and audit rows.

    Rows with every ``all_missing_columns`` value null are excluded; sentinel values
    (-1 durations) become null; month spellings are fixed; ``label`` = revenue as 0/1;
    ``session_id`` = source line minus 1.

    Args:
        bronze: ``bronze.sessions`` rows (with lineage).
        rules: Session rules from conf.
        table: Silver table name (for the audit).
        source_table: Bronze table name (for the audit).
        revenue_col: Purchase flag column.

    Returns:
        ``(silver, audit)``.
    """
    data_cols = [c for c in bronze.columns if not c.startswith("_")]
    for col in (*rules.sentinel_columns, *rules.all_missing_columns):
        if col not in bronze.columns:
            raise ConfError(f"sessions rules name column '{col}', which {source_table} does not have")
    all_missing = reduce(lambda a, b: a & b, [F.col(c).isNull() for c in rules.all_missing_columns])
    df = bronze.withColumn("_all_missing", all_missing)
    df = df.withColumn("_dup", _duplicate_flag(df, data_cols) if rules.drop_duplicates else F.lit(False))
    audits = [
        audit_rows(df, F.col("_all_missing"), table=table, source_table=source_table, action=EXCLUDED,
                   reason="all_missing", detail=F.lit("all of " + ",".join(rules.all_missing_columns) + " null"),
                   record_columns=data_cols),
        audit_rows(df, ~F.col("_all_missing") & F.col("_dup"), table=table, source_table=source_table,
                   action=EXCLUDED, reason="duplicate", record_columns=data_cols),
    ]
    kept = df.where(~F.col("_all_missing") & ~F.col("_dup"))
    sentinel = F.lit(rules.missing_sentinel)
    has_sentinel = reduce(lambda a, b: a | b, [F.coalesce(F.col(c) == sentinel, F.lit(False)) for c in rules.sentinel_columns])
    audits.append(audit_rows(
        kept, has_sentinel, table=table, source_table=source_table, action=ALTERED, reason="sentinel_to_null",
        detail=F.concat_ws(",", *[F.when(F.col(c) == sentinel, F.lit(c)) for c in rules.sentinel_columns]),
        record_columns=data_cols))
    for c in rules.sentinel_columns:
        kept = kept.withColumn(c, F.when(F.col(c) == sentinel, F.lit(None)).otherwise(F.col(c)))
    fixed, fix_audits = _fix_values(kept, rules.value_fixes, table=table, source_table=source_table,
                                    record_columns=data_cols)
    audits += fix_audits
    line = F.col(C.LINE) if C.LINE in fixed.columns else F.monotonically_increasing_id() + 2
    silver = fixed.select(
        (line - 1).cast("long").alias(C.SESSION_ID),
        *data_cols,
        F.col(revenue_col).cast("int").alias(C.LABEL),
        *_lineage(fixed),
    )
    return silver, union_all(audits)

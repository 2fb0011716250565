"""The data-quality gate: declarative expectations (conf) evaluated on a table version.

Schema expectations are validated by pandera's PySpark backend (column presence and Spark
types, metadata only). Row-level expectations (not_null, range, isin, null_rate) are
evaluated together in ONE aggregate pass that returns the offending count of each, so a
failure message can say how many rows broke it; uniqueness, foreign keys, freshness and
row-count drift each take one more small job.

Results have one row per expectation and table version (``quality.results``):
``table, version, expectation, kind, column, severity, passed, offending, rows,
observed, detail, checked_at, run_id``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from marketlab.quality.params import Expectation

RESULT_SCHEMA = ("table string, version long, expectation string, kind string, column string, severity string, "
                 "passed boolean, offending long, rows long, observed double, detail string, checked_at timestamp, "
                 "run_id string")

_ROW_KINDS = {"not_null", "range", "isin", "null_rate", "timestamp_bounds"}


@dataclass(frozen=True)
class Result:
    """Outcome of one expectation."""

    table: str
    version: int | None
    expectation: str
    kind: str
    column: str | None
    severity: str
    passed: bool
    offending: int
    rows: int
    observed: float | None
    detail: str

    def message(self) -> str:
        """One line for humans: ``silver.x v3: quantity_positive (range) failed: 12 of 100 rows ...``."""
        state = "passed" if self.passed else "FAILED"
        return (f"{self.table} v{self.version}: {self.expectation} ({self.kind}, {self.severity}) {state}: "
                f"{self.offending} offending of {self.rows} rows; {self.detail}")


def _bad_row(e: Expectation, window: tuple[dt.datetime, dt.datetime] | None):
    col = F.col(e.column)
    if e.kind == "timestamp_bounds":
        if window is None:
            raise ValueError(f"expectation '{e.name}' needs timestamp_window (jobs.ingest.timestamp_bounds)")
        lo, hi = (F.lit(t.strftime("%Y-%m-%d %H:%M:%S")).cast("timestamp") for t in window)
        ts = col.cast("timestamp")
        return F.coalesce((ts < lo) | (ts > hi), F.lit(False))
    if e.kind in ("not_null", "null_rate"):
        return col.isNull()
    if e.kind == "range":
        cond = F.lit(False)
        if e.min is not None:
            cond = cond | (col < F.lit(e.min))
        if e.max is not None:
            cond = cond | (col > F.lit(e.max))
        return F.coalesce(cond, F.lit(False))  # nulls are not_null's business
    if e.kind == "isin":
        return F.coalesce(~col.isin(list(e.values)), F.lit(False))
    raise ValueError(e.kind)


def _check_schema(df: DataFrame, e: Expectation) -> tuple[bool, int, str]:
    import pandera.pyspark as pa
    from pandera.config import ValidationDepth, config_context
    from pyspark.sql.types import _parse_datatype_string

    schema = pa.DataFrameSchema({c: pa.Column(_parse_datatype_string(t), nullable=True) for c, t in e.columns.items()},
                                name=e.name)
    with config_context(validation_depth=ValidationDepth.SCHEMA_ONLY):
        out = schema.validate(df)
    errors = dict(out.pandera.errors or {})
    problems = [f"{x.get('column')}: {x.get('check')}" for cat in errors.values() for lst in cat.values() for x in lst]
    return not problems, len(problems), "; ".join(problems) or f"{len(e.columns)} columns with expected types"


def evaluate(
    df: DataFrame,
    table: str,
    expectations: list[Expectation],
    *,
    version: int | None = None,
    previous_rows: int | None = None,
    read_ref: Callable[[str], DataFrame] | None = None,
    today: dt.date | None = None,
    timestamp_window: tuple[dt.datetime, dt.datetime] | None = None,
) -> list[Result]:
    """Evaluate ``expectations`` on ``df`` (one table version).

    Args:
        df: The table version.
        table: Its catalog name.
        expectations: What to check.
        version: Delta version evaluated (recorded in results).
        previous_rows: Row count of the previous version (``row_count_drift``; passes
            when None: nothing to compare with).
        read_ref: Reads a referenced table by catalog name (``foreign_key``).
        today: Reference date for ``freshness`` (default: the expectation's
            ``reference_date`` or today).
        timestamp_window: ``(earliest, latest)`` of ``timestamp_bounds`` (inclusive, naive
            UTC; :meth:`marketlab.ingest.params.TimestampBounds.window`).

    Returns:
        One :class:`Result` per expectation, in order.
    """
    row_exps = [e for e in expectations if e.kind in _ROW_KINDS]
    aggs = [F.count(F.lit(1)).alias("__rows")]
    aggs += [F.sum(F.when(_bad_row(e, timestamp_window), 1).otherwise(0)).alias(f"__e{i}") for i, e in enumerate(row_exps)]
    agg = df.agg(*aggs).first()
    n = int(agg["__rows"])
    bad = {e.name: int(agg[f"__e{i}"] or 0) for i, e in enumerate(row_exps)}
    out: list[Result] = []
    for e in expectations:
        observed: float | None = None
        if e.kind in ("not_null", "range", "isin", "timestamp_bounds"):
            off = bad[e.name]
            passed, detail = off == 0, _describe(e, timestamp_window)
        elif e.kind == "null_rate":
            off = bad[e.name]
            observed = off / n if n else 0.0
            passed = observed <= float(e.max_fraction)
            detail = f"null rate {observed:.4f} (max {e.max_fraction})"
        elif e.kind == "schema":
            passed, off, detail = _check_schema(df, e)
        elif e.kind == "min_rows":
            off = max(0, int(e.min) - n)
            passed, detail = n >= e.min, f"{n} rows (min {int(e.min)})"
        elif e.kind == "unique":
            distinct = df.select(*e.columns_list).distinct().count()
            off = n - distinct
            passed, detail = off == 0, f"{off} duplicate key rows on {e.columns_list}"
        elif e.kind == "foreign_key":
            if read_ref is None:
                raise ValueError(f"expectation '{e.name}' needs read_ref to read {e.ref_table}")
            ref = read_ref(e.ref_table).select(F.col(e.ref_column).alias(e.column)).distinct()
            off = df.where(F.col(e.column).isNotNull()).join(ref, e.column, "left_anti").count()
            passed, detail = off == 0, f"{off} rows whose {e.column} is not in {e.ref_table}.{e.ref_column}"
        elif e.kind == "row_count_drift":
            if previous_rows:
                observed = n / previous_rows - 1.0
                passed = abs(observed) <= float(e.max_fraction)
                off = abs(n - previous_rows)
                detail = f"{n} rows vs {previous_rows} in the previous version ({observed:+.2%}, max ±{e.max_fraction:.0%})"
            else:
                passed, off, detail = True, 0, "no previous version to compare with"
        elif e.kind == "freshness":
            ref_day = today or (dt.date.fromisoformat(e.reference_date) if e.reference_date else dt.date.today())
            latest = df.agg(F.max(F.to_date(F.col(e.column)))).first()[0]
            age = (ref_day - latest).days if latest else None
            observed = float(age) if age is not None else None
            passed = age is not None and age <= e.max_age_days
            off = 0 if passed else 1
            detail = f"latest {e.column} {latest}, {age} days before {ref_day} (max {e.max_age_days})"
        else:  # pragma: no cover - the params model restricts kinds
            raise ValueError(e.kind)
        out.append(Result(table, version, e.name, e.kind, e.column, e.severity, bool(passed), int(off), n,
                          observed, detail))
    return out


def _describe(e: Expectation, window: tuple[dt.datetime, dt.datetime] | None = None) -> str:
    if e.kind == "not_null":
        return f"{e.column} must not be null"
    if e.kind == "timestamp_bounds":
        return f"{e.column} within [{window[0]}, {window[1]}] (jobs.ingest.timestamp_bounds)"
    if e.kind == "range":
        return f"{e.column} within [{e.min}, {e.max}]"
    return f"{e.column} in {list(e.values)[:10]}"


def results_frame(spark: SparkSession, results: list[Result], run_id: str | None = None) -> DataFrame:
    """Results as a DataFrame with :data:`RESULT_SCHEMA` (for ``quality.results``)."""
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    rows = [(r.table, r.version, r.expectation, r.kind, r.column, r.severity, r.passed, r.offending, r.rows,
             r.observed, r.detail, now, run_id) for r in results]
    return spark.createDataFrame(rows, RESULT_SCHEMA)


def blocking_failures(results: list[Result]) -> list[Result]:
    """Failed blocking expectations."""
    return [r for r in results if not r.passed and r.severity == "blocking"]


def gate_message(failures: list[Result]) -> str:
    """The error text of a failed gate: every failed blocking expectation with its count."""
    return "data-quality gate failed: " + " | ".join(r.message() for r in failures)

"""Running the gate against lake tables, and the check downstream jobs make before reading.

``check_tables`` evaluates the current version of each table, merges the results into
``quality.results`` (one commit; key: table, version, expectation, so a rerun replaces),
logs them to the active MLflow run and raises :class:`~marketlab.runtime.JobError` when
a blocking expectation failed. ``require_passed`` is what a downstream job calls: it
refuses a table version the gate has not passed.
"""

from __future__ import annotations

import logging

from pyspark.sql import functions as F

from marketlab.quality.gate import Result, blocking_failures, evaluate, gate_message, results_frame
from marketlab.quality.params import QualityParams
from marketlab.tables import Lake

log = logging.getLogger(__name__)


def _previous_rows(lake: Lake, table: str, version: int) -> int | None:
    if version <= 0:
        return None
    return lake.spark.read.format("delta").option("versionAsOf", version - 1).load(lake.path(table)).count()


def check_tables(lake: Lake, tables: list[str], params: QualityParams, run_id: str | None = None,
                 raise_on_failure: bool = True) -> list[Result]:
    """Evaluate, record and enforce the expectations of ``tables`` (current versions).

    Args:
        lake: The lake (tables are read from it; results written to it).
        tables: Catalog names to check; tables without expectations are skipped.
        params: Quality params (expectations per table).
        run_id: MLflow run id recorded with the results.
        raise_on_failure: Raise when a blocking expectation failed (after recording).

    Returns:
        All results.

    Raises:
        marketlab.runtime.JobError: A blocking expectation failed; the message names each
            one with its offending count.
    """
    import mlflow

    results: list[Result] = []
    for table in tables:
        exps = params.expectations.get(table)
        if not exps:
            continue
        df = lake.read(table)
        version = lake.reads[table]
        prev = _previous_rows(lake, table, version) if any(e.kind == "row_count_drift" for e in exps) else None
        results += evaluate(df, table, exps, version=version, previous_rows=prev, read_ref=lake.read)
    if not results:
        return results
    lake.merge(results_frame(lake.spark, results, run_id), params.results_table, keys=["table", "version", "expectation"])
    if mlflow.active_run() is not None:
        mlflow.log_metrics({f"quality.{r.table}.{r.expectation}.offending": r.offending for r in results})
        mlflow.log_metrics({"quality.failed_blocking": len(blocking_failures(results)),
                            "quality.failed_warning": sum(1 for r in results if not r.passed and r.severity == "warning")})
        mlflow.log_text("\n".join(r.message() for r in results), "quality/results.txt")
    for r in results:
        if not r.passed:
            log.warning("%s", r.message())
    failures = blocking_failures(results)
    if failures and raise_on_failure:
        from marketlab.runtime import JobError

        raise JobError(gate_message(failures))
    return results


def require_passed(lake: Lake, tables: list[str], results_table: str = "quality.results") -> None:
    """Refuse to read a table version that has not passed the gate.

    Call before reading silver tables: the check is against the version ``lake.read``
    will pin next (the current one).

    Raises:
        marketlab.runtime.JobError: No gate result for the current version, or a blocking
            expectation failed on it (named, with its offending count).
    """
    from marketlab.runtime import JobError

    if not lake.exists(results_table):
        raise JobError(f"no data-quality results ({results_table} missing): run the clean job first")
    res = lake.read(results_table)
    for table in tables:
        version = lake.version(table)
        rows = res.where((F.col("table") == table) & (F.col("version") == version)).collect()
        if not rows:
            raise JobError(f"{table} version {version} has no data-quality result: run the clean job (gate) on it first")
        bad = [r for r in rows if r["severity"] == "blocking" and not r["passed"]]
        if bad:
            raise JobError(f"{table} version {version} failed the data-quality gate: " + "; ".join(
                f"{r['expectation']} ({r['offending']} offending rows)" for r in bad))

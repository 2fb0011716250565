"""The quality gate's entry point over lake tables, and the check downstream stages make before reading.

:func:`run` evaluates the current version of each table and merges the results into the
results table (one commit; key: table, version, expectation, so a rerun replaces). The
caller logs the :class:`GateResult` and then calls :meth:`GateResult.raise_if_failed`, so a
failed gate is recorded before it stops the job.

Downstream stages need not call anything: :meth:`marketlab.tables.Lake.read` refuses a
version of a gated table that the gate has not passed (:func:`require_passed` makes the
same check up front). The gate reads the versions it evaluates with
:meth:`~marketlab.tables.Lake.read_ungated`: they have no result yet.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from marketlab.errors import GateFailedError
from marketlab.quality.gate import Result, blocking_failures, evaluate, gate_message, results_frame
from marketlab.quality.params import QualityParams
from marketlab.tables import Lake

log = logging.getLogger(__name__)


@dataclass
class GateResult:
    """The outcome of one gate run.

    Attributes:
        results: One :class:`~marketlab.quality.gate.Result` per expectation checked.
        version: Delta version of the results table written (None: nothing to check).
    """

    results: list[Result] = field(default_factory=list)
    version: int | None = None

    @property
    def failures(self) -> list[Result]:
        """Blocking expectations that failed."""
        return blocking_failures(self.results)

    @property
    def warnings(self) -> list[Result]:
        """Warning-level expectations that failed."""
        return [r for r in self.results if not r.passed and r.severity == "warning"]

    def metrics(self) -> dict[str, float]:
        """Offending rows per expectation and the failure counts, as flat MLflow metrics."""
        out: dict[str, float] = {f"quality.{r.table}.{r.expectation}.offending": r.offending for r in self.results}
        if self.results:
            out.update({"quality.failed_blocking": len(self.failures), "quality.failed_warning": len(self.warnings)})
        return out

    def raise_if_failed(self) -> None:
        """Raise when a blocking expectation failed.

        Raises:
            GateFailedError: The message names each failed expectation with its offending count.
        """
        if self.failures:
            raise GateFailedError(gate_message(self.failures))


def run(lake: Lake, tables: list[str], params: QualityParams, run_id: str | None = None) -> GateResult:
    """Evaluate and record the expectations of ``tables`` (current versions).

    A failed expectation does not raise here (see :meth:`GateResult.raise_if_failed`).

    Args:
        lake: The lake (tables are read from it; results written to it).
        tables: Catalog names to check; tables without expectations are skipped.
        params: Quality params (expectations per table, results table). ``timestamp_bounds``
            expectations use the lake settings' ``jobs.ingest.timestamp_bounds``.
        run_id: MLflow run id recorded with the results.

    Returns:
        All results.
    """
    results: list[Result] = []
    # The range ingest admitted, as of now: its upper end moves with the clock, so silver
    # that passed at ingest still passes, and a date that slipped past ingest does not.
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    window = lake.settings.jobs.ingest.timestamp_bounds.window(now)
    for table in tables:
        exps = params.expectations.get(table)
        if not exps:
            continue
        version = lake.version(table)
        prev = None
        if version and any(e.kind == "row_count_drift" for e in exps):
            # Read the previous version first, so the version recorded for the job's lineage
            # is the checked one read next.
            prev = lake.read_ungated(table, version - 1).count()
        df = lake.read_ungated(table, version)
        # A referenced table is one this run may have just evaluated (results are merged below).
        results += evaluate(df, table, exps, version=version, previous_rows=prev, read_ref=lake.read_ungated,
                            timestamp_window=window)
    if not results:
        return GateResult()
    written = lake.merge(results_frame(lake.spark, results, run_id), params.results_table,
                         keys=["table", "version", "expectation"])
    for r in results:
        if not r.passed:
            log.warning("%s", r.message())
    return GateResult(results, written)


def require_passed(lake: Lake, tables: list[str], results_table: str | None = None) -> None:
    """Refuse table versions that have not passed the gate (the check every ``lake.read`` of
    a gated table makes; call it to fail before any work).

    The check is against the version ``lake.read`` will pin next (the current one).

    Args:
        lake: The lake.
        tables: Catalog names (tables without expectations always pass).
        results_table: Ignored; the lake's ``jobs.quality.results_table`` is used.

    Raises:
        GateFailedError: No gate result for the current version, or a blocking expectation
            failed on it (named, with its offending count).
    """
    for table in tables:
        problem = lake.gate_problem(table)
        if problem is not None:
            raise GateFailedError(problem)

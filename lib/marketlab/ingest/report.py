"""Human-readable summary of an ingest run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from marketlab.ingest.run import IngestSummary
from marketlab.tables import Lake


def print_summary(summary: IngestSummary, lake: Lake, run_id: str, console: Console | None = None) -> None:
    """Print files, rows in / bronze / quarantined by reason, table versions and the MLflow run."""
    console = console or Console()
    files = Table(title="ingest: files")
    for col in ("source", "file", "status", "records", "bronze", "rejected", "note"):
        files.add_column(col, justify="right" if col in ("records", "bronze", "rejected") else "left")
    for f in summary.files:
        files.add_row(f.source, f.file.rsplit("/", 1)[-1], f.status, f"{f.records:,}", f"{f.bronze_rows:,}",
                      f"{f.rejected_rows:,}", f.message[:80])
    console.print(files)
    reasons = summary.rejected_by_reason()
    if reasons:
        quarantine = Table(title="quarantined by reason")
        quarantine.add_column("reason")
        quarantine.add_column("rows", justify="right")
        for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            quarantine.add_row(reason, f"{n:,}")
        console.print(quarantine)
    tables = Table(title="tables")
    for col in ("table", "delta version", "rows"):
        tables.add_column(col)
    for name in sorted(set(lake.writes) | set(lake.reads)):
        if lake.exists(name):
            tables.add_row(name, str(lake.version(name)), f"{lake.spark.read.format('delta').load(lake.path(name)).count():,}")
    console.print(tables)
    console.print(f"MLflow run: {run_id}")

"""MLflow logging of a report run: the HTML file as an artifact, its size and partial sections."""

from __future__ import annotations

import mlflow

from marketlab.report.run import ReportResult


def log_result(res: ReportResult) -> None:
    """Log ``report/<file>.html``, the section counts and where the file is."""
    mlflow.log_artifact(str(res.path), "report")
    mlflow.log_metrics(res.metrics())
    mlflow.set_tags({"report.path": str(res.path), "report.partial": ", ".join(res.partial) or "none"})

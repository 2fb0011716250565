"""MLflow logging of a gate run (called by the job that ran the gate, inside its run)."""

from __future__ import annotations

import mlflow

from marketlab.quality.run import GateResult


def log_result(gate: GateResult) -> None:
    """Log the offending counts as metrics and every expectation's outcome as ``quality/results.txt``."""
    if not gate.results:
        return
    mlflow.log_metrics(gate.metrics())
    mlflow.log_text("\n".join(r.message() for r in gate.results), "quality/results.txt")

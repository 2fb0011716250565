"""The run report: one self-contained HTML file (inline CSS, base64 PNG plots, HTML tables).

* :mod:`marketlab.report.collect` reads the lake (aggregated in Spark, only small frames
  reach the driver) and the MLflow runs of each job into :class:`ReportInputs`;
* :mod:`marketlab.report.sections` turns those pandas frames and metric dicts into HTML
  sections (pure functions: no Spark, no MLflow); a missing input becomes a visible
  ``not available: <reason>`` note, never an exception;
* :func:`marketlab.report.run.run` (the stage's entry point) ties both together and writes the file.

``params`` is imported by the conf model, so this package imports nothing heavy at import
time: ``from marketlab.report import render_report`` resolves lazily.
"""

from __future__ import annotations

from typing import Any

__all__ = ["render_report", "collect_inputs"]


def __getattr__(name: str) -> Any:
    if name == "render_report":
        from marketlab.report.build import render_report

        return render_report
    if name == "collect_inputs":
        from marketlab.report.collect import collect_inputs

        return collect_inputs
    raise AttributeError(name)

"""The report stage's entry point: collect the lake's and the MLflow runs' inputs, render every
section, write one self-contained HTML file (and its ``latest.html`` copy)."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from marketlab.config import Settings
from marketlab.report.build import LATEST, render_report, render_sections, reports_dir, write_report
from marketlab.report.collect import collect_inputs
from marketlab.report.model import Section
from marketlab.tables import Lake


@dataclass
class ReportResult:
    """A written report: its file, the ``latest.html`` copy and the rendered sections."""

    path: Path
    latest: Path
    sections: list[Section]

    @property
    def partial(self) -> list[str]:
        """Titles of sections with at least one ``not available`` part."""
        return [s.title for s in self.sections if s.unavailable]

    def metrics(self) -> dict[str, float]:
        """Sections, partial sections and the file's size in KiB."""
        return {"sections": len(self.sections), "sections_partial": len(self.partial),
                "size_kb": self.path.stat().st_size / 1024}


def run(lake: Lake, settings: Settings, secret: str, run_id: str | None = None,
        out_dir: str | os.PathLike | None = None, now: dt.datetime | None = None) -> ReportResult:
    """Collect the inputs of ``lake`` and the settings' MLflow experiment, write the report.

    Args:
        lake: The lake to report on (reads are recorded for lineage).
        settings: Loaded settings (``jobs.report`` params, the MLflow store).
        secret: Pseudonymisation secret of ``customer_key`` (:func:`marketlab.privacy.resolve_secret`).
        run_id: MLflow run id of the report job (part of the file name).
        out_dir: Folder for the reports (default :func:`~marketlab.report.build.reports_dir`).
        now: Timestamp (UTC) of the report (default: now).

    Raises:
        ConfError: No ``out_dir`` and no local folder to derive it from.
    """
    p = settings.jobs.report
    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    target = Path(out_dir) if out_dir is not None else reports_dir(settings)
    inp = collect_inputs(lake, settings, secret)
    secs = render_sections(inp)
    path = write_report(render_report(inp, p.title, run_id, now, secs), target, run_id, now, p.keep)
    return ReportResult(path, target / LATEST, secs)

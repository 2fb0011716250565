"""Render the run report's sections and document, and write the HTML file (see :mod:`marketlab.report.run`)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Callable

from marketlab.config import Settings
from marketlab.errors import ConfError
from marketlab.report import sections as S
from marketlab.report.collect import ReportInputs
from marketlab.report.html import render_document
from marketlab.report.model import Section, Unavailable

log = logging.getLogger(__name__)

LATEST = "latest.html"


def _guard(key: str, build: Callable[[], Section]) -> Section:
    """A section builder that raised still yields its section, with the error as the note."""
    try:
        return build()
    except Exception as exc:  # noqa: BLE001 - one broken section must not lose the report
        log.warning("report section %s failed: %s: %s", key, type(exc).__name__, exc, exc_info=True)
        return Section(key, S.TITLES[key]).na(f"rendering failed ({type(exc).__name__}: {str(exc)[:300]})")


def _params(run) -> dict:
    return {} if isinstance(run, Unavailable) or run is None else run.params


def render_sections(inp: ReportInputs) -> list[Section]:
    """Every section of the report, in order (pure: no Spark, no MLflow)."""
    info = inp.settings_info
    rows = int(info.get("max_table_rows", 40))
    outcomes = tuple(info.get("effect_outcomes", ("visit", "conversion", "spend")))
    return [
        _guard("quality", lambda: S.quality_section(inp.quality_results, inp.metrics("clean"), inp.audit_counts,
                                                    inp.ingest_log, rows)),
        _guard("distributions", lambda: S.distributions_section(inp.order_values, inp.quantities, inp.rfm)),
        _guard("segments", lambda: S.segments_section(inp.segment_profiles, inp.metrics("segments"), rows,
                                                      tuple(info.get("value_tiers", ())))),
        _guard("value", lambda: S.value_section(inp.customer_value, inp.value_calibration, inp.metrics("value"), rows)),
        _guard("intent", lambda: S.intent_section(inp.intent_bins, inp.intent_confusion, inp.intent_info,
                                                  inp.metrics("behaviour"), rows)),
        _guard("recommend", lambda: S.recommend_section(inp.metrics("recommend"), inp.recommendations,
                                                        int(info.get("recommend_k", 10)), rows)),
        _guard("forecast", lambda: S.forecast_section(inp.demand_history, inp.forecasts, inp.forecast_backtest,
                                                      inp.metrics("forecast"), rows)),
        _guard("inventory", lambda: S.inventory_section(inp.inventory_status, inp.inventory_plan,
                                                        inp.metrics("inventory"), rows)),
        _guard("uplift", lambda: S.uplift_section(inp.uplift_buckets, inp.metrics("effect"),
                                                  _params(inp.runs.get("effect")), outcomes, rows)),
        _guard("ab", lambda: S.ab_section(inp.evaluations, rows)),
        _guard("strategy", lambda: S.strategy_section(inp.strategy_summary, inp.metrics("strategy"), rows,
                                                      _params(inp.runs.get("strategy")))),
        _guard("campaign", lambda: S.campaign_section(inp.campaign_plans, inp.campaign_results, inp.campaign_featured,
                                                      rows)),
        _guard("drift", lambda: S.drift_section(inp.drift, rows)),
        _guard("importance", lambda: S.importance_section(inp.behaviour_importance, inp.effect_importance,
                                                          _params(inp.runs.get("effect")),
                                                          int(info.get("top_features", 15)))),
        _guard("lineage", lambda: S.lineage_section(inp.versions, inp.runs, info)),
    ]


def render_report(inp: ReportInputs, title: str = "MarketLab run report", run_id: str | None = None,
                  generated_at: dt.datetime | None = None, sections: list[Section] | None = None) -> str:
    """The complete, self-contained HTML document for ``inp`` (``sections``: already rendered ones)."""
    now = generated_at or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    secs = sections if sections is not None else render_sections(inp)
    partial = [s.title for s in secs if s.unavailable]
    info = inp.settings_info
    meta = [("generated (UTC)", now.strftime("%Y-%m-%d %H:%M:%S")), ("report run", run_id or "(not tracked)"),
            ("lake", info.get("lake_root", "")), ("MLflow", f"{info.get('tracking_uri', '')} "
                                                           f"(experiment {info.get('experiment', '')})"),
            ("sections with missing parts", ", ".join(partial) or "none")]
    subtitle = f"lake {info.get('lake_root', '')} - {now:%Y-%m-%d %H:%M} UTC"
    return render_document(title, subtitle, secs, meta)


def reports_dir(settings: Settings) -> Path:
    """``jobs.report.reports_dir``, else ``<lake_root>/../reports`` (local paths only)."""
    conf = settings.jobs.report.reports_dir
    if conf:
        return Path(settings.resolve(conf).removeprefix("file://").removeprefix("file:"))
    lake = settings.resolve(settings.lake_root)
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:/", lake) and not lake.startswith("file:"):
        raise ConfError(f"lake_root {lake} is not a local folder: set jobs.report.reports_dir")
    return Path(lake.removeprefix("file://").removeprefix("file:")).resolve().parent / "reports"


def write_report(html: str, out_dir: Path, run_id: str | None, now: dt.datetime, keep: int = 0) -> Path:
    """Write ``report-<timestamp>-<run id>.html`` and copy it to ``latest.html`` (atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"report-{now:%Y%m%d-%H%M%S}-{(run_id or 'local')[:12]}.html"
    path = out_dir / name
    tmp = out_dir / f".{name}.tmp"
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, path)
    latest_tmp = out_dir / f".{LATEST}.tmp"
    shutil.copyfile(path, latest_tmp)
    os.replace(latest_tmp, out_dir / LATEST)
    if keep:
        old = sorted(out_dir.glob("report-*.html"))[:-keep]
        for p in old:
            p.unlink(missing_ok=True)
    return path

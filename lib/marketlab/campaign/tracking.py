"""MLflow logging of a campaign run: one child run per wave (predicted, measured, ROI, regret)."""

from __future__ import annotations

import math

import mlflow

from marketlab.campaign.run import CampaignResult, WaveSummary


def wave_metrics(s: WaveSummary) -> dict[str, float]:
    """Flat metrics of one wave (NaNs dropped): sizes, predicted totals and ROI with bounds, truth."""
    out = {"customers": s.customers, "contacts": s.contacts, "vetoed_items": s.vetoed_items,
           "model.ridge_effect": s.ridge_effect}
    for k, (mid, lo, hi) in s.predicted.items():
        out.update({f"predicted.{k}": mid, f"predicted.{k}.low": lo, f"predicted.{k}.high": hi})
    for k, (mid, lo, hi) in s.roi.items():
        out.update({f"roi.{k}": mid, f"roi.{k}.low": lo, f"roi.{k}.high": hi})
    out.update({f"true.{k}": v for k, v in s.true.items()})
    out["true.total_profit_sent"] = s.true_total
    if s.true:
        out["true.regret"] = s.true["oracle"] - s.true["strategy"]
        out["true.gap_closed"] = s.gap_closed
    out.update({f"responses.{k}": v for k, v in s.ingest.items()})
    return {k: float(v) for k, v in out.items() if v == v}


def log_campaign_run(res: CampaignResult) -> None:
    """Inside the job's run: a child run per wave, the results and plans as CSV, the interval coverage."""
    for w in res.waves:
        with mlflow.start_run(run_name=f"wave {w.wave}", nested=True,
                              tags={"marketlab.wave": str(w.wave), "marketlab.campaign_id": w.campaign_id,
                                    "marketlab.run_kind": "effect_evaluation"}):
            mlflow.log_metrics(wave_metrics(w))
            if len(res.results):
                cells = res.results[res.results["wave"] == w.wave]
                if len(cells):
                    mlflow.log_text(cells.to_csv(index=False), "campaign/predicted_vs_measured.csv")
    if len(res.results):
        mlflow.log_text(res.results.to_csv(index=False), "campaign/results.csv")
        if not math.isnan(res.coverage):
            mlflow.log_metric("coverage", res.coverage)
    mlflow.log_text(res.plans.to_csv(index=False), "campaign/plans.csv")


def summary_line(res: CampaignResult, waves_table: str) -> str:
    """The job's one printed line."""
    last = res.waves[-1]
    curve = " ".join(f"w{w.wave}={w.gap_closed:.2f}" for w in res.waves if not math.isnan(w.gap_closed))
    cov = "n/a" if math.isnan(res.coverage) else f"{res.coverage:.0%}"
    return (f"campaign: {len(res.waves)} wave(s) to {waves_table}; last {last.campaign_id}: {last.contacts} e-mails of "
            f"{last.customers} customers, {last.vetoed_items} items vetoed; interval coverage {cov}; "
            f"gap closed (simulator) {curve or 'n/a'}")

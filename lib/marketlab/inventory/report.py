"""Summaries of solved plans for MLflow (small frames collected on the driver)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from marketlab.inventory.lp import ERROR, INFEASIBLE_RELAXED, OPTIMAL, UNBOUNDED_RELAXED, EMPTY

STATUSES = (OPTIMAL, INFEASIBLE_RELAXED, UNBOUNDED_RELAXED, EMPTY, ERROR)


def summarize_status(status: pd.DataFrame, prefix: str = "") -> dict[str, float]:
    """Metrics of one scenario's status rows (one row per warehouse).

    Totals use demand-weighted rates: fill rate = 1 - lost / demand over all warehouses.
    ``total_cost`` is ordering + holding + shortage + safety cost (before the terminal
    credit and without the penalty of the relaxation slack, an artefact, not money).

    Args:
        status: Status rows (columns of :data:`marketlab.inventory.batch.STATUS_COLUMNS`).
        prefix: Prepended to every metric name (``backtest_``).

    Returns:
        Metric name -> value (NaN-free: metrics without data are left out).
    """
    counts = Counter(status["status"])
    out: dict[str, float] = {f"{prefix}n_warehouses": float(len(status))}
    out.update({f"{prefix}status_{s}": float(counts.get(s, 0)) for s in STATUSES})
    costs = status[["cost_ordering", "cost_holding", "cost_shortage", "cost_safety"]].fillna(0.0)
    out[f"{prefix}total_cost"] = float(costs.to_numpy().sum())
    out[f"{prefix}solve_seconds"] = float(status["solve_seconds"].sum())
    out[f"{prefix}lp_variables"] = float(status["n_vars"].fillna(0).sum())
    d = status["demand_total"].fillna(0.0)
    if d.sum() > 0:
        planned_lost = ((1.0 - status["planned_fill_rate"]) * d).fillna(0.0)
        out[f"{prefix}planned_fill_rate"] = float(1.0 - planned_lost.sum() / d.sum())
    if "actual_total" in status and status["actual_total"].notna().any():
        a = status["actual_total"].fillna(0.0)
        lost = ((1.0 - status["realized_fill_rate"]) * a).fillna(0.0)
        if a.sum() > 0:
            out[f"{prefix}realized_fill_rate"] = float(1.0 - lost.sum() / a.sum())
        out[f"{prefix}realized_cost"] = float(status["realized_cost"].fillna(0.0).sum())
    slack = status[["slack_capacity", "slack_budget", "slack_fill_rate"]].fillna(0.0).sum()
    out.update({f"{prefix}{k}": float(v) for k, v in slack.items()})
    return {k: v for k, v in out.items() if np.isfinite(v)}


def realized_cycle_service(plan: pd.DataFrame) -> float:
    """Share of item-periods with realised demand that had no stock-out (all warehouses)."""
    has = plan["actual_demand"] > 0
    if not has.any():
        return float("nan")
    return float((plan.loc[has, "realized_shortage"] <= 1e-9).mean())

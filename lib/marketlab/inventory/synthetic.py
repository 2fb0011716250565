"""Synthetic warehouses for tests and the benchmark (same columns as the real problem frame)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from marketlab.inventory.batch import PROBLEM_COLUMNS


def synthetic_problems(n_warehouses: int, n_items: int = 50, n_periods: int = 8, lead_time: int = 0,
                       min_fill_rate: float = 0.9, infeasible_every: int = 0, seed: int = 0) -> pd.DataFrame:
    """A long problem frame of random but realistic warehouses, sorted.

    Demand is intermittent (lognormal sizes, ~40% zero item-periods, as in the retail
    data); capacity is 4 and budget 1.2 periods of mean demand, so budgets bind in peaks.

    Args:
        n_warehouses: Warehouses (independent LPs).
        n_items: Items per warehouse.
        n_periods: Periods per LP. Variables per LP: n_items x (4 T - L).
        lead_time: Lead time (periods).
        min_fill_rate: Fill-rate target.
        infeasible_every: Every k-th warehouse starts over capacity (0: none).
        seed: Random seed.

    Returns:
        Columns :data:`marketlab.inventory.batch.PROBLEM_COLUMNS`.
    """
    rng = np.random.default_rng(seed)
    W, n, T = n_warehouses, n_items, n_periods
    size = (W, n, T)
    demand = rng.lognormal(1.5, 1.0, size) * (rng.random(size) > 0.4)
    safety = 0.8 * np.sqrt(demand + 1.0) * (demand > 0)
    cost = np.round(rng.uniform(0.5, 10.0, (W, n)), 2)
    mean = demand.mean(axis=2)
    initial = mean * 1.0
    cap = 4.0 * mean.sum(axis=1)
    if infeasible_every:
        cap[::infeasible_every] = 0.5 * initial[::infeasible_every].sum(axis=1)
    budget = 1.2 * (cost * mean).sum(axis=1)
    per_item = lambda a: np.repeat(a.reshape(-1), T)  # noqa: E731
    per_wh = lambda a: np.repeat(a, n * T)  # noqa: E731
    frame = pd.DataFrame({
        "warehouse": per_wh(np.array([f"W{w:06d}" for w in range(W)])),
        "item_id": per_item(np.tile(np.array([f"I{i:05d}" for i in range(n)]), W)),
        "period": np.tile(np.arange(1, T + 1, dtype=np.int32), W * n),
        "demand": demand.reshape(-1), "safety_stock": safety.reshape(-1), "actual": np.nan,
        "unit_cost": per_item(cost), "holding_cost": per_item(cost * 0.005), "shortage_cost": per_item(cost * 2.0),
        "safety_cost": per_item(cost * 0.3), "volume": 1.0, "initial_stock": per_item(initial),
        "capacity": per_wh(cap), "budget": per_wh(budget), "lead_time": np.int32(lead_time),
        "min_fill_rate": min_fill_rate, "relax_penalty": per_wh(cost.max(axis=1) * 1000.0),
        "terminal_value": per_item(cost),
    })
    return frame[PROBLEM_COLUMNS]

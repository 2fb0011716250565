"""Solve many warehouses' LPs per map task, from a long "problem" frame.

A problem frame has one row per warehouse x item x period (columns :data:`PROBLEM_COLUMNS`),
sorted by warehouse, item, period, each item carrying all T periods. Warehouse-level values
(capacity, budget of *that period*, lead time, fill-rate target, relax penalty) are repeated
on every row, so a batch of rows is self-describing and needs no side input.

Throughput design: Spark's ``groupBy().applyInPandas`` pays a pandas frame, an Arrow round
trip and a Python call per group; with thousands of small LPs that overhead dominates the
solve. Here the frame is hash-partitioned by warehouse and sorted within partitions, and
``mapInPandas`` streams Arrow batches of many warehouses into one long-lived Python worker
per task. Each batch is cut into warehouses by key boundaries on numpy arrays, a warehouse
split across two Arrow batches is carried over to the next one, and the results of a
whole batch are emitted as one frame.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from marketlab.inventory.lp import WarehouseProblem, WarehouseResult, solve_warehouse

PROBLEM_COLUMNS = [
    "warehouse", "item_id", "period", "demand", "safety_stock", "actual", "unit_cost", "holding_cost",
    "shortage_cost", "safety_cost", "volume", "initial_stock", "capacity", "budget", "lead_time",
    "min_fill_rate", "relax_penalty", "terminal_value",
]

PLAN_FIELDS = [
    ("item_id", T.StringType()), ("period", T.IntegerType()), ("order_qty", T.DoubleType()),
    ("arrival_qty", T.DoubleType()), ("inventory_end", T.DoubleType()), ("shortage", T.DoubleType()),
    ("safety_shortfall", T.DoubleType()), ("demand_p50", T.DoubleType()), ("safety_stock", T.DoubleType()),
    ("actual_demand", T.DoubleType()), ("realized_shortage", T.DoubleType()),
]
STATUS_FIELDS = [
    ("status", T.StringType()), ("message", T.StringType()), ("objective", T.DoubleType()),
    ("solve_seconds", T.DoubleType()), ("iterations", T.IntegerType()), ("n_items", T.IntegerType()),
    ("n_vars", T.IntegerType()), ("n_constraints", T.IntegerType()), ("slack_capacity", T.DoubleType()),
    ("slack_budget", T.DoubleType()), ("slack_fill_rate", T.DoubleType()), ("cost_ordering", T.DoubleType()),
    ("cost_holding", T.DoubleType()), ("cost_shortage", T.DoubleType()), ("cost_safety", T.DoubleType()),
    ("planned_fill_rate", T.DoubleType()), ("demand_total", T.DoubleType()), ("actual_total", T.DoubleType()),
    ("realized_fill_rate", T.DoubleType()), ("realized_cycle_service", T.DoubleType()),
    ("realized_cost", T.DoubleType()),
]
# One output schema for both record kinds: `record` = "plan" (one row per item x period)
# or "status" (one row per warehouse); the other kind's columns are null.
RESULT_SCHEMA = T.StructType(
    [T.StructField("record", T.StringType(), False), T.StructField("warehouse", T.StringType(), False)]
    + [T.StructField(n, t, True) for n, t in PLAN_FIELDS + STATUS_FIELDS]
)
PLAN_COLUMNS = ["warehouse"] + [n for n, _ in PLAN_FIELDS]
STATUS_COLUMNS = ["warehouse"] + [n for n, _ in STATUS_FIELDS]


def problems_from_frame(pdf: pd.DataFrame) -> Iterator[WarehouseProblem]:
    """Cut a sorted long problem frame into :class:`WarehouseProblem` objects.

    Args:
        pdf: Rows of complete warehouses, sorted by warehouse, item_id, period.

    Yields:
        One problem per warehouse, in frame order.

    Raises:
        ValueError: A warehouse's rows are not items x the same periods.
    """
    if pdf.empty:
        return
    wh = pdf["warehouse"].to_numpy()
    cols = {c: pdf[c].to_numpy() for c in PROBLEM_COLUMNS if c not in ("warehouse",)}
    starts = np.r_[0, np.flatnonzero(wh[1:] != wh[:-1]) + 1]
    ends = np.r_[starts[1:], len(wh)]
    for a, b in zip(starts, ends):
        yield _problem(str(wh[a]), {k: v[a:b] for k, v in cols.items()})


def _problem(warehouse: str, c: dict[str, np.ndarray]) -> WarehouseProblem:
    period = c["period"].astype(np.int64)
    T_ = int(period.max())
    n = len(period) // T_
    if n * T_ != len(period) or not np.array_equal(period, np.tile(np.arange(1, T_ + 1), n)):
        raise ValueError(f"warehouse {warehouse}: rows are not items x periods 1..{T_} sorted by item, period")
    first = np.arange(n) * T_

    def grid(name: str) -> np.ndarray:
        return c[name].astype(float).reshape(n, T_)

    return WarehouseProblem(
        warehouse=warehouse, item_ids=c["item_id"][first], demand=grid("demand"), safety=grid("safety_stock"),
        unit_cost=c["unit_cost"][first].astype(float), holding_cost=c["holding_cost"][first].astype(float),
        shortage_cost=c["shortage_cost"][first].astype(float), safety_cost=c["safety_cost"][first].astype(float),
        volume=c["volume"][first].astype(float), initial=c["initial_stock"][first].astype(float),
        capacity=c["capacity"][:T_].astype(float), budget=c["budget"][:T_].astype(float),
        lead_time=int(c["lead_time"][0]), min_fill_rate=float(c["min_fill_rate"][0]),
        relax_penalty=float(c["relax_penalty"][0]), terminal_value=c["terminal_value"][first].astype(float),
    )


def simulate(result: WarehouseResult, p: WarehouseProblem, actual: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """Play the plan's orders against realised demand (lost sales, no re-planning).

    Args:
        result: A solved plan (orders fixed as planned).
        p: Its problem (initial stock, costs).
        actual: (n, T) realised demand.

    Returns:
        (n, T) realised lost sales and the backtest metrics: fill rate (served / demand),
        cycle service level (share of item-periods with demand and no stock-out) and the
        realised ordering + holding + shortage cost less the terminal credit.
    """
    n, T_ = actual.shape
    stock = p.initial.astype(float).copy()
    lost = np.zeros((n, T_))
    held = np.zeros(n)
    for t in range(T_):  # T is small; vectorised over items
        avail = stock + result.arrival[:, t]
        served = np.minimum(avail, actual[:, t])
        lost[:, t] = actual[:, t] - served
        stock = avail - served
        held += stock
    total = float(actual.sum())
    has = actual > 0
    metrics = {
        "actual_total": total,
        "realized_fill_rate": float(1.0 - lost.sum() / total) if total > 0 else float("nan"),
        "realized_cycle_service": float((lost[has] <= 1e-9).mean()) if has.any() else float("nan"),
        "realized_cost": float(p.unit_cost @ result.order.sum(axis=1) + p.holding_cost @ held
                               + p.shortage_cost @ lost.sum(axis=1)
                               - (p.terminal_value @ stock if p.terminal_value is not None else 0.0)),
    }
    return lost, metrics


def results_frame(pairs: Iterable[tuple[WarehouseProblem, WarehouseResult, np.ndarray | None]]) -> pd.DataFrame:
    """Plan and status records of many solved warehouses as one frame (:data:`RESULT_SCHEMA`)."""
    plans, statuses = [], []
    for p, r, actual in pairs:
        st = {
            "warehouse": r.warehouse, "status": r.status, "message": r.message, "objective": r.objective,
            "solve_seconds": r.solve_seconds, "iterations": r.iterations, "n_items": r.n_items, "n_vars": r.n_vars,
            "n_constraints": r.n_constraints, "slack_capacity": r.slack_capacity, "slack_budget": r.slack_budget,
            "slack_fill_rate": r.slack_fill_rate, "demand_total": float(p.demand.sum()),
        }
        for k in ("ordering", "holding", "shortage", "safety"):
            st[f"cost_{k}"] = r.costs.get(k, np.nan)
        if r.order is not None:
            n, T_ = r.order.shape
            d = float(p.demand.sum())
            st["planned_fill_rate"] = 1.0 - float(r.shortage.sum()) / d if d > 0 else np.nan
            lost = np.full((n, T_), np.nan)
            if actual is not None and not np.isnan(actual).any():
                lost, metrics = simulate(r, p, actual)
                st.update(metrics)
            plans.append(pd.DataFrame({
                "warehouse": r.warehouse, "item_id": np.repeat(r.item_ids, T_),
                "period": np.tile(np.arange(1, T_ + 1, dtype=np.int32), n),
                "order_qty": r.order.ravel(), "arrival_qty": r.arrival.ravel(), "inventory_end": r.inventory.ravel(),
                "shortage": r.shortage.ravel(), "safety_shortfall": r.safety_shortfall.ravel(),
                "demand_p50": p.demand.ravel(), "safety_stock": p.safety.ravel(),
                "actual_demand": (actual if actual is not None else np.full((n, T_), np.nan)).ravel(),
                "realized_shortage": lost.ravel(),
            }))
        statuses.append(st)
    parts = []
    if plans:
        parts.append(pd.concat(plans, ignore_index=True).assign(record="plan"))
    if statuses:
        parts.append(pd.DataFrame(statuses).assign(record="status"))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    out = out.reindex(columns=RESULT_SCHEMA.fieldNames())
    for f in RESULT_SCHEMA.fields:
        if isinstance(f.dataType, T.IntegerType):
            out[f.name] = out[f.name].astype("Int32")
    return out


def solve_frame(pdf: pd.DataFrame, time_limit: float = 60.0) -> pd.DataFrame:
    """Solve every warehouse of a sorted long problem frame in this process.

    The driver-side reference (tests, the benchmark's bare loop) and the body of a map task.
    A malformed warehouse yields an ``error`` status row, not an exception.
    """
    pairs = []
    wh = pdf["warehouse"].to_numpy()
    starts = np.r_[0, np.flatnonzero(wh[1:] != wh[:-1]) + 1] if len(wh) else np.zeros(0, int)
    ends = np.r_[starts[1:], len(wh)] if len(wh) else np.zeros(0, int)
    cols = {c: pdf[c].to_numpy() for c in PROBLEM_COLUMNS if c != "warehouse"}
    for a, b in zip(starts, ends):
        sl = {k: v[a:b] for k, v in cols.items()}
        try:
            p = _problem(str(wh[a]), sl)
        except ValueError as exc:
            r = WarehouseResult(warehouse=str(wh[a]), status="error", message=str(exc), objective=float("nan"),
                                solve_seconds=0.0, iterations=0, n_items=0, n_vars=0, n_constraints=0)
            empty = WarehouseProblem(str(wh[a]), np.zeros(0, object), np.zeros((0, 1)), np.zeros((0, 1)),
                                     *[np.zeros(0)] * 6, np.zeros(1), np.zeros(1))
            pairs.append((empty, r, None))
            continue
        actual = sl["actual"].astype(float).reshape(p.n_items, p.n_periods)
        pairs.append((p, solve_warehouse(p, time_limit), None if np.isnan(actual).any() else actual))
    return results_frame(pairs)


def _map_batches(time_limit: float):
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        carry: pd.DataFrame | None = None
        for batch in batches:
            if carry is not None:
                batch = pd.concat([carry, batch], ignore_index=True)
            if batch.empty:
                continue
            wh = batch["warehouse"].to_numpy()
            # The last warehouse may continue in the next Arrow batch: hold it back.
            last = int(np.flatnonzero(wh != wh[-1])[-1]) + 1 if (wh != wh[-1]).any() else 0
            carry = batch.iloc[last:]
            if last:
                yield solve_frame(batch.iloc[:last], time_limit)
        if carry is not None and not carry.empty:
            yield solve_frame(carry, time_limit)

    return run


def solve_distributed(problems: DataFrame, partitions: int = 0, time_limit: float = 60.0) -> DataFrame:
    """Solve every warehouse's LP in map tasks, many warehouses per Arrow batch.

    Args:
        problems: Long problem frame (:data:`PROBLEM_COLUMNS`; any order).
        partitions: Map tasks (0 = the session's default parallelism).
        time_limit: HiGHS time limit per LP, seconds.

    Returns:
        Records of :data:`RESULT_SCHEMA` (``record`` = "plan" or "status").
    """
    spark = problems.sparkSession
    n = partitions or spark.sparkContext.defaultParallelism
    ordered = (problems.select(*PROBLEM_COLUMNS)
               .repartition(n, "warehouse")
               .sortWithinPartitions("warehouse", "item_id", "period"))
    return ordered.mapInPandas(_map_batches(time_limit), RESULT_SCHEMA)


def split_results(results: DataFrame, extra: tuple[str, ...] = ()) -> tuple[DataFrame, DataFrame]:
    """(plan rows, status rows) of a result frame, each with only its own columns.

    Args:
        results: Records of :data:`RESULT_SCHEMA` (plus ``extra`` columns).
        extra: Columns kept in front of both outputs (e.g. ``scenario``); a ``period_start``
            column, if present, is kept on the plan rows.
    """
    plan_cols = [*extra, *PLAN_COLUMNS] + (["period_start"] if "period_start" in results.columns else [])
    plan = results.filter(F.col("record") == "plan").select(*plan_cols)
    status = results.filter(F.col("record") == "status").select(*extra, *STATUS_COLUMNS)
    return plan, status

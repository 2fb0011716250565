"""One warehouse's inventory LP: build it as sparse matrices and solve it with HiGHS.

The model (docs/INVENTORY_LP.md has the math) per warehouse, items i and periods t:

* variables ``x[i,p]`` order placed in period p (arrives in p + L), ``I[i,t]`` end-of-period
  stock, ``s[i,t]`` unmet P50 demand (lost sales), ``u[i,t]`` shortfall below safety stock;
* balance ``I[i,t] = I[i,t-1] + x[i,t-L] - d[i,t] + s[i,t]``;
* soft safety stock ``I[i,t] + u[i,t] >= ss[i,t]``;
* capacity after arrivals ``sum_i v_i (I[i,t-1] + x[i,t-L]) <= C_t``;
* budget ``sum_i c_i x[i,p] <= B_p``;
* fill rate over the periods the plan controls ``sum s <= (1 - beta) sum d``;
* minimise ordering + holding + shortage + safety-shortfall cost, less the value of the
  stock left at the end of the horizon (without it every plan would run its safety stock
  down in the last periods, an artefact of the finite horizon).

An infeasible (or unbounded) LP is re-solved *elastically*: capacity, budget and fill-rate
rows get a non-negative slack column with a large penalty, which is always feasible and
bounded, so every warehouse gets a plan and the slack says how far conf is from reachable.

Everything here is numpy/scipy on one warehouse; no Spark. Matrices are assembled in one
COO call from index arrays (no Python loop over items or periods), which keeps model
building well below the HiGHS solve time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

# Status strings written to gold.inventory_status.
OPTIMAL = "optimal"
INFEASIBLE_RELAXED = "infeasible_relaxed"
UNBOUNDED_RELAXED = "unbounded_relaxed"
EMPTY = "empty"
ERROR = "error"


@dataclass
class WarehouseProblem:
    """Data of one warehouse's LP (n items, T periods).

    Attributes:
        warehouse: Warehouse name.
        item_ids: (n,) item ids, in row order of the arrays.
        demand: (n, T) P50 demand per period.
        safety: (n, T) safety stock target per period.
        unit_cost: (n,) purchase cost per unit.
        holding_cost: (n,) cost per unit held at the end of a period.
        shortage_cost: (n,) penalty per unit of unmet demand.
        safety_cost: (n,) penalty per unit-period below safety stock.
        volume: (n,) volume per unit (capacity units).
        initial: (n,) on-hand stock before period 1.
        capacity: (T,) capacity after arrivals per period; ``inf`` = unconstrained.
        budget: (T,) ordering budget per placement period; ``inf`` = unconstrained.
        lead_time: Periods from placing to receiving an order (0 <= L < T).
        min_fill_rate: Hard lower bound on planned fill rate in periods >= L (0 = none).
        relax_penalty: Penalty per unit of slack in the relaxed problem.
        terminal_value: (n,) value credited per unit left at the end of the horizon (the
            plan rolls on: stock left over is not lost). None = 0. Must be <= unit cost
            for the LP to stay bounded.
    """

    warehouse: str
    item_ids: np.ndarray
    demand: np.ndarray
    safety: np.ndarray
    unit_cost: np.ndarray
    holding_cost: np.ndarray
    shortage_cost: np.ndarray
    safety_cost: np.ndarray
    volume: np.ndarray
    initial: np.ndarray
    capacity: np.ndarray
    budget: np.ndarray
    lead_time: int = 0
    min_fill_rate: float = 0.0
    relax_penalty: float = 1e4
    terminal_value: np.ndarray | None = None

    @property
    def n_items(self) -> int:
        return int(self.demand.shape[0])

    @property
    def n_periods(self) -> int:
        return int(self.demand.shape[1])


@dataclass
class LPMatrices:
    """A built LP in ``scipy.optimize.linprog`` form plus the column layout."""

    c: np.ndarray
    A_ub: sp.csr_matrix
    b_ub: np.ndarray
    A_eq: sp.csr_matrix
    b_eq: np.ndarray
    bounds: np.ndarray  # (n_vars, 2)
    offsets: dict[str, int]
    slack_rows: dict[str, np.ndarray] = field(default_factory=dict)  # family -> slack column ids


@dataclass
class WarehouseResult:
    """Solver outcome and plan of one warehouse.

    Plan arrays are (n, T); ``order`` is indexed by the period the order is *placed*,
    ``arrival`` by the period it arrives. They are None when no plan exists (error).
    """

    warehouse: str
    status: str
    message: str
    objective: float
    solve_seconds: float
    iterations: int
    n_items: int
    n_vars: int
    n_constraints: int
    slack_capacity: float = 0.0
    slack_budget: float = 0.0
    slack_fill_rate: float = 0.0
    item_ids: np.ndarray | None = None
    order: np.ndarray | None = None
    arrival: np.ndarray | None = None
    inventory: np.ndarray | None = None
    shortage: np.ndarray | None = None
    safety_shortfall: np.ndarray | None = None
    costs: dict[str, float] = field(default_factory=dict)

    @property
    def relaxed(self) -> bool:
        return self.status in (INFEASIBLE_RELAXED, UNBOUNDED_RELAXED)


def build_lp(p: WarehouseProblem, relaxed: bool = False, order_cap: np.ndarray | None = None) -> LPMatrices:
    """Assemble the LP of one warehouse as sparse matrices (vectorised, no per-item loop).

    Args:
        p: The warehouse's data.
        relaxed: Add penalised slack columns to the capacity, budget and fill-rate rows.
        order_cap: Optional (n,) upper bound on each order (used to bound a relaxed LP).

    Returns:
        The matrices and the variable offsets (``x``, ``I``, ``s``, ``u``, ``e``).
    """
    n, T, L = p.n_items, p.n_periods, int(p.lead_time)
    if not 0 <= L < T:
        raise ValueError(f"lead time {L} must be in [0, {T})")
    Tx = T - L  # orders placed in p >= Tx would arrive after the horizon: no columns
    X, IO = 0, n * Tx
    S = IO + n * T
    U = S + n * T
    E = U + n * T
    ii, tt = np.divmod(np.arange(n * T), T)  # (i, t) of each balance row, item-major
    ip, pp = np.divmod(np.arange(n * Tx), Tx)

    # --- balance: I[t] - I[t-1] - x[t-L] - s[t] = -d[t] (+ I0 at t=0) -------------------
    rows = [ii * T + tt]
    cols = [IO + ii * T + tt]
    vals = [np.ones(n * T)]
    prev = tt >= 1
    rows.append((ii * T + tt)[prev]); cols.append((IO + ii * T + tt - 1)[prev]); vals.append(-np.ones(prev.sum()))
    rows.append(ii * T + tt); cols.append(S + ii * T + tt); vals.append(-np.ones(n * T))
    rows.append(ip * T + pp + L); cols.append(X + ip * Tx + pp); vals.append(-np.ones(n * Tx))
    A_eq = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n * T, E))
    b_eq = -p.demand.reshape(-1).astype(float)
    b_eq[np.arange(n) * T] += p.initial

    # --- inequalities -------------------------------------------------------------------
    r_, c_, v_, b_ = [], [], [], []
    nrow = 0
    # safety stock (only rows with a positive target): -I - u <= -ss
    ss = p.safety.reshape(-1)
    k = np.flatnonzero(ss > 0)
    r_ += [np.arange(k.size), np.arange(k.size)]
    c_ += [IO + k, U + k]
    v_ += [-np.ones(k.size), -np.ones(k.size)]
    b_.append(-ss[k])
    nrow += k.size

    families: dict[str, list[int]] = {"capacity": [], "budget": [], "fill_rate": []}
    # capacity after arrivals: sum v (I[t-1] + x[t-L]) <= C_t - [t=0] sum v I0
    cap_t = np.flatnonzero(np.isfinite(p.capacity))
    if cap_t.size:
        row_of = np.full(T, -1)
        row_of[cap_t] = nrow + np.arange(cap_t.size)
        hold = (tt >= 1) & (row_of[tt] >= 0)
        r_.append(row_of[tt[hold]]); c_.append(IO + ii[hold] * T + tt[hold] - 1); v_.append(p.volume[ii[hold]])
        arr = row_of[pp + L] >= 0
        r_.append(row_of[(pp + L)[arr]]); c_.append(X + ip[arr] * Tx + pp[arr]); v_.append(p.volume[ip[arr]])
        rhs = p.capacity[cap_t].astype(float).copy()
        rhs[cap_t == 0] -= float(p.volume @ p.initial)
        b_.append(rhs)
        families["capacity"] = list(row_of[cap_t])
        nrow += cap_t.size
    # budget per placement period: sum c x[p] <= B_p
    bud_p = np.flatnonzero(np.isfinite(p.budget[:Tx]))
    if bud_p.size:
        row_of = np.full(Tx, -1)
        row_of[bud_p] = nrow + np.arange(bud_p.size)
        keep = row_of[pp] >= 0
        r_.append(row_of[pp[keep]]); c_.append(X + ip[keep] * Tx + pp[keep]); v_.append(p.unit_cost[ip[keep]])
        b_.append(p.budget[bud_p].astype(float))
        families["budget"] = list(row_of[bud_p])
        nrow += bud_p.size
    # fill rate in the periods orders can reach: sum s <= (1 - beta) sum d
    ctrl = tt >= L
    d_ctrl = float(p.demand.reshape(-1)[ctrl].sum())
    if p.min_fill_rate > 0 and d_ctrl > 0:
        r_.append(np.full(int(ctrl.sum()), nrow)); c_.append(S + (ii * T + tt)[ctrl]); v_.append(np.ones(int(ctrl.sum())))
        b_.append(np.array([(1.0 - p.min_fill_rate) * d_ctrl]))
        families["fill_rate"] = [nrow]
        nrow += 1

    n_slack = 0
    slack_cols: dict[str, np.ndarray] = {}
    if relaxed:
        for fam, fam_rows in families.items():
            if fam_rows:
                ids = E + n_slack + np.arange(len(fam_rows))
                r_.append(np.asarray(fam_rows)); c_.append(ids); v_.append(-np.ones(len(fam_rows)))
                slack_cols[fam] = ids
                n_slack += len(fam_rows)
    n_vars = E + n_slack
    A_ub = sp.csr_matrix(
        (np.concatenate(v_) if v_ else np.zeros(0),
         (np.concatenate(r_).astype(np.int64) if r_ else np.zeros(0, np.int64),
          np.concatenate(c_).astype(np.int64) if c_ else np.zeros(0, np.int64))),
        shape=(nrow, n_vars))
    if n_slack:
        A_eq = sp.hstack([A_eq, sp.csr_matrix((n * T, n_slack))], format="csr")

    # --- objective and bounds -----------------------------------------------------------
    c = np.concatenate([
        np.repeat(p.unit_cost, Tx), np.repeat(p.holding_cost, T), np.repeat(p.shortage_cost, T),
        np.repeat(p.safety_cost, T), np.full(n_slack, p.relax_penalty)]).astype(float)
    if p.terminal_value is not None:
        c[IO + np.arange(n) * T + T - 1] -= p.terminal_value
    bounds = np.zeros((n_vars, 2))
    bounds[:, 1] = np.inf
    if order_cap is not None:
        bounds[X:IO, 1] = np.repeat(order_cap, Tx)
    bounds[S:U, 1] = p.demand.reshape(-1)  # cannot lose more than the demand
    bounds[U:E, 1] = ss  # shortfall below target is at most the target
    return LPMatrices(c=c, A_ub=A_ub, b_ub=np.concatenate(b_) if b_ else np.zeros(0), A_eq=A_eq, b_eq=b_eq,
                      bounds=bounds, offsets={"x": X, "I": IO, "s": S, "u": U, "e": E}, slack_rows=slack_cols)


def _run(m: LPMatrices, time_limit: float):
    t0 = time.perf_counter()
    res = linprog(m.c, A_ub=m.A_ub if m.A_ub.shape[0] else None, b_ub=m.b_ub if m.A_ub.shape[0] else None,
                  A_eq=m.A_eq, b_eq=m.b_eq, bounds=m.bounds, method="highs",
                  options={"time_limit": time_limit, "presolve": True})
    return res, time.perf_counter() - t0


def solve_warehouse(p: WarehouseProblem, time_limit: float = 60.0) -> WarehouseResult:
    """Solve one warehouse's LP; never raises for a bad problem.

    An infeasible or unbounded LP is re-solved relaxed (status ``infeasible_relaxed`` /
    ``unbounded_relaxed``, slack per constraint family reported); a warehouse without items
    gets ``empty``; anything else (time limit, numerical trouble, malformed data) gets
    ``error`` with HiGHS's message and no plan.

    Args:
        p: The warehouse's data.
        time_limit: HiGHS time limit per solve, seconds.

    Returns:
        Status, objective, solve time (both solves when relaxed), iterations and the plan.
    """
    n, T = p.n_items, p.n_periods
    base = dict(warehouse=p.warehouse, n_items=n)
    if n == 0:
        return WarehouseResult(status=EMPTY, message="no items with demand or stock", objective=0.0,
                               solve_seconds=0.0, iterations=0, n_vars=0, n_constraints=0, **base)
    try:
        m = build_lp(p)
        res, secs = _run(m, time_limit)
        iters = int(getattr(res, "nit", 0) or 0)
        status, message = OPTIMAL, str(res.message)
        if res.status in (2, 3):
            status = INFEASIBLE_RELAXED if res.status == 2 else UNBOUNDED_RELAXED
            message = f"{res.message.strip()} Re-solved with penalised slack on capacity, budget and fill rate."
            # a finite cap on orders keeps the relaxed LP bounded whatever the costs are
            cap = p.demand.sum(axis=1) + p.safety.max(axis=1) + 1.0
            m = build_lp(p, relaxed=True, order_cap=cap)
            res, secs2 = _run(m, time_limit)
            secs += secs2
            iters += int(getattr(res, "nit", 0) or 0)
        if res.status != 0 or res.x is None:
            return WarehouseResult(status=ERROR, message=f"HiGHS status {res.status}: {res.message}",
                                   objective=float("nan"), solve_seconds=secs, iterations=iters,
                                   n_vars=len(m.c), n_constraints=m.A_ub.shape[0] + m.A_eq.shape[0], **base)
    except Exception as exc:  # noqa: BLE001 - one bad warehouse must not fail the job
        return WarehouseResult(status=ERROR, message=f"{type(exc).__name__}: {exc}", objective=float("nan"),
                               solve_seconds=0.0, iterations=0, n_vars=0, n_constraints=0, **base)

    z = np.maximum(res.x, 0.0)  # HiGHS may return -1e-12 for zero
    L = int(p.lead_time)
    Tx = T - L
    o = m.offsets
    x = z[o["x"]:o["I"]].reshape(n, Tx)
    order = np.zeros((n, T))
    order[:, :Tx] = x
    arrival = np.zeros((n, T))
    arrival[:, L:] = x
    inv = z[o["I"]:o["s"]].reshape(n, T)
    short = z[o["s"]:o["u"]].reshape(n, T)
    under = z[o["u"]:o["e"]].reshape(n, T)
    slack = {fam: float(z[ids].sum()) for fam, ids in m.slack_rows.items()}
    costs = {
        "ordering": float(p.unit_cost @ x.sum(axis=1)),
        "holding": float(p.holding_cost @ inv.sum(axis=1)),
        "shortage": float(p.shortage_cost @ short.sum(axis=1)),
        "safety": float(p.safety_cost @ under.sum(axis=1)),
        "terminal_credit": -float((p.terminal_value if p.terminal_value is not None else np.zeros(n)) @ inv[:, -1]),
        "slack_penalty": float(p.relax_penalty * sum(slack.values())),
    }
    return WarehouseResult(
        status=status, message=message, objective=float(res.fun), solve_seconds=secs, iterations=iters,
        n_vars=len(m.c), n_constraints=m.A_ub.shape[0] + m.A_eq.shape[0],
        slack_capacity=slack.get("capacity", 0.0), slack_budget=slack.get("budget", 0.0),
        slack_fill_rate=slack.get("fill_rate", 0.0), item_ids=p.item_ids, order=order, arrival=arrival,
        inventory=inv, shortage=short, safety_shortfall=under, costs=costs, **base)

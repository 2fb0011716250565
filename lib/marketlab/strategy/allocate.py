"""Budgeted action choice per customer, solved exactly as a 0/1 program (HiGHS via SciPy).

maximise   sum_i sum_a profit[i, a] * x[i, a]          (a over contact actions)
subject to sum_a x[i, a] <= 1                             (one action per customer)
           sum_{i,a} x[i, a] <= max_contacts              (contact budget)
           sum_{i,a} cost[a] * x[i, a] <= max_cost        (money budget)
           sum_{i in s, a} x[i, a] <= cap_s               (per-segment caps)
           x binary

"Do nothing" is x[i, .] = 0 with profit 0. Pairs with profit <= 0 are never worth
choosing and are dropped before solving; without a money budget only each customer's
best action can be optimal, so one binary per customer remains. With only the contact budget and segment caps
the constraint matrix is a laminar family (customer within segment within total), so
the feasible sets form a laminar matroid and the greedy in descending profit is exactly
optimal (Edmonds); it runs in O(n log n) where HiGHS branch and bound on 64,000 binaries
did not finish in 60 s. The money budget with unequal costs is a true knapsack, which the
MILP solver closes exactly (or to the reported gap at the time limit).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from marketlab.errors import BadInputError

log = logging.getLogger(__name__)


class AllocationError(BadInputError):
    """The allocation problem is malformed (the message says how)."""


@dataclass
class Allocation:
    """Solver result.

    Attributes:
        choice: Chosen action per customer (index aligned with the profit frame); the
            control action where nobody is contacted.
        objective: Total expected profit of the choice.
        status: Solver message.
        mip_gap: Relative MIP gap at the end (0 = proven optimal).
        binding: Which constraints are tight ("budget", "cost", "segment:<s>").
    """

    choice: pd.Series
    objective: float
    status: str
    mip_gap: float
    binding: list[str]


def allocate(profit: pd.DataFrame, cost: dict[str, float], control: str, segments: pd.Series | None = None,
             max_contacts: int | None = None, max_cost: float | None = None,
             segment_caps: dict[str, int] | None = None, blocked: pd.DataFrame | None = None,
             time_limit_s: float = 60.0) -> Allocation:
    """Choose at most one contact action per customer to maximise expected profit.

    Args:
        profit: One row per customer, one column per contact action: expected profit of
            that action relative to doing nothing.
        cost: Contact cost per action (money budget).
        control: Name of the do-nothing action (used in ``choice``).
        segments: Segment of each customer (aligned with ``profit``), for caps.
        max_contacts: Most contacts in total (None = unlimited).
        max_cost: Most total contact cost (None = unlimited).
        segment_caps: Segment -> most contacts in that segment.
        blocked: Boolean frame like ``profit``; True forbids that action for that customer.
        time_limit_s: Solver time limit.

    Returns:
        The allocation.

    Raises:
        AllocationError: Negative budget, NaN profits, or misaligned inputs.
    """
    if max_contacts is not None and max_contacts < 0:
        raise AllocationError(f"max_contacts must be >= 0, got {max_contacts}")
    if max_cost is not None and max_cost < 0:
        raise AllocationError(f"max_cost must be >= 0, got {max_cost}")
    if profit.isna().any().any():
        raise AllocationError(f"profit has {int(profit.isna().sum().sum())} NaN value(s)")
    if segments is not None and len(segments) != len(profit):
        raise AllocationError("segments must align with profit rows")
    actions = list(profit.columns)
    n, m = profit.shape
    choice = pd.Series(control, index=profit.index, dtype=object)
    values = profit.to_numpy(dtype=float)
    ok = values > 0
    if blocked is not None:
        ok &= ~blocked.reindex(index=profit.index, columns=actions, fill_value=False).to_numpy(dtype=bool)
    if max_cost is None:
        # Every contact action uses one unit of the same budget and cap rows, so without a
        # money budget only each customer's best allowed action can be in an optimum:
        # the program shrinks to one binary per customer (exact, not a heuristic).
        masked = np.where(ok, values, -np.inf)
        best = masked.argmax(axis=1)
        keep = np.zeros_like(ok)
        keep[np.arange(n), best] = True
        ok &= keep
    rows, cols = np.nonzero(ok)
    if rows.size == 0 or max_contacts == 0 or max_cost == 0:
        return Allocation(choice, 0.0, "nothing to choose" if rows.size == 0 else "zero budget", 0.0, [])
    k = rows.size
    c = -values[rows, cols]
    a_cost = np.array([cost.get(a, 0.0) for a in actions])[cols]
    blocks, ub, names = [], [], []
    # One action per customer (only customers with more than one candidate need a row).
    per_cust = sparse.csr_matrix((np.ones(k), (rows, np.arange(k))), shape=(n, k))
    multi = np.asarray(per_cust.sum(axis=1)).ravel() > 1
    if multi.any():
        blocks.append(per_cust[multi])
        ub.append(np.ones(int(multi.sum())))
        names += ["customer"] * int(multi.sum())
    if max_contacts is not None and max_contacts < k:
        blocks.append(sparse.csr_matrix(np.ones((1, k))))
        ub.append(np.array([max_contacts]))
        names.append("budget")
    if max_cost is not None:
        blocks.append(sparse.csr_matrix(a_cost.reshape(1, -1)))
        ub.append(np.array([max_cost]))
        names.append("cost")
    if segment_caps and segments is not None:
        seg = segments.to_numpy()[rows]
        for s, cap in segment_caps.items():
            mask = seg == s
            if mask.any() and cap < mask.sum():
                blocks.append(sparse.csr_matrix(mask.astype(float).reshape(1, -1)))
                ub.append(np.array([max(cap, 0)]))
                names.append(f"segment:{s}")
    constraints = []
    if blocks:
        a = sparse.vstack(blocks).tocsr()
        constraints = [LinearConstraint(a, -np.inf, np.concatenate(ub))]
    if max_cost is None:
        x = _laminar_greedy(-c, rows, segments, max_contacts, segment_caps)
        choice.iloc[rows[x]] = np.array(actions, dtype=object)[cols[x]]
        binding = []
        if max_contacts is not None and x.sum() >= max_contacts:
            binding.append("budget")
        if segment_caps and segments is not None:
            seg = segments.to_numpy()[rows[x]]
            binding += [f"segment:{s_}" for s_, cap in segment_caps.items() if (seg == s_).sum() >= cap
                        and (segments.to_numpy()[rows] == s_).sum() > cap]
        return Allocation(choice, float(-c[x].sum()), "optimal (laminar matroid greedy)", 0.0, sorted(binding))
    res = None
    if res is None:
        res = milp(c, integrality=np.ones(k), bounds=Bounds(0, 1), constraints=constraints,
                   options={"time_limit": time_limit_s, "disp": False})
    if res.x is None:
        raise AllocationError(f"solver found no solution: {res.message}")
    x = res.x > 0.5
    choice.iloc[rows[x]] = np.array(actions, dtype=object)[cols[x]]
    binding = []
    if blocks:
        lhs = a @ x.astype(float)
        bounds_ = np.concatenate(ub)
        binding = sorted({nm for nm, l, u in zip(names, lhs, bounds_) if nm != "customer" and l >= u - 1e-9})
    gap = float(getattr(res, "mip_gap", 0.0) or 0.0)
    return Allocation(choice, float(-c[x].sum()), str(res.message), gap, binding)


def _laminar_greedy(gain: np.ndarray, rows: np.ndarray, segments: pd.Series | None, max_contacts: int | None,
                    segment_caps: dict[str, int] | None) -> np.ndarray:
    """Optimal pick under a total budget and disjoint per-segment caps (one candidate per customer)."""
    order = np.argsort(-gain, kind="stable")
    take = np.ones(order.size, dtype=bool)
    if segment_caps and segments is not None:
        seg = pd.Series(segments.to_numpy()[rows][order])
        rank = seg.groupby(seg).cumcount().to_numpy()
        cap = seg.map(segment_caps).fillna(np.inf).to_numpy()
        take &= rank < cap
    if max_contacts is not None:
        take &= np.cumsum(take) <= max_contacts
    x = np.zeros(order.size, dtype=bool)
    x[order[take]] = True
    return x

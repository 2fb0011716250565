"""The LP of one warehouse: hand-computed optima, relaxation, status handling."""

from __future__ import annotations

import numpy as np
import pytest

from marketlab.inventory.lp import (EMPTY, ERROR, INFEASIBLE_RELAXED, OPTIMAL, UNBOUNDED_RELAXED, WarehouseProblem,
                                    build_lp, solve_warehouse)


def problem(d, I0=0.0, c=1.0, h=0.1, p=5.0, q=0.5, ss=None, cap=None, bud=None, L=0, beta=0.0, vol=1.0, tv=None):
    d = np.atleast_2d(np.asarray(d, float))
    n, T = d.shape
    full = lambda v: np.broadcast_to(np.asarray(v, float), (n,)).copy()  # noqa: E731
    return WarehouseProblem(
        "W", np.array([f"i{k}" for k in range(n)]), d,
        np.zeros_like(d) if ss is None else np.atleast_2d(np.asarray(ss, float)),
        full(c), full(h), full(p), full(q), full(vol), full(I0),
        np.full(T, np.inf) if cap is None else np.broadcast_to(np.asarray(cap, float), (T,)).copy(),
        np.full(T, np.inf) if bud is None else np.broadcast_to(np.asarray(bud, float), (T,)).copy(),
        L, beta, 1000.0, full(c if tv is None else tv))


# (problem kwargs, objective, orders placed per period, end stock, lost sales) by hand:
CASES = [
    # unconstrained: buy each period's demand just in time
    (dict(d=[10, 5]), 15.0, [10, 5], [0, 0], [0, 0]),
    # budget 8/period: 2 units lost in period 1 (5 > 1 + holding), none in period 2
    (dict(d=[10, 5], bud=8), 8 + 5 + 2 * 5.0, [8, 5], [0, 0], [2, 0]),
    # budget 8/period, peak in period 2: pre-buy 4 in period 1 and hold them (0.1 each)
    (dict(d=[4, 12], bud=8), 16 + 0.4, [8, 8], [4, 0], [0, 0]),
    # plus capacity 6 after arrivals: at most 6 on hand in period 2 -> 6 lost
    (dict(d=[4, 12], bud=8, cap=6), 4 + 6 + 6 * 5.0, [4, 6], [0, 0], [0, 6]),
    # lead time 1: period 1 is served from stock, orders of periods 1, 2 arrive in 2, 3
    (dict(d=[5, 5, 5], I0=5, L=1), 10.0, [5, 5, 0], [0, 0, 0], [0, 0, 0]),
    # safety stock 3: buy and keep 3 (holding 0.1 x 3 x 2); the 3 left at the end are
    # credited at cost (3), so the plan does not run them down in the last period
    (dict(d=[5, 5], ss=[3, 3]), 10 + 3 + 0.6 - 3, [8, 5], [3, 3], [0, 0]),
    # ... without the terminal credit, running them down in period 2 (shortfall 3 x 0.5)
    # beats buying them: 10 + 0.3 + 1.5
    (dict(d=[5, 5], ss=[3, 3], tv=0.0), 10 + 0.3 + 1.5, [8, 2], [3, 0], [0, 0]),
    # safety stock too dear to keep (q = 0.05 < holding): shortfall 3 per period instead
    (dict(d=[5, 5], ss=[3, 3], q=0.05), 10 + 0.3, [5, 5], [0, 0], [0, 0]),
]


@pytest.mark.parametrize("kw,obj,order,stock,lost", CASES)
def test_hand_computed_optima(kw, obj, order, stock, lost):
    r = solve_warehouse(problem(**kw))
    assert r.status == OPTIMAL
    assert r.objective == pytest.approx(obj, abs=1e-7)
    np.testing.assert_allclose(r.order[0], order, atol=1e-7)
    np.testing.assert_allclose(r.inventory[0], stock, atol=1e-7)
    np.testing.assert_allclose(r.shortage[0], lost, atol=1e-7)
    assert sum(r.costs.values()) == pytest.approx(obj, abs=1e-7)


def test_two_items_share_budget_by_shortage_penalty():
    # budget 10 in one period, two items of cost 1 with demand 8 each: the item with the
    # higher shortage penalty (9 vs 3) is served first -> 8 + 2 bought, 6 of item 1 lost.
    p = problem([[8], [8]], p=[9.0, 3.0], bud=10)
    r = solve_warehouse(p)
    assert r.status == OPTIMAL
    np.testing.assert_allclose(r.order[:, 0], [8, 2], atol=1e-7)
    assert r.objective == pytest.approx(10 + 6 * 3.0)


def test_infeasible_capacity_gets_relaxed_plan_with_slack():
    # 10 on hand, capacity 5, lead time 1, demand 2/period: stock after arrivals is 10, 8, 6
    # whatever is ordered -> capacity slack 5 + 3 + 1 = 9; plan holds 8, 6, 4.
    r = solve_warehouse(problem([2, 2, 2], I0=10, cap=5, L=1))
    assert r.status == INFEASIBLE_RELAXED
    assert r.relaxed and "slack" in r.message
    assert r.slack_capacity == pytest.approx(9.0)
    assert r.slack_budget == 0 and r.slack_fill_rate == 0
    np.testing.assert_allclose(r.inventory[0], [8, 6, 4], atol=1e-7)
    assert r.objective == pytest.approx(9 * 1000 + 0.1 * 18 - 4)


def test_unreachable_fill_rate_relaxes_the_budget():
    # fill rate 90% needs 18 of 20 units, budget buys 10: 8 currency units of budget slack
    # (cheaper than 8 units of fill-rate slack, which also pay the shortage penalty).
    r = solve_warehouse(problem([10, 10], bud=5, beta=0.9))
    assert r.status == INFEASIBLE_RELAXED
    assert r.slack_budget == pytest.approx(8.0)
    assert r.shortage.sum() == pytest.approx(2.0)
    assert r.objective == pytest.approx(18 + 2 * 5 + 8 * 1000)


def test_fill_rate_only_counts_periods_orders_can_reach():
    # L = 1 and no stock: period 1 is lost whatever happens; 90% of periods 2..3 is reachable.
    r = solve_warehouse(problem([10, 10, 10], L=1, beta=0.9))
    assert r.status == OPTIMAL
    np.testing.assert_allclose(r.shortage[0], [10, 0, 0], atol=1e-7)


def test_unbounded_gets_bounded_relaxed_plan():
    # a negative holding cost rewards stock without limit -> unbounded, re-solved with caps
    r = solve_warehouse(problem([1, 1], h=-1.0))
    assert r.status == UNBOUNDED_RELAXED
    assert np.isfinite(r.objective)
    assert r.order.max() <= 2 + 1 + 1e-7


def test_empty_and_bad_problems_do_not_raise():
    empty = problem(np.zeros((0, 3)))
    assert solve_warehouse(empty).status == EMPTY
    bad = problem([1, 1], L=2)  # lead time >= horizon
    r = solve_warehouse(bad)
    assert r.status == ERROR and "lead time" in r.message and r.order is None


def test_matrix_shapes_and_sparsity():
    rng = np.random.default_rng(0)
    p = problem(rng.uniform(0, 5, (50, 8)), ss=rng.uniform(0, 2, (50, 8)), cap=500, bud=100, L=1, beta=0.9)
    m = build_lp(p)
    n_vars = 50 * 7 + 3 * 50 * 8
    assert len(m.c) == n_vars and m.A_eq.shape == (400, n_vars)
    # rows: 400 safety, 8 capacity, 7 budget, 1 fill rate
    assert m.A_ub.shape == (400 + 8 + 7 + 1, n_vars)
    # balance has one +1 for I and one -1 each for I[t-1], s, and the arriving order
    assert m.A_eq.nnz == 400 + 50 * 7 + 400 + 50 * 7
    assert m.A_ub.nnz == 800 + 50 * 7 + 50 * 7 + 50 * 7 + 50 * 7

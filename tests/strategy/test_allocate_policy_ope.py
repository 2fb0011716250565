"""Exact allocation, the closed loop with measured effects, off-policy estimators vs numpy."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from marketlab.strategy.allocate import AllocationError, allocate
from marketlab.strategy.ope import evaluate_policies, policies_frame
from marketlab.strategy.policy import apply_evaluations, deterministic, q_col


def _brute(profit, cost, max_contacts, max_cost, segs, caps):
    best, best_choice = 0.0, None
    n, m = profit.shape
    for combo in itertools.product(range(m + 1), repeat=n):  # m = do nothing
        picks = [(i, a) for i, a in enumerate(combo) if a < m]
        if len(picks) > max_contacts or sum(cost[a] for _, a in picks) > max_cost + 1e-12:
            continue
        if any(sum(1 for i, _ in picks if segs[i] == s) > c for s, c in caps.items()):
            continue
        val = sum(profit[i, a] for i, a in picks)
        if val > best + 1e-12:
            best, best_choice = val, combo
    return best, best_choice


def test_allocation_is_exact_against_brute_force():
    rng = np.random.default_rng(0)
    for trial in range(5):
        n = 7
        prof = np.round(rng.normal(0.3, 0.5, size=(n, 2)), 3)
        cost = {"A": 0.1, "B": 0.25}
        segs = pd.Series(rng.choice(["s1", "s2"], size=n))
        frame = pd.DataFrame(prof, columns=["A", "B"])
        res = allocate(frame, cost, "none", segs, max_contacts=4, max_cost=0.6, segment_caps={"s1": 2})
        want, _ = _brute(prof, [0.1, 0.25], 4, 0.6, list(segs), {"s1": 2})
        assert res.objective == pytest.approx(want, abs=1e-9), trial
        contacted = res.choice != "none"
        assert contacted.sum() <= 4 and (contacted & (segs == "s1")).sum() <= 2
        assert res.mip_gap == pytest.approx(0.0, abs=1e-9)
        # without a money budget: the laminar-matroid greedy path, also exact
        res2 = allocate(frame, cost, "none", segs, max_contacts=3, segment_caps={"s1": 1, "s2": 2})
        want2, _ = _brute(prof, [0.1, 0.25], 3, np.inf, list(segs), {"s1": 1, "s2": 2})
        assert res2.status.startswith("optimal") and res2.objective == pytest.approx(want2, abs=1e-9), trial


def test_greedy_path_matches_the_lp_optimum_at_scale():
    from scipy.optimize import linprog

    rng = np.random.default_rng(1)
    n = 3000
    frame = pd.DataFrame(rng.normal(0.05, 0.3, size=(n, 2)), columns=["A", "B"])
    segs = pd.Series(rng.choice(["w", "p", "m"], size=n))
    res = allocate(frame, {"A": 0.1, "B": 0.1}, "none", segs, max_contacts=900, segment_caps={"m": 150, "w": 400})
    best = frame.clip(lower=0).max(axis=1).to_numpy()
    a = np.vstack([np.ones(n), (segs == "m").to_numpy(float), (segs == "w").to_numpy(float)])
    lp = linprog(-best, A_ub=a, b_ub=[900, 150, 400], bounds=(0, 1), method="highs")
    assert res.objective == pytest.approx(-lp.fun, rel=1e-9)
    assert "budget" in res.binding and "segment:m" in res.binding
    assert (res.choice != "none").sum() == 900


def test_allocation_budget_zero_negative_and_nan():
    frame = pd.DataFrame({"A": [1.0, 2.0], "B": [0.5, -1.0]})
    res = allocate(frame, {"A": 0.1, "B": 0.1}, "none", max_contacts=0)
    assert (res.choice == "none").all() and res.objective == 0.0 and res.status == "zero budget"
    with pytest.raises(AllocationError, match="max_contacts must be >= 0"):
        allocate(frame, {}, "none", max_contacts=-1)
    with pytest.raises(AllocationError, match="NaN"):
        allocate(frame.assign(A=[np.nan, 1.0]), {}, "none")
    free = allocate(frame, {"A": 0.1, "B": 0.1}, "none")
    assert list(free.choice) == ["A", "A"] and free.objective == pytest.approx(3.0)
    one = allocate(frame, {"A": 0.1, "B": 0.1}, "none", max_contacts=1)
    assert list(one.choice) == ["none", "A"] and one.binding == ["budget"]


def test_closed_loop_cost_override_shift_and_block():
    idx = pd.Index(["k1", "k2", "k3", "k4"], name="customer_key")
    wide = pd.DataFrame({"uplift__A": [1.0, 2.0, 3.0, 4.0], "uplift__B": [1.0, 1.0, 1.0, 1.0]}, index=idx)
    segs = pd.Series(["web", "web", "phone", "phone"], index=idx)
    ev = pd.DataFrame({
        "campaign": "c", "arm": ["A", "A", "B", "B"], "metric": "spend", "segment": ["all", "phone", "web", "web"],
        "effect": [2.0, 0.0, -1.0, -0.5], "ci_low": [1.0, -1.0, -2.0, -0.9], "ci_high": [3.0, 1.0, 0.5, -0.1],
        "cost_per_contact": [0.2, None, None, None],
        "evaluated_at": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-01", "2024-02-01"]),
    })
    out, cost, blocked, notes = apply_evaluations(wide, segs, ["A", "B"], ev, "spend", {"A": 0.1, "B": 0.1}, 0.5)
    assert cost == {"A": 0.2, "B": 0.1}
    # A in web ('all' row): mean pred 1.5, measured 2.0 -> +0.25; A in phone: mean 3.5, measured 0 -> -1.75
    assert list(out["uplift__A"]) == pytest.approx([1.25, 2.25, 1.25, 2.25])
    # B in web: latest evaluation (Feb) has CI < 0 -> blocked there, shift 0.5*(-0.5-1) = -0.75
    assert list(blocked["B"]) == [True, True, False, False] and not blocked["A"].any()
    assert list(out["uplift__B"]) == pytest.approx([0.25, 0.25, 1.0, 1.0])
    assert any("blocked in segment web" in n for n in notes)
    same, cost2, blocked2, _ = apply_evaluations(wide, segs, ["A", "B"], None, "spend", {"A": 0.1, "B": 0.1}, 0.5)
    assert same.equals(wide) and cost2 == {"A": 0.1, "B": 0.1} and not blocked2.any().any()


def test_ope_estimators_match_numpy(spark):
    rng = np.random.default_rng(5)
    n = 3000
    actions = ["none", "A", "B"]
    keys = [f"c{i}" for i in range(n)]
    logged = rng.choice(actions, size=n, p=[0.4, 0.3, 0.3])
    x = rng.uniform(size=n)
    reward = np.where(logged == "A", 1.0 * x, np.where(logged == "B", 0.5, 0.2)) + rng.normal(0, 0.1, size=n)
    q = pd.DataFrame({q_col("none"): 0.2, q_col("A"): 0.9 * x, q_col("B"): 0.55}, index=keys)
    log_pdf = pd.DataFrame({"customer_key": keys, "action": logged, "reward": reward}).join(q, on="customer_key")
    choice = pd.Series(np.where(x > 0.5, "A", "B"), index=keys)
    pols = {"smart": deterministic(choice, actions), "all:B": deterministic(pd.Series("B", index=keys), actions)}
    pol_sdf, names = policies_frame(spark, pols, actions)
    res = evaluate_policies(spark.createDataFrame(log_pdf), pol_sdf, names, actions, reference="all:B", bootstrap=50)
    got = res.set_index(["policy", "estimator"])
    # numpy, with propensities = empirical shares of the log
    p = pd.Series(logged).value_counts(normalize=True).to_dict()
    prop = np.array([p[a] for a in logged])
    match = (logged == choice.to_numpy()).astype(float)
    w = match / prop
    qa = np.where(logged == "A", q[q_col("A")], np.where(logged == "B", 0.55, 0.2))
    dm = np.where(choice == "A", q[q_col("A")], 0.55)
    assert got.loc[("smart", "ips"), "value"] == pytest.approx(np.mean(w * reward), rel=1e-9)
    assert got.loc[("smart", "snips"), "value"] == pytest.approx(np.sum(w * reward) / np.sum(w), rel=1e-9)
    assert got.loc[("smart", "dm"), "value"] == pytest.approx(np.mean(dm), rel=1e-9)
    assert got.loc[("smart", "dr"), "value"] == pytest.approx(np.mean(dm + w * (reward - qa)), rel=1e-9)
    # true values: smart = E[x>0.5 ? x : 0.5] = 0.625, all:B = 0.5; the paired CI excludes 0
    r = got.loc[("smart", "dr")]
    assert r["lo"] < 0.625 < r["hi"] and r["diff_lo"] > 0
    assert got.loc[("all:B", "dr"), "diff"] == 0.0
    # the paired difference's bootstrap SE is the SE of the per-customer IPS difference terms
    # (50 replicates: ~10 % sampling error), and the MDE is (z_0.975 + z_0.8) of it
    ref_w = (logged == "B").astype(float) / prop
    se_ips = np.std((w - ref_w) * reward, ddof=1) / np.sqrt(n)
    s = got.loc[("smart", "ips")]
    assert s["diff_se"] == pytest.approx(se_ips, rel=0.3)
    assert s["mde"] == pytest.approx(2.8016 * s["diff_se"], rel=1e-4)
    with pytest.raises(ValueError, match="never logged"):
        evaluate_policies(spark.createDataFrame(log_pdf[log_pdf.action != "B"]), pol_sdf, names, actions, bootstrap=0)

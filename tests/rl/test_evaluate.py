"""Simulator evaluation on a small synthetic shop: numbers that must hold whatever is learned."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketlab.rl.evaluate import evaluate
from marketlab.rl.params import RLParams
from marketlab.simulator import CampaignSimulator, Dynamics, SimulatorParams

N = 1500
P = RLParams(logged_waves=3, eval_waves=4, iterations=3, seed=5)


def _sim(dynamics: bool) -> CampaignSimulator:
    d = Dynamics(fatigue=dynamics, anticipation=dynamics, carryover=dynamics)
    return CampaignSimulator.synthetic(N, SimulatorParams(seed=11, dynamics=d), n_items=300)


def test_evaluation_without_dynamics_is_exact_per_wave():
    sim = _sim(False)
    ev = evaluate(sim, P)
    tot = ev.totals()
    assert ev.transitions == N * P.logged_waves
    assert all(np.isfinite(v) for v in tot.values())
    statics = {k: v for k, v in tot.items() if k.startswith("static_")}
    assert tot["best_static"] == max(statics.values())
    # Without dynamics every wave is the first one again: a static policy's value is the
    # oracle's one-wave value times the waves, and the per-wave oracle beats everything.
    ids = sim.customer_ids
    one = sim.oracle().expected(pd.DataFrame({"customer_id": ids, "arm": "email"}))["profit"].sum()
    assert tot["static_email"] == pytest.approx(P.eval_waves * one, rel=1e-9)
    assert tot["oracle_wave"] >= max(v for k, v in tot.items() if k != "oracle_wave") - 1e-6
    assert tot["oracle_wave"] > tot["random"]
    r = ev.results
    assert r["static_no_contact"].contacts == [0] * P.eval_waves and r["static_email"].contacts == [N] * P.eval_waves
    assert r["static_email_coupon_5"].coupons == [N] * P.eval_waves and r["static_email"].coupons == [0] * 4
    assert len(r["fqi"].profit) == P.eval_waves


def test_evaluation_with_dynamics_runs_and_ranks_the_oracle_above_random():
    ev = evaluate(_sim(True), P)
    tot = ev.totals()
    assert all(np.isfinite(v) for v in tot.values())
    assert tot["oracle_wave"] > tot["random"] and tot["oracle_wave"] > tot["static_no_contact"]
    assert ev.fqi.gamma == P.gamma and ev.myopic.gamma == 0
    assert np.isfinite(ev.fqi.target_mean).all()

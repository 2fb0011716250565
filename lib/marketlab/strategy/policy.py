"""Expected profit per customer x action, the closed loop with measured effects, and policies.

A policy is a table of action probabilities per customer (``pi__<action>`` columns, rows
summing to 1): deterministic policies put 1 on one action, the softmax bandit spreads it.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def pi_col(action: str) -> str:
    """Column name of a policy's probability for ``action``."""
    return "pi__" + "".join(ch if ch.isalnum() else "_" for ch in action)


def q_col(action: str) -> str:
    """Column name of the reward model Q(x, action)."""
    return "q__" + "".join(ch if ch.isalnum() else "_" for ch in action)


def wide_scores(scores: pd.DataFrame, outcome: str, key: str = "customer_key") -> pd.DataFrame:
    """Long uplift scores of one outcome -> one row per customer.

    Returns:
        Index ``key``; columns ``uplift__<action>``, ``low__<action>``, ``high__<action>``,
        ``mu_control``, ``is_holdout``.
    """
    s = scores[scores["outcome"] == outcome]
    if s.empty:
        raise ValueError(f"no uplift scores for outcome '{outcome}'")
    wide = s.pivot_table(index=key, columns="action", values=["uplift", "effect_low", "effect_high"], aggfunc="first")
    wide.columns = [f"{ {'uplift': 'uplift', 'effect_low': 'low', 'effect_high': 'high'}[v]}__{a}" for v, a in wide.columns]
    first = s.groupby(key)[["mu_control", "is_holdout"]].first()
    return wide.join(first)


def apply_evaluations(wide: pd.DataFrame, segments: pd.Series, actions: list[str], evaluations: pd.DataFrame | None,
                      outcome: str, cost: dict[str, float], weight: float) -> tuple[pd.DataFrame, dict[str, float], pd.DataFrame, list[str]]:
    """Closed loop: measured effects and costs of past campaigns adjust the plan.

    For each action with a measured effect on ``outcome`` (latest evaluation per
    arm x segment; a segment-specific row wins over ``all``):

    * ``cost_per_contact`` replaces the configured contact cost;
    * the predicted uplift in that segment is shifted towards the measured one:
      ``uplift + weight * (measured - mean predicted uplift of the segment)``;
    * an effect whose whole CI is below zero blocks the action in that segment.

    Args:
        wide: Output of :func:`wide_scores` (index: customer).
        segments: Segment per customer (aligned with ``wide``).
        actions: Contact actions.
        evaluations: gold.campaign_evaluations as pandas, or None.
        outcome: Outcome the strategy optimises.
        cost: Configured contact cost per action.
        weight: Weight of the measured effect (0 = ignore).

    Returns:
        Adjusted ``wide``, the costs in force, a boolean ``blocked`` frame (customer x
        action) and a list of human-readable notes.
    """
    wide = wide.copy()
    cost = dict(cost)
    blocked = pd.DataFrame(False, index=wide.index, columns=actions)
    notes: list[str] = []
    if evaluations is None or evaluations.empty:
        return wide, cost, blocked, notes
    ev = evaluations[(evaluations["metric"] == outcome) & evaluations["arm"].isin(actions)].copy()
    if ev.empty:
        notes.append(f"campaign evaluations have no '{outcome}' effect for {actions}: not used")
        return wide, cost, blocked, notes
    ev = ev.sort_values("evaluated_at").groupby(["arm", "segment"], as_index=False).last()
    seg_values = segments.astype(str)
    for _, row in ev.iterrows():
        arm, seg = row["arm"], str(row["segment"])
        if seg == "all":
            if pd.notna(row.get("cost_per_contact")):
                cost[arm] = float(row["cost_per_contact"])
                notes.append(f"{arm}: contact cost {cost[arm]:.4f} from evaluation")
            specific = set(ev.loc[ev["arm"] == arm, "segment"].astype(str)) - {"all"}
            mask = ~seg_values.isin(specific)
        else:
            mask = seg_values == seg
        if not mask.any():
            continue
        col = f"uplift__{arm}"
        mean_pred = float(wide.loc[mask.to_numpy(), col].mean())
        shift = weight * (float(row["effect"]) - mean_pred)
        wide.loc[mask.to_numpy(), col] += shift
        if float(row["ci_high"]) < 0:
            blocked.loc[mask.to_numpy(), arm] = True
            notes.append(f"{arm} blocked in segment {seg}: measured effect CI [{row['ci_low']:.4f}, {row['ci_high']:.4f}] < 0")
        else:
            notes.append(f"{arm} / {seg}: uplift shifted by {shift:+.4f} towards measured {row['effect']:.4f}")
    return wide, cost, blocked, notes


def profit_frame(wide: pd.DataFrame, actions: list[str], margin: float, cost: dict[str, float]) -> pd.DataFrame:
    """Expected profit of each contact action relative to doing nothing.

    profit(x, a) = margin * predicted incremental outcome(x, a) - contact cost(a).
    """
    return pd.DataFrame({a: margin * wide[f"uplift__{a}"] - cost[a] for a in actions}, index=wide.index)


def deterministic(choice: pd.Series, all_actions: list[str]) -> pd.DataFrame:
    """Policy table putting probability 1 on ``choice``."""
    return pd.DataFrame({pi_col(a): (choice == a).astype(float) for a in all_actions}, index=choice.index)


def q_values(wide: pd.DataFrame, actions: list[str], control: str, margin: float, cost: dict[str, float]) -> pd.DataFrame:
    """Reward model Q(x, a) = margin * (mu_control(x) + uplift_a(x)) - cost(a); Q(x, control) = margin * mu_control."""
    mu0 = wide["mu_control"].fillna(0.0)
    q = {q_col(control): margin * mu0}
    for a in actions:
        q[q_col(a)] = margin * (mu0 + wide[f"uplift__{a}"]) - cost[a]
    return pd.DataFrame(q, index=wide.index)


def bandit_policies(q: pd.DataFrame, all_actions: list[str], temperature: float) -> dict[str, pd.DataFrame]:
    """Contextual-bandit policies from the offline Q(x, a) models (one-step decision).

    Returns:
        ``bandit_greedy`` (argmax Q) and ``bandit_softmax`` (Boltzmann, ``temperature`` in
        profit units).
    """
    qa = q[[q_col(a) for a in all_actions]].to_numpy()
    greedy = pd.Series(np.array(all_actions, dtype=object)[qa.argmax(axis=1)], index=q.index)
    z = (qa - qa.max(axis=1, keepdims=True)) / temperature
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    soft = pd.DataFrame(p, index=q.index, columns=[pi_col(a) for a in all_actions])
    return {"bandit_greedy": deterministic(greedy, all_actions), "bandit_softmax": soft}


def baseline_policies(index: pd.Index, wide: pd.DataFrame, actions: list[str], control: str) -> dict[str, pd.DataFrame]:
    """Baselines: e-mail everyone with each arm, e-mail no one, uniform random, top uplift without budget."""
    all_actions = [control, *actions]
    out = {f"all:{a}": deterministic(pd.Series(a, index=index), all_actions) for a in actions}
    out["none"] = deterministic(pd.Series(control, index=index), all_actions)
    out["random"] = pd.DataFrame({pi_col(a): 1.0 / len(all_actions) for a in all_actions}, index=index)
    up = wide[[f"uplift__{a}" for a in actions]].to_numpy()
    best = np.array(actions, dtype=object)[up.argmax(axis=1)]
    top = pd.Series(np.where(up.max(axis=1) > 0, best, control), index=index)
    out["top_uplift_no_budget"] = deterministic(top, all_actions)
    return out

"""The strategy stage: closed loop, budgeted allocation, bandit, OPE, summaries.

:func:`run` is the stage's one entry point: it reads the scores, the campaign log and the
evaluations and writes the strategy and its summary through :class:`~marketlab.tables.Lake`
with the table names of :class:`~marketlab.strategy.params.StrategyParams`;
:func:`build_strategy` is the transform over frames.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.errors import BadInputError
from marketlab.evaluation.ab import evaluate_campaign
from marketlab.evaluation.params import EvaluationParams
from marketlab.privacy import pseudonymise
from marketlab.strategy.allocate import Allocation, allocate
from marketlab.strategy.ope import evaluate_policies, policies_frame
from marketlab.strategy.params import StrategyParams
from marketlab.strategy.policy import (
    apply_evaluations, bandit_policies, baseline_policies, deterministic, profit_frame, q_values, wide_scores,
)
from marketlab.tables import Lake

log = logging.getLogger(__name__)


class StrategyInputError(BadInputError):
    """Inputs cannot produce a strategy (the message says why)."""


@dataclass
class StrategyResult:
    """Outputs of one strategy run.

    Attributes:
        strategy: One row per customer (gold.strategy).
        summary: One row per segment x action (gold.strategy_summary).
        ope: Off-policy estimates per policy x estimator on held-out customers.
        reference: Best single-arm policy (the bar the strategy must clear).
        allocation: Solver result on all customers.
        notes: Closed-loop and fallback notes.
        costs: Contact costs in force.
        evaluations_used: Whether measured segment effects (evaluations table) were applied.
        versions: Catalog name -> Delta version written (set by :func:`run`).
    """

    strategy: pd.DataFrame
    summary: pd.DataFrame
    ope: pd.DataFrame
    reference: str
    allocation: Allocation
    notes: list[str] = field(default_factory=list)
    costs: dict[str, float] = field(default_factory=dict)
    evaluations_used: bool = False
    versions: dict[str, int] = field(default_factory=dict)


def run(lake: Lake, params: StrategyParams, secret: str, evaluation: EvaluationParams | None = None) -> StrategyResult:
    """Plan and evaluate the strategy; write ``params.strategy_table`` and ``params.summary_table``.

    Args:
        lake: The lake.
        params: Strategy parameters (table names included).
        secret: Pseudonymisation secret, the one the scores' ``customer_key`` was made with
            (:func:`marketlab.privacy.resolve_secret`).
        evaluation: The evaluation stage's parameters. With them the closed loop's
            measured effects are re-measured on the customers *outside* the OPE holdout
            (gold.campaign_evaluations measured everyone, so using it would let the held-out
            outcomes feed the policy that is then evaluated on them); without them the
            table is used as it is (documented leak, kept for callers that have no log).

    Raises:
        StrategyInputError: The inputs cannot produce a strategy.
        marketlab.strategy.allocate.AllocationError: The allocation cannot be solved.
    """
    scores = lake.read(params.scores_table).toPandas()
    log_df = pseudonymise(lake.read(params.log_table), secret)
    evaluations = None
    leak_note = None
    if lake.exists(params.evaluations_table):
        evaluations = lake.read(params.evaluations_table).toPandas()
        if evaluation is not None:
            held = scores.loc[scores["is_holdout"].astype(bool), C.CUSTOMER_KEY].astype(str).unique()
            keys = lake.spark.createDataFrame(pd.DataFrame({C.CUSTOMER_KEY: held}))
            train_log = log_df.join(F.broadcast(keys), C.CUSTOMER_KEY, "left_anti")
            remeasured = evaluate_campaign(train_log.drop(C.CUSTOMER_KEY), evaluation)
            evaluations = remeasured.rows
            leak_note = (f"closed loop: effects re-measured on {sum(remeasured.arm_counts.values())} customers outside "
                         f"the OPE holdout ({len(held)} held out never feed the policy)")
    res = build_strategy(scores, log_df, params, evaluations)
    if leak_note:
        res.notes.append(leak_note)
    res.evaluations_used = evaluations is not None
    for df, name in ((res.strategy, params.strategy_table), (res.summary, params.summary_table)):
        res.versions[name] = lake.write(lake.spark.createDataFrame(df), name)
    return res


def _budget(n: int, params: StrategyParams) -> int | None:
    limits = []
    if params.max_contacts_fraction is not None:
        limits.append(int(np.floor(params.max_contacts_fraction * n)))
    if params.max_contacts is not None:
        limits.append(params.max_contacts)
    return min(limits) if limits else None


def _caps(segments: pd.Series, params: StrategyParams) -> dict[str, int]:
    sizes = segments.astype(str).value_counts()
    return {s: int(np.floor(share * sizes.get(s, 0))) for s, share in params.segment_caps.items()}


def _solve(profit: pd.DataFrame, segments: pd.Series, blocked: pd.DataFrame, cost: dict[str, float],
           params: StrategyParams, cost_share: float = 1.0) -> Allocation:
    return allocate(profit, cost, params.control, segments.astype(str), _budget(len(profit), params),
                    None if params.max_cost is None else params.max_cost * cost_share,
                    _caps(segments, params), blocked, params.time_limit_s)


def build_strategy(scores: pd.DataFrame, log_df: DataFrame, params: StrategyParams,
                   evaluations: pd.DataFrame | None = None, key: str = C.CUSTOMER_KEY,
                   treatment_col: str = C.CAMPAIGN_TREATMENT) -> StrategyResult:
    """Plan an action per customer under budget and evaluate it off-policy on held-out customers.

    Args:
        scores: gold.uplift_scores as pandas (long: customer x action x outcome).
        log_df: Logged campaign with ``key``, ``treatment_col``, the outcome and
            ``params.segment_col`` (Spark: the OPE runs there).
        params: Strategy parameters.
        evaluations: gold.campaign_evaluations as pandas, or None when absent.
        key: Customer key column.
        treatment_col: Logged action column.

    Returns:
        The strategy, its summary, the OPE table and the reference policy.

    Raises:
        StrategyInputError: No scores for the outcome, no control action, scores without
            a logged customer, or an action never logged.
    """
    actions = sorted(a for a in scores["action"].unique() if a != params.control)
    if not actions:
        raise StrategyInputError("uplift scores contain no contact action")
    for col in (key, treatment_col, params.outcome, params.segment_col):
        if col not in log_df.columns:
            raise StrategyInputError(f"campaign log lacks column '{col}'")
    all_actions = [params.control, *actions]
    try:
        wide = wide_scores(scores, params.outcome, key)
    except ValueError as exc:
        raise StrategyInputError(str(exc)) from None
    incomplete = wide[[f"uplift__{a}" for a in actions]].isna().any(axis=1)
    if incomplete.any():
        raise StrategyInputError(f"{int(incomplete.sum())} customer(s) lack a score for some action of {actions}")
    seg_pdf = log_df.select(key, F.col(params.segment_col).cast("string").alias("_segment")).toPandas().set_index(key)
    lost = wide.index.difference(seg_pdf.index)
    if len(lost):
        raise StrategyInputError(f"{len(lost)} scored customer(s) are missing from the campaign log (first: {lost[0]})")
    segments = seg_pdf["_segment"].reindex(wide.index)

    cost = {a: params.contact_cost.get(a, params.default_contact_cost) for a in actions}
    wide, cost, blocked, notes = apply_evaluations(wide, segments, actions, evaluations, params.outcome, cost,
                                                   params.evaluation_weight)
    profit = profit_frame(wide, actions, params.margin, cost)
    if _budget(len(profit), params) == 0 or params.max_cost == 0:
        notes.append("budget is 0: nobody is contacted (documented fallback)")
    alloc = _solve(profit, segments, blocked, cost, params)

    # Off-policy evaluation on held-out customers: the same rule (budget shares) re-solved there.
    hold = wide.index[wide["is_holdout"].astype(bool).to_numpy()]
    if len(hold) == 0:
        raise StrategyInputError("no held-out customers in the uplift scores: the strategy cannot be evaluated honestly")
    share = len(hold) / len(wide)
    hold_params = params.model_copy(update={"max_contacts": None if params.max_contacts is None
                                            else int(np.floor(params.max_contacts * share))})
    alloc_h = _solve(profit.loc[hold], segments.loc[hold], blocked.loc[hold], cost, hold_params, share)
    q = q_values(wide.loc[hold], actions, params.control, params.margin, cost)
    policies = {"strategy": deterministic(alloc_h.choice, all_actions)}
    policies.update(bandit_policies(q, all_actions, params.softmax_temperature))
    policies.update(baseline_policies(hold, wide.loc[hold], actions, params.control))

    spark = log_df.sparkSession
    cost_expr = F.lit(0.0)
    for a, c in cost.items():
        cost_expr = F.when(F.col(treatment_col) == a, F.lit(c)).otherwise(cost_expr)
    hold_keys = spark.createDataFrame(pd.DataFrame({key: hold.astype(str)}))
    q_sdf = spark.createDataFrame(q.reset_index().rename(columns={"index": key}))
    logged = (log_df.join(F.broadcast(hold_keys), key)
              .select(key, F.col(treatment_col).alias("action"),
                      (F.lit(params.margin) * F.col(params.outcome).cast("double") - cost_expr).alias("reward"))
              .join(q_sdf, key))
    unknown = [a for a in (r[0] for r in logged.select("action").distinct().collect()) if a not in all_actions]
    if unknown:
        logged = logged.where(F.col("action").isin(all_actions))
        notes.append(f"logged action(s) {unknown} are not in the plan's actions: left out of the OPE")
    means = {r[0]: r[1] for r in logged.groupBy("action").agg(F.avg("reward")).collect()}
    reference = max((f"all:{a}" for a in actions), key=lambda p: means.get(p[4:], -np.inf))
    pol_sdf, names = policies_frame(spark, policies, all_actions, key)
    ope = evaluate_policies(logged, pol_sdf, names, all_actions, reference, key, bootstrap=params.bootstrap,
                            seed=params.seed)

    notes += _power_notes(ope, reference, len(hold))
    strategy = _strategy_rows(wide, profit, alloc, segments, blocked, actions, params)
    summary = _summary(strategy, params)
    return StrategyResult(strategy, summary, ope, reference, alloc, notes, cost)


def _power_notes(ope: pd.DataFrame, reference: str, n_hold: int) -> list[str]:
    """Say when the strategy's difference to the reference is below what the sample can detect."""
    row = ope[(ope["policy"] == "strategy") & (ope["estimator"] == "dr")]
    if row.empty or "mde" not in row or not row["mde"].notna().all():
        return []
    r = row.iloc[0]
    if r["diff_lo"] > 0 or r["diff_hi"] < 0:
        return []
    return [f"strategy vs {reference}: DR difference {r['diff']:+.4f} [{r['diff_lo']:+.4f}, {r['diff_hi']:+.4f}] "
            f"on {n_hold:,} held-out customers, which detect only differences above {r['mde']:.4f} "
            f"(95 %, power 0.8): inconclusive, not evidence of no effect (bench/effect_power.py)"]


def _strategy_rows(wide, profit, alloc, segments, blocked, actions, params) -> pd.DataFrame:
    choice = alloc.choice
    best = profit.idxmax(axis=1)
    best_profit = profit.max(axis=1)
    chosen_contact = choice != params.control
    act = np.where(chosen_contact, choice, best)
    idx = np.arange(len(wide))

    def pick(prefix: str) -> np.ndarray:
        m = wide[[f"{prefix}__{a}" for a in actions]].to_numpy()
        return m[idx, [actions.index(a) for a in act]]

    uplift, low, high = pick("uplift"), pick("low"), pick("high")
    prof = profit.to_numpy()[idx, [actions.index(a) for a in act]]
    reason = np.where(chosen_contact, "highest expected profit within budget",
                      np.where(best_profit <= 0, "no action with positive expected profit",
                               np.where(blocked.to_numpy().all(axis=1), "blocked by measured campaign effect",
                                        "left out by budget or segment cap")))
    out = pd.DataFrame({
        C.CUSTOMER_KEY: wide.index.astype(str),
        "action": choice.to_numpy(),
        "best_contact_action": act,
        "predicted_uplift": np.where(chosen_contact, uplift, 0.0),
        "effect_low": np.where(chosen_contact, low, 0.0),
        "effect_high": np.where(chosen_contact, high, 0.0),
        "expected_profit": np.where(chosen_contact, prof, 0.0),
        "best_contact_profit": prof,
        "segment": segments.to_numpy().astype(str),
        "reason": reason,
        "is_holdout": wide["is_holdout"].astype(bool).to_numpy(),
    })
    out["outcome"] = params.outcome
    return out


def _summary(strategy: pd.DataFrame, params: StrategyParams) -> pd.DataFrame:
    g = strategy.groupby(["segment", "action"], as_index=False).agg(
        customers=(C.CUSTOMER_KEY, "size"), expected_profit=("expected_profit", "sum"),
        mean_predicted_uplift=("predicted_uplift", "mean"))
    seg_size = strategy.groupby("segment")[C.CUSTOMER_KEY].size().rename("segment_customers")
    g = g.join(seg_size, on="segment")
    g["share_of_segment"] = g["customers"] / g["segment_customers"]
    g["segment_cap"] = g["segment"].map(params.segment_caps).astype(float)
    g["outcome"] = params.outcome
    return g.sort_values(["segment", "action"]).reset_index(drop=True)

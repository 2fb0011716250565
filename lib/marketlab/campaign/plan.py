"""A wave's plan in Spark: best action per customer under the contact budget, the inventory
veto on featured items, the randomisation (exploration, holdout) and the predicted totals.

Nothing here collects the customer base: the budget is a quantile of the gains, the
interval of a plan's profit comes from per-partition sums of each bag's predictions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from marketlab import constants as C

TWO53 = float(1 << 53)
#: Per-customer prediction of the arm a wave assigns (gold.campaign_waves).
PREDICTION_COLS = ["predicted_revenue", "predicted_profit", "predicted_profit_low", "predicted_profit_high"]


def uniform(*cols: Column | str) -> Column:
    """A uniform in [0, 1) that depends only on the given values (stable across runs and partitions)."""
    return F.pmod(F.xxhash64(*cols), F.lit(1 << 53)).cast("double") / F.lit(TWO53)


def best_action(scored: DataFrame, actions: list[str], no_contact: str, max_contacts: int | None) -> DataFrame:
    """``scored`` with ``greedy`` (best predicted incremental profit; no contact unless > 0) and ``gain``.

    With ``max_contacts`` below the number of customers worth an e-mail, only the
    largest gains keep their e-mail (one contact each, so the cut is a gain quantile).
    """
    best = F.lit(no_contact)
    gain = F.lit(0.0)
    for a in actions:
        if a == no_contact:
            continue
        better = F.col(f"inc_{a}") > gain
        best = F.when(better, F.lit(a)).otherwise(best)
        gain = F.greatest(gain, F.col(f"inc_{a}"))
    out = scored.withColumn("greedy", best).withColumn("gain", gain)
    if max_contacts is None:
        return out
    positive = out.where(F.col("gain") > 0)
    n_pos = positive.count()
    if n_pos <= max_contacts:
        return out
    if max_contacts == 0:
        return out.withColumn("greedy", F.lit(no_contact)).withColumn("gain", F.lit(0.0))
    cut = positive.approxQuantile("gain", [1.0 - max_contacts / n_pos], 1e-4)[0]
    keep = F.col("gain") >= F.lit(cut)
    return (out.withColumn("greedy", F.when(keep, F.col("greedy")).otherwise(F.lit(no_contact)))
            .withColumn("gain", F.when(keep, F.col("gain")).otherwise(F.lit(0.0))))


def assigned_prediction(wave: DataFrame, actions: list[str], level: float, predicted: bool = True,
                        arm_col: str = "arm") -> DataFrame:
    """``wave`` with what the models predict for each customer's assigned arm (:data:`PREDICTION_COLS`).

    ``predicted_revenue``: incremental revenue against no contact; ``predicted_profit``: the
    wave's incremental profit (margin, coupon and contact cost; no ΔCLV term: what the A/B
    test measures), the mean over the bootstrap bags, and its ``level`` interval from the
    bags' order statistics (nearest rank: the ``floor(q (B - 1))``-th and ``ceil(q (B - 1))``-th
    of ``B`` sorted bags). No contact predicts 0. A held-out customer keeps the prediction of
    the arm they were assigned and not sent (the counterfactual the holdout measures).

    Args:
        wave: Scored rows (:func:`marketlab.campaign.model.score` columns) with ``arm_col``.
        actions: Every action (``bags_<a>`` and ``rev_<a>`` exist for each).
        level: Interval coverage.
        predicted: False where no model scored the wave (a randomized first wave): nulls.
    """
    if not predicted:
        return wave.select("*", *[F.lit(None).cast("double").alias(c) for c in PREDICTION_COLS])
    bags = F.lit(None).cast("array<double>")
    rev = F.lit(None).cast("double")
    for a in actions:
        bags = F.when(F.col(arm_col) == a, F.col(f"bags_{a}")).otherwise(bags)
        rev = F.when(F.col(arm_col) == a, F.col(f"rev_{a}")).otherwise(rev)
    w = wave.withColumn("_bags", F.array_sort(bags))
    n = F.size("_bags")
    lo, hi = (1 - level) / 2, (1 + level) / 2
    at = lambda i: F.element_at("_bags", (i + 1).cast("int"))  # noqa: E731  (0-based rank i)
    return w.select(
        "*", rev.alias("predicted_revenue"),
        (F.aggregate("_bags", F.lit(0.0), lambda acc, x: acc + x) / n).alias("predicted_profit"),
        at(F.floor(F.lit(lo) * (n - 1))).alias("predicted_profit_low"),
        at(F.ceil(F.lit(hi) * (n - 1))).alias("predicted_profit_high")).drop("_bags")


def vetoed_items(plan: DataFrame | None, demand: DataFrame, unplanned: str, candidates: DataFrame,
                 item_col: str = C.ITEM_ID) -> tuple[DataFrame | None, int]:
    """Items that must not be featured: planned stock cannot cover forecast demand plus the campaign's lift.

    Args:
        plan: gold.inventory_plan (None: no plan, nothing vetoed unless ``unplanned`` is veto).
        demand: ``item_id``, ``lift_units``: the expected extra units of the wave per item.
        unplanned: ``veto`` items the plan does not cover, or ``allow`` them.
        candidates: Candidate items (for the unplanned rule).

    Returns:
        ``(items, count)``: a frame of vetoed ``item_id`` (None when none) and how many.
    """
    items = candidates.select(item_col).distinct()
    if plan is None:
        if unplanned != "veto":
            return None, 0
        return items, items.count()
    if "scenario" in plan.columns:  # the plan, not the backtest of the plan
        plan = plan.where(F.col("scenario") == "plan")
    first = plan.agg(F.min("period")).first()[0]
    p1 = plan.where(F.col("period") == F.lit(first))
    head = p1.groupBy(item_col).agg(F.sum("inventory_end").alias("_headroom"), F.sum("shortage").alias("_short"))
    j = items.join(head, item_col, "left").join(demand, item_col, "left").fillna({"lift_units": 0.0})
    bad = (F.col("_short") > 1e-9) | (F.col("_headroom") < F.col("lift_units"))
    if unplanned == "veto":
        bad = bad | F.col("_headroom").isNull()
    out = j.where(bad).select(item_col).cache()
    n = out.count()
    return (out if n else None), n


@dataclass
class Totals:
    """Predicted totals of a wave (sums over customers, per bag).

    Attributes:
        policy: Policy name -> (bags,) incremental profit.
        cost: Policy name -> expected contact plus coupon cost.
        contacts: Policy name -> e-mails.
        cells: Arm -> (bags,) sum of the arm's incremental profit over the customers assigned it.
        cell_n: Arm -> (sent, held out) customers.
    """

    policy: dict[str, np.ndarray]
    cost: dict[str, float]
    contacts: dict[str, int]
    cells: dict[str, np.ndarray]
    cell_n: dict[str, tuple[int, int]]


def totals(wave: DataFrame, actions: list[str], no_contact: str, bags: int) -> Totals:
    """Per-bag totals of the strategy (``greedy``), each single action, random, and of each assigned arm.

    ``wave`` has the columns of :func:`marketlab.campaign.model.score` plus ``greedy``,
    ``arm`` and ``holdout``.
    """
    singles = [f"all_{a}" for a in actions]
    names = ["strategy", "random", *singles]

    def run(batches):
        acc = {k: np.zeros(bags) for k in names}
        cost = {k: 0.0 for k in names}
        contacts = {k: 0 for k in names}
        cells = {a: np.zeros(bags) for a in actions}
        ns = {a: [0, 0] for a in actions}
        for pdf in batches:
            bag = {a: np.stack(pdf[f"bags_{a}"].to_numpy()) if len(pdf) else np.zeros((0, bags)) for a in actions}
            g = pdf["greedy"].to_numpy(object)
            arm = pdf["arm"].to_numpy(object)
            hold = pdf["holdout"].to_numpy(bool)
            for a in actions:
                email = a != no_contact
                acc[f"all_{a}"] += bag[a].sum(axis=0)
                cost[f"all_{a}"] += float(pdf[f"cost_{a}"].sum())
                contacts[f"all_{a}"] += len(pdf) if email else 0
                acc["random"] += bag[a].sum(axis=0) / len(actions)
                cost["random"] += float(pdf[f"cost_{a}"].sum()) / len(actions)
                m = g == a
                acc["strategy"] += bag[a][m].sum(axis=0)
                cost["strategy"] += float(pdf[f"cost_{a}"][m].sum())
                contacts["strategy"] += int(m.sum()) if email else 0
                c = arm == a
                cells[a] += bag[a][c].sum(axis=0)
                ns[a][0] += int((c & ~hold).sum())
                ns[a][1] += int((c & hold).sum())
            contacts["random"] += int(len(pdf) * (len(actions) - 1) / len(actions))
        rows = [(k, acc[k].tolist(), cost[k], contacts[k], 0, 0) for k in names]
        rows += [(f"cell_{a}", cells[a].tolist(), 0.0, 0, ns[a][0], ns[a][1]) for a in actions]
        yield pd.DataFrame(rows, columns=["key", "bags", "cost", "contacts", "n_sent", "n_held"])

    cols = ["greedy", "arm", "holdout", *[f"bags_{a}" for a in actions], *[f"cost_{a}" for a in actions]]
    schema = "key string, bags array<double>, cost double, contacts long, n_sent long, n_held long"
    parts = wave.select(*cols).mapInPandas(run, schema).collect()
    pol = {k: np.zeros(bags) for k in names}
    cost = {k: 0.0 for k in names}
    contacts = {k: 0 for k in names}
    cells = {a: np.zeros(bags) for a in actions}
    cell_n = {a: (0, 0) for a in actions}
    for r in parts:
        if r.key.startswith("cell_"):
            a = r.key[5:]
            cells[a] += np.asarray(r.bags)
            cell_n[a] = (cell_n[a][0] + r.n_sent, cell_n[a][1] + r.n_held)
        else:
            pol[r.key] += np.asarray(r.bags)
            cost[r.key] += r.cost
            contacts[r.key] += r.contacts
    return Totals(pol, cost, contacts, cells, cell_n)

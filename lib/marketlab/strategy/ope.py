"""Off-policy evaluation on a randomized log, in Spark: IPS, self-normalised IPS, DR, DM.

For a logged customer i with action a_i (propensity p(a_i), here the arm's share: the
campaign was randomized) and reward r_i, a policy with probabilities pi(a|x) and a
reward model Q(x, a):

* IPS   V = mean( pi(a_i|x_i) / p(a_i) * r_i )
* SNIPS V = sum( w_i r_i ) / sum( w_i ),  w_i = pi(a_i|x_i) / p(a_i)
* DM    V = mean( sum_a pi(a|x_i) Q(x_i, a) )
* DR    V = DM + mean( w_i (r_i - Q(x_i, a_i)) )

Confidence intervals: Poisson bootstrap over customers, the same weights for every
policy, so the difference to a reference policy is paired (its CI accounts for the
shared noise). Percentile intervals.
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from marketlab.effect.metrics import REP, W, poisson_replicates
from marketlab.strategy.policy import pi_col, q_col
from marketlab.strategy.power import minimal_detectable_difference

ESTIMATORS = ("ips", "snips", "dm", "dr")


def propensities(log: DataFrame, action_col: str) -> dict[str, float]:
    """Logging propensity of each action: its share of the randomized log."""
    counts = {r[0]: r[1] for r in log.groupBy(action_col).count().collect()}
    total = sum(counts.values())
    return {a: c / total for a, c in counts.items()}


def _case(action_col: str, actions: list[str], values: dict[str, F.Column]) -> F.Column:
    expr = None
    for a in actions:
        expr = F.when(F.col(action_col) == a, values[a]) if expr is None else expr.when(F.col(action_col) == a, values[a])
    return expr.otherwise(F.lit(None))


def evaluate_policies(log: DataFrame, policies: DataFrame, names: list[str], actions: list[str],
                      reference: str | None = None, key: str = "customer_key", action_col: str = "action",
                      reward_col: str = "reward", bootstrap: int = 200, seed: int = 42,
                      level: float = 0.95, power: float = 0.8) -> pd.DataFrame:
    """Estimate every policy's value per customer with bootstrap CIs.

    Args:
        log: Logged customers: ``key``, ``action_col`` (action taken), ``reward_col``, and
            ``q__<action>`` reward-model columns for every action.
        policies: One row per customer: ``key`` and, per policy index j,
            ``p{j}__<pi_col(action)>`` probabilities.
        names: Policy names in index order.
        actions: All actions (control included).
        reference: Policy whose value is subtracted for the paired differences.
        key: Customer column.
        action_col: Logged action column.
        reward_col: Reward column.
        bootstrap: Replicates (0 = no CIs).
        seed: Bootstrap seed.
        level: Confidence level.
        power: Power of the minimal detectable difference.

    Returns:
        One row per policy x estimator: ``policy``, ``estimator``, ``value``, ``lo``, ``hi``,
        and with a reference ``diff``, ``diff_lo``, ``diff_hi``, ``diff_se`` (bootstrap
        standard deviation of the paired difference) and ``mde`` (the smallest true
        difference this log detects at ``1 - level`` with probability ``power``: a
        ``diff`` well below it says the comparison is underpowered, not that the policies
        are equal).

    Raises:
        ValueError: A logged action has no propensity or the log is empty.
    """
    prop = propensities(log, action_col)
    if not prop:
        raise ValueError("the evaluation log is empty")
    missing = [a for a in actions if a not in prop]
    if missing:
        raise ValueError(f"action(s) {missing} never logged: their value cannot be estimated off-policy")
    data = log.join(policies, key)
    p_logged = _case(action_col, actions, {a: F.lit(prop[a]) for a in actions})
    q_logged = _case(action_col, actions, {a: F.col(q_col(a)) for a in actions})
    r = F.col(reward_col)
    cols = [F.col(key)]
    for j, _ in enumerate(names):
        pi = {a: F.col(f"p{j}__{pi_col(a)}") for a in actions}
        ratio = _case(action_col, actions, pi) / p_logged
        dm = sum((pi[a] * F.col(q_col(a)) for a in actions), F.lit(0.0))
        cols += [(ratio * r).alias(f"ips{j}"), ratio.alias(f"w{j}"), dm.alias(f"dm{j}"),
                 (dm + ratio * (r - q_logged)).alias(f"dr{j}")]
    terms = data.select(*cols).cache()

    def aggs(weight: F.Column) -> list[F.Column]:
        out = []
        for j, _ in enumerate(names):
            out += [(F.sum(weight * F.col(f"ips{j}")) / F.sum(weight)).alias(f"ips{j}"),
                    (F.sum(weight * F.col(f"ips{j}")) / F.sum(weight * F.col(f"w{j}"))).alias(f"snips{j}"),
                    (F.sum(weight * F.col(f"dm{j}")) / F.sum(weight)).alias(f"dm{j}"),
                    (F.sum(weight * F.col(f"dr{j}")) / F.sum(weight)).alias(f"dr{j}")]
        return out

    point = terms.agg(*aggs(F.lit(1.0))).first().asDict()
    ref = names.index(reference) if reference is not None else None
    rows = []
    boot = None
    if bootstrap:
        reps = poisson_replicates(terms, bootstrap, seed, key)
        boot = reps.groupBy(REP).agg(*aggs(F.col(W))).toPandas()
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    for j, name in enumerate(names):
        for est in ESTIMATORS:
            row = {"policy": name, "estimator": est, "value": float(point[f"{est}{j}"])}
            if boot is not None:
                row["lo"], row["hi"] = (float(v) for v in boot[f"{est}{j}"].quantile([lo_q, hi_q]))
            if ref is not None:
                row["diff"] = row["value"] - float(point[f"{est}{ref}"])
                if boot is not None:
                    d = boot[f"{est}{j}"] - boot[f"{est}{ref}"]
                    row["diff_lo"], row["diff_hi"] = (float(v) for v in d.quantile([lo_q, hi_q]))
                    row["diff_se"] = float(d.std(ddof=1))
                    row["mde"] = minimal_detectable_difference(row["diff_se"], 1 - level, power)
            rows.append(row)
    terms.unpersist()
    return pd.DataFrame(rows)


def policies_frame(spark, policies: dict[str, pd.DataFrame], actions: list[str], key: str = "customer_key") -> tuple[DataFrame, list[str]]:
    """Pack policy tables into one Spark frame with ``p{j}__`` prefixed columns."""
    names = list(policies)
    parts = []
    for j, name in enumerate(names):
        t = policies[name][[pi_col(a) for a in actions]]
        parts.append(t.add_prefix(f"p{j}__"))
    wide = pd.concat(parts, axis=1)
    wide.index.name = key
    return spark.createDataFrame(wide.reset_index()), names

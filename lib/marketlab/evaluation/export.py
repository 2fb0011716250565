"""Campaign export and evaluation history: the two ends of the closed loop.

strategy -> **export** (audience, arm, random holdout) -> e-mail tool -> responses ->
evaluation -> **history** (``gold.campaign_evaluations``) -> next strategy run.

The holdout is drawn by hashing ``(seed, customer_key)``: the same audience and seed give
the same assignment on every run and on any number of partitions (a rerun of the job
cannot move a customer between e-mail and control), and the draw is independent of the
strategy's choice, so the holdout is a valid randomized control for every arm.
"""

from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.privacy import customer_key

#: Resolution of the hash-based uniform draw.
_BUCKETS = 1_000_000


def _uniform(key_col: str, seed: int, salt: str):
    # xxhash64 of (seed, tag, key) -> [0, 1); different tags give independent draws.
    h = F.xxhash64(F.lit(seed), F.lit(salt), F.col(key_col).cast("string"))
    return F.pmod(h, F.lit(_BUCKETS)).cast("double") / _BUCKETS


def build_campaign_export(
    audience: DataFrame,
    *,
    campaign: str,
    control_arm: str,
    holdout_fraction: float,
    seed: int,
    arm_col: str | None = "action",
    arms: list[str] | None = None,
    key_col: str = C.CUSTOMER_KEY,
    exported_at: datetime | None = None,
) -> DataFrame:
    """Audience list with arm assignment and a random holdout, for an e-mail tool.

    Args:
        audience: One row per customer; ``key_col`` and (optionally) ``arm_col``.
        campaign: Campaign name written on every row.
        control_arm: Arm given to held-out customers (and meaning "no e-mail").
        holdout_fraction: Share of the audience held out at random, in (0, 1).
        seed: Salt of the assignment hash.
        arm_col: Column with the chosen arm per customer; None -> arms are drawn
            uniformly from ``arms`` (a plain randomized test).
        arms: Arms to draw from when ``arm_col`` is None.
        key_col: Customer key column.
        exported_at: Timestamp on the rows (default now, UTC).

    Returns:
        ``campaign, customer_key, arm, intended_arm, is_holdout, send_email,
        assignment_u, exported_at``: ``arm`` is what the e-mail tool executes (the
        control for holdout customers), ``intended_arm`` what the strategy chose.

    Raises:
        ValueError: Bad fraction, missing columns, duplicate or null keys, no arms.
    """
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    need = [key_col] + ([arm_col] if arm_col else [])
    missing = [c for c in need if c not in audience.columns]
    if missing:
        raise ValueError(f"audience lacks column(s) {missing}; has {audience.columns}")
    stats = audience.agg(F.count(F.lit(1)).alias("n"), F.countDistinct(key_col).alias("d"),
                         F.sum(F.col(key_col).isNull().cast("long")).alias("nulls")).first()
    if stats["nulls"]:
        raise ValueError(f"audience has {stats['nulls']} null {key_col}(s)")
    if stats["n"] != stats["d"]:
        raise ValueError(f"audience has {stats['n'] - stats['d']} duplicate {key_col}(s): one row per customer expected")
    exported_at = exported_at or datetime.now(timezone.utc).replace(tzinfo=None)

    df = audience.select(F.col(key_col).cast("string").alias("customer_key"),
                         *([F.col(arm_col).cast("string").alias("intended_arm")] if arm_col else []))
    if not arm_col:
        if not arms:
            raise ValueError("arms must be given when the audience has no arm column")
        ordered = sorted(arms)
        idx = F.floor(_uniform("customer_key", seed, "arm") * len(ordered)).cast("int")
        df = df.withColumn("intended_arm", F.element_at(F.array(*[F.lit(a) for a in ordered]), idx + 1))
    u = _uniform("customer_key", seed, "holdout")
    df = df.withColumn("assignment_u", u).withColumn("is_holdout", F.col("assignment_u") < F.lit(holdout_fraction))
    arm = F.when(F.col("is_holdout"), F.lit(control_arm)).otherwise(F.col("intended_arm"))
    return df.select(
        F.lit(campaign).alias("campaign"),
        "customer_key",
        arm.alias("arm"),
        "intended_arm",
        "is_holdout",
        (arm != F.lit(control_arm)).alias("send_email"),
        "assignment_u",
        F.lit(exported_at).cast("timestamp").alias("exported_at"),
    )


def latest_evaluations(evaluations: DataFrame, segment: str | None = None) -> DataFrame:
    """Most recent evaluation row per campaign x arm x metric x segment (what a strategy reads).

    Args:
        evaluations: ``gold.campaign_evaluations``.
        segment: Keep only this segment (``'all'`` for the overall effect), or all.

    Returns:
        The latest rows.
    """
    keys = ["campaign", "arm", "metric", "segment"]
    w = Window.partitionBy(*keys).orderBy(F.col("evaluated_at").desc())
    out = evaluations.withColumn("_r", F.row_number().over(w)).where("_r = 1").drop("_r")
    return out if segment is None else out.where(F.col("segment") == segment)


def next_wave_export(
    campaign_log: DataFrame,
    strategy: DataFrame | None,
    *,
    export,
    control_arm: str,
    treatment_col: str,
    secret: str,
    id_col: str = C.CUSTOMER_ID,
) -> tuple[DataFrame, str]:
    """The next wave's audience: the strategy's chosen actions, else a repeat of the test.

    Args:
        campaign_log: The evaluated campaign (``silver.campaign_log`` contract).
        strategy: The strategy table (one chosen action per customer), or None when no
            strategy has been made yet.
        export: :class:`~marketlab.evaluation.params.ExportParams`.
        control_arm: The "no e-mail" arm.
        treatment_col: Arm column of ``campaign_log``.
        secret: Pseudonymisation secret of ``customer_key`` (the repeat-test path).
        id_col: Raw customer id column of ``campaign_log``.

    Returns:
        ``(export rows, audience description)``.
    """
    if strategy is not None:
        audience, arm_col, arms, origin = strategy, export.arm_column, None, "strategy"
    else:
        audience = campaign_log.select(customer_key(id_col, secret).alias(export.key_column))
        arms = sorted(r[0] for r in campaign_log.select(treatment_col).distinct().collect())
        arm_col, origin = None, "re-randomized campaign"
    rows = build_campaign_export(audience, campaign=export.campaign, control_arm=control_arm,
                                 holdout_fraction=export.holdout_fraction, seed=export.seed, arm_col=arm_col,
                                 arms=arms, key_col=export.key_column)
    return rows, origin

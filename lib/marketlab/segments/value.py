"""Value tiers on the segments: each customer's CLV tier from gold.customer_value, and the
tier mix / mean CLV per segment for the profiles (docs/VALUE.md, "Segments").

Optional by construction: without a value slice the same columns are there, null (the
tier) or empty (the mix), so gold.segments and gold.segment_profiles keep one schema
whether or not the value stage has run.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.value.summary import CLV, P_ALIVE
from marketlab.value.tiers import AT_RISK, TIER, at_risk, value_tiers

#: Columns :func:`attach_value` adds to the segments (types fixed, also when there is no value).
SEGMENT_VALUE_COLUMNS = {TIER: "string", CLV: "double", P_ALIVE: "double", AT_RISK: "boolean"}
VALUE_AS_OF = "value_as_of"
TIER_MIX = "value_tier_mix"


def value_slice(values: DataFrame, as_of: dt.date | str) -> tuple[DataFrame | None, dt.date | None]:
    """The slice of gold.customer_value to tier the segments of ``as_of`` with (point in time).

    The slice with the latest ``as_of`` on or before the segments' cutoff: a value scored
    after the cutoff would leak later purchases into the tiers.

    Returns:
        ``(rows of that slice, its as_of)``, or ``(None, None)`` when no slice is that early.
    """
    cutoff = F.lit(str(as_of)).cast("date")
    latest = values.where(F.col(C.AS_OF) <= cutoff).agg(F.max(C.AS_OF)).first()[0]
    if latest is None:
        return None, None
    return values.where(F.col(C.AS_OF) == F.lit(str(latest)).cast("date")), latest


def attach_value(segments: DataFrame, values: DataFrame | None, tiers: list[str], quantiles: list[float],
                 at_risk_min_clv_quantile: float = 0.8, at_risk_max_p_alive: float = 0.5) -> DataFrame:
    """``segments`` with ``value_tier``, ``clv``, ``p_alive`` and ``at_risk`` per customer.

    The tiers are CLV quantiles of the whole value slice (:func:`marketlab.value.value_tiers`,
    ``tiers`` highest first, ``quantiles`` between them), so a tier means the same for every
    segment; at-risk is :func:`marketlab.value.at_risk` on the same slice. A segmented
    customer without a value row (none scored as of that date) gets nulls.

    Args:
        segments: One row per customer_key (gold.segments rows).
        values: One as_of slice of gold.customer_value, or None: the columns are null.
        tiers: Tier names, highest value first (``jobs.value.tiers``).
        quantiles: CLV quantiles separating the tiers (``jobs.value.tier_quantiles``).
        at_risk_min_clv_quantile: "High value": CLV at or above this quantile.
        at_risk_max_p_alive: "At risk": P(alive) at or below this.
    """
    if values is None:
        return segments.select(*segments.columns,
                               *[F.lit(None).cast(t).alias(c) for c, t in SEGMENT_VALUE_COLUMNS.items()])
    scored = at_risk(value_tiers(values.select(C.CUSTOMER_KEY, CLV, P_ALIVE), tiers, quantiles),
                     at_risk_min_clv_quantile, at_risk_max_p_alive)
    cols = [F.col(c).cast(t).alias(c) for c, t in SEGMENT_VALUE_COLUMNS.items()]
    return segments.join(scored.select(C.CUSTOMER_KEY, *cols), C.CUSTOMER_KEY, "left")


def value_profiles(valued: DataFrame) -> DataFrame:
    """Per segment: customers with a value, mean / median / total CLV, mean P(alive), at-risk
    count and the tier mix (``value_tier_mix``: tier -> customers; empty without values).
    """
    stats = valued.groupBy(C.SEGMENT_ID).agg(
        F.count(CLV).alias("n_valued"), F.mean(CLV).alias("mean_clv"),
        F.percentile(CLV, F.lit(0.5)).alias("median_clv"), F.sum(CLV).alias("total_clv"),
        F.mean(P_ALIVE).alias("mean_p_alive"), F.sum(F.col(AT_RISK).cast("long")).alias("n_at_risk"))
    mix = (valued.where(F.col(TIER).isNotNull()).groupBy(C.SEGMENT_ID, TIER).agg(F.count(F.lit(1)).alias("n"))
           .groupBy(C.SEGMENT_ID).agg(F.map_from_entries(F.collect_list(F.struct(TIER, "n"))).alias(TIER_MIX)))
    empty = F.create_map().cast("map<string,bigint>")
    return (stats.join(mix, C.SEGMENT_ID, "left")
            .select(C.SEGMENT_ID, "n_valued", "mean_clv", "median_clv", "total_clv", "mean_p_alive",
                    F.coalesce(F.col("n_at_risk"), F.lit(0)).cast("long").alias("n_at_risk"),
                    F.coalesce(F.col(TIER_MIX), empty).alias(TIER_MIX)))

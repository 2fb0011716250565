"""The segments stage's entry point (job, ``gold`` fixture, benchmarks): k-means segments of
one cutoff of the customer features, with each customer's value tier from gold.customer_value
when it exists, written through the lake.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from pyspark.sql import Row
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.errors import BadInputError
from marketlab.segments.kmeans import fit_segments
from marketlab.segments.params import SegmentsParams
from marketlab.segments.value import VALUE_AS_OF, attach_value, value_profiles, value_slice
from marketlab.tables import Lake
from marketlab.value.params import ValueParams

log = logging.getLogger(__name__)


@dataclass
class SegmentsResult:
    """What the segments stage wrote.

    Attributes:
        as_of: Cutoff segmented.
        k: Number of segments chosen.
        silhouettes: Silhouette per k tried.
        profiles: The profile rows written, by segment.
        versions: Catalog name -> Delta version written.
        value_as_of: ``as_of`` of the gold.customer_value slice the tiers come from; None:
            no value tiers (no value table, or no slice on or before ``as_of``).
        value_note: Why there are no value tiers (empty when there are).
    """

    as_of: dt.date | str
    k: int
    silhouettes: dict[int, float]
    profiles: list[Row]
    versions: dict[str, int]
    value_as_of: dt.date | None = None
    value_note: str = ""

    def metrics(self) -> dict[str, float]:
        """Silhouette per k (``silhouette.k3`` ...), the chosen ``k`` and its ``silhouette``;
        with value tiers also ``value.customers`` (segmented customers with a value) and ``value.at_risk``.
        """
        out = {**{f"silhouette.k{k}": v for k, v in self.silhouettes.items()},
               "k": self.k, "silhouette": self.silhouettes[self.k]}
        if self.value_as_of is not None:
            out["value.customers"] = float(sum(int(r["n_valued"] or 0) for r in self.profiles))
            out["value.at_risk"] = float(sum(int(r["n_at_risk"] or 0) for r in self.profiles))
        return out


def _values(lake: Lake, params: SegmentsParams, as_of) -> tuple:
    """``(value slice or None, its as_of, note)`` for the segments of ``as_of``."""
    if not params.value_table:
        return None, None, "no value table configured (jobs.segments.value_table: null)"
    if not lake.exists(params.value_table):
        return None, None, f"{params.value_table} does not exist (run the value stage for value tiers)"
    values, value_as_of = value_slice(lake.read(params.value_table), as_of)
    if values is None:
        return None, None, f"{params.value_table} has no slice on or before {as_of}"
    return values, value_as_of, ""


def run(lake: Lake, params: SegmentsParams, value: ValueParams | None = None) -> SegmentsResult:
    """Segment the customers of one cutoff and write the segments and their profiles.

    With ``params.value_table`` present, every customer also gets the CLV tier of the latest
    value slice on or before the cutoff, and every profile the tier mix and mean CLV of its
    segment (:mod:`marketlab.segments.value`); without it those columns are null / empty.

    Args:
        lake: The lake.
        params: Segment parameters.
        value: The value stage's parameters: tier names and quantiles, at-risk thresholds
            (the job passes ``jobs.value``; default: their defaults).

    Raises:
        BadInputError: No customer features for the requested cutoff, or fewer customers
            than ``k_max``.
    """
    value = value or ValueParams()
    cf = lake.read(params.input_table)
    as_of = params.as_of or cf.agg(F.max(C.AS_OF)).first()[0]
    cf = cf.where(F.col(C.AS_OF) == F.lit(as_of).cast("date"))
    n = cf.count()
    if n < params.k_max:
        raise BadInputError(f"{params.input_table} has {n} customers as of {as_of}; need at least k_max={params.k_max}")
    fit = fit_segments(cf, params)
    values, value_as_of, note = _values(lake, params, as_of)
    if note:
        log.info("segments: no value tiers: %s", note)
    segs = attach_value(fit.segments, values, value.tiers, value.tier_quantiles, value.at_risk_min_clv_quantile,
                        value.at_risk_max_p_alive).cache()
    profiles = fit.profiles.join(value_profiles(segs), C.SEGMENT_ID, "left") \
        .withColumn(VALUE_AS_OF, F.lit(None if value_as_of is None else str(value_as_of)).cast("date"))
    versions = {params.segments_table: lake.write(segs, params.segments_table),
                params.profiles_table: lake.write(profiles, params.profiles_table)}
    segs.unpersist()
    rows = lake.read(params.profiles_table).orderBy(C.SEGMENT_ID).collect()
    return SegmentsResult(as_of, fit.k, fit.silhouettes, rows, versions, value_as_of, note)

"""The segments stage's entry point (job, ``gold`` fixture, benchmarks): k-means segments of
one cutoff of the customer features, written through the lake.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Row
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.errors import BadInputError
from marketlab.segments.kmeans import fit_segments
from marketlab.segments.params import SegmentsParams
from marketlab.tables import Lake


@dataclass
class SegmentsResult:
    """What the segments stage wrote.

    Attributes:
        as_of: Cutoff segmented.
        k: Number of segments chosen.
        silhouettes: Silhouette per k tried.
        profiles: The profile rows written, by segment.
        versions: Catalog name -> Delta version written.
    """

    as_of: dt.date | str
    k: int
    silhouettes: dict[int, float]
    profiles: list[Row]
    versions: dict[str, int]

    def metrics(self) -> dict[str, float]:
        """Silhouette per k (``silhouette.k3`` ...), the chosen ``k`` and its ``silhouette``."""
        return {**{f"silhouette.k{k}": v for k, v in self.silhouettes.items()},
                "k": self.k, "silhouette": self.silhouettes[self.k]}


def run(lake: Lake, params: SegmentsParams) -> SegmentsResult:
    """Segment the customers of one cutoff and write the segments and their profiles.

    Raises:
        BadInputError: No customer features for the requested cutoff, or fewer customers
            than ``k_max``.
    """
    cf = lake.read(params.input_table)
    as_of = params.as_of or cf.agg(F.max(C.AS_OF)).first()[0]
    cf = cf.where(F.col(C.AS_OF) == F.lit(as_of).cast("date"))
    n = cf.count()
    if n < params.k_max:
        raise BadInputError(f"{params.input_table} has {n} customers as of {as_of}; need at least k_max={params.k_max}")
    fit = fit_segments(cf, params)
    versions = {params.segments_table: lake.write(fit.segments, params.segments_table),
                params.profiles_table: lake.write(fit.profiles, params.profiles_table)}
    profiles = lake.read(params.profiles_table).orderBy("segment").collect()
    return SegmentsResult(as_of, fit.k, fit.silhouettes, profiles, versions)

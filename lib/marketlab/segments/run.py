"""Orchestration of the segments stage over a lake (job, ``gold`` fixture, benchmark)."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import functions as F

from marketlab.segments.kmeans import fit_segments
from marketlab.segments.params import SegmentsParams
from marketlab.tables import Lake


@dataclass
class SegmentsRun:
    """What the segments stage produced."""

    k: int
    silhouettes: dict[int, float]
    profile_rows: list
    figure: object


def build_segments(lake: Lake, params: SegmentsParams) -> SegmentsRun:
    """Segment the customers of one cutoff and write gold.segments / gold.segment_profiles.

    Raises:
        marketlab.runtime.JobError: No customer features for the requested cutoff, or
            fewer customers than ``k_max``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from marketlab.runtime import JobError

    cf = lake.read("gold.customer_features")
    as_of = params.as_of or cf.agg(F.max("as_of")).first()[0]
    cf = cf.where(F.col("as_of") == F.lit(as_of).cast("date"))
    n = cf.count()
    if n < params.k_max:
        raise JobError(f"gold.customer_features has {n} customers as of {as_of}; need at least k_max={params.k_max}")
    res = fit_segments(cf, params)
    lake.write(res.segments, "gold.segments")
    lake.write(res.profiles, "gold.segment_profiles")
    fig, ax = plt.subplots(figsize=(5, 3))
    ks = sorted(res.silhouettes)
    ax.plot(ks, [res.silhouettes[k] for k in ks], marker="o")
    ax.axvline(res.k, ls="--", c="grey")
    ax.set_xlabel("k")
    ax.set_ylabel("silhouette")
    ax.set_title(f"k-means on scaled RFM (as of {as_of})")
    fig.tight_layout()
    rows = lake.read("gold.segment_profiles").orderBy("segment").collect()
    return SegmentsRun(res.k, res.silhouettes, rows, fig)

"""Segments job: k-means on scaled RFM of gold.customer_features (k by silhouette).

    spark-submit jobs/segments.py --conf conf/local.yaml
"""

from __future__ import annotations

from marketlab.runtime import JobContext, main_guard
from marketlab.segments.run import SegmentsResult, run
from marketlab.segments.tracking import log_result
from marketlab.tracking import job_run


def main(ctx: JobContext) -> SegmentsResult:
    """Fit segments (with value tiers when gold.customer_value exists), write gold.segments and
    gold.segment_profiles, log silhouette per k."""
    params, value = ctx.settings.jobs.segments, ctx.settings.jobs.value
    with job_run(ctx.settings, "segments", ctx.lake, params={"segments": params.model_dump(),
                                                             "value": {"tiers": value.tiers,
                                                                       "tier_quantiles": value.tier_quantiles}}):
        res = run(ctx.lake, params, value)
        log_result(res)
    sizes = ", ".join(f"{r['segment_name']} {r['n_customers']:,}" for r in res.profiles)
    tiers = f"value tiers as of {res.value_as_of}" if res.value_as_of else f"no value tiers: {res.value_note}"
    print(f"segments: k={res.k} (silhouette {res.silhouettes[res.k]:.3f}, tried {sorted(res.silhouettes)}) "
          f"as of {res.as_of}: {sizes}; {tiers}")
    return res


if __name__ == "__main__":
    main_guard("segments", main)

"""Segments job: k-means on scaled RFM of gold.customer_features (k by silhouette).

    spark-submit jobs/segments.py --conf conf/local.yaml
"""

from __future__ import annotations

from marketlab.runtime import JobContext, main_guard
from marketlab.segments.run import SegmentsResult, run
from marketlab.segments.tracking import log_result
from marketlab.tracking import job_run


def main(ctx: JobContext) -> SegmentsResult:
    """Fit segments, write gold.segments and gold.segment_profiles, log silhouette per k."""
    params = ctx.settings.jobs.segments
    with job_run(ctx.settings, "segments", ctx.lake, params={"segments": params.model_dump()}):
        res = run(ctx.lake, params)
        log_result(res)
    sizes = ", ".join(f"{r['segment_name']} {r['n_customers']:,}" for r in res.profiles)
    print(f"segments: k={res.k} (silhouette {res.silhouettes[res.k]:.3f}, tried {sorted(res.silhouettes)}) "
          f"as of {res.as_of}: {sizes}")
    return res


if __name__ == "__main__":
    main_guard("segments", main)

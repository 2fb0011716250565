"""Segments job: k-means on scaled RFM of gold.customer_features (k by silhouette).

    spark-submit jobs/segments.py --conf conf/local.yaml
"""

from __future__ import annotations

import mlflow

from marketlab.runtime import JobContext, main_guard
from marketlab.segments.run import build_segments
from marketlab.tracking import job_run


def main(ctx: JobContext) -> dict:
    """Fit segments, write gold.segments and gold.segment_profiles, log silhouette per k."""
    params = ctx.settings.jobs.segments
    with job_run(ctx.settings, "segments", ctx.lake, params={"segments": params.model_dump()}):
        res = build_segments(ctx.lake, params)
        mlflow.log_metrics({f"silhouette.k{k}": v for k, v in res.silhouettes.items()})
        mlflow.log_metrics({"k": res.k, "silhouette": res.silhouettes[res.k]})
        mlflow.log_figure(res.figure, "segments/silhouette.png")
    print(f"segments: k={res.k} (silhouette {res.silhouettes[res.k]:.3f}; tried {sorted(res.silhouettes)})")
    for row in res.profile_rows:
        print(f"  {row['segment']}: {row['segment_name']:<32} {row['n_customers']:>6} customers, "
              f"median monetary {row['median_monetary']:.0f}")
    return {"k": res.k, "silhouettes": res.silhouettes}


if __name__ == "__main__":
    main_guard("segments", main)

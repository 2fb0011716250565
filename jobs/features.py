"""Features job: silver -> gold (item, interactions, demand daily/weekly, customer features
as of a cutoff, customer sequences). Refuses silver versions that failed the quality gate.

    spark-submit jobs/features.py --conf conf/local.yaml --set jobs.features.as_of=2011-09-01
"""

from __future__ import annotations

import mlflow

from marketlab.features.run import build_features
from marketlab.runtime import JobContext, main_guard
from marketlab.tracking import job_run


def main(ctx: JobContext) -> dict:
    """Build every gold feature table and log row counts."""
    params = ctx.settings.jobs.features
    with job_run(ctx.settings, "features", ctx.lake, params={"features": params.model_dump()}):
        out = build_features(ctx.lake, params, ctx.settings.jobs.quality.results_table)
        mlflow.log_metrics({f"rows.{t.split('.')[-1]}": n for t, n in out["rows"].items()})
        mlflow.set_tag("features.as_of", str(out["as_of"]))
    print(f"features: as of {out['as_of']}")
    for t, n in out["rows"].items():
        print(f"  {t}: {n} rows (v{out['versions'][t]})")
    return out


if __name__ == "__main__":
    main_guard("features", main)

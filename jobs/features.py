"""Features job: silver -> gold (item, interactions, demand daily/weekly, customer features
as of a cutoff, customer sequences). Refuses silver versions that failed the quality gate.

    spark-submit jobs/features.py --conf conf/local.yaml --set jobs.features.as_of=2011-09-01
"""

from __future__ import annotations

import mlflow

from marketlab import privacy
from marketlab.features.run import FeaturesResult, run
from marketlab.runtime import JobContext, main_guard
from marketlab.tracking import job_run


def main(ctx: JobContext) -> FeaturesResult:
    """Build every gold feature table and log row counts."""
    params = ctx.settings.jobs.features
    secret = privacy.resolve_secret(ctx.settings)  # before the run: cluster mode without one refuses to start
    with job_run(ctx.settings, "features", ctx.lake, params={"features": params.model_dump()}):
        res = run(ctx.lake, params, secret)
        mlflow.log_metrics(res.metrics())
        mlflow.set_tag("features.as_of", str(res.as_of))
    print(f"features: as of {res.as_of}: " + ", ".join(f"{t} {n:,} rows (v{res.versions[t]})" for t, n in res.rows.items()))
    return res


if __name__ == "__main__":
    main_guard("features", main)

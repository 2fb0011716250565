"""Drift job: key features and model scores vs the last accepted run, into ops.drift.

    spark-submit jobs/drift.py --conf conf/local.yaml

PSI over the reference version's quantile bins and a two-sample KS test per watched
column (conf: jobs.drift); a ``block`` verdict stops the pipeline before the next wave is
exported, until a run with ``--set jobs.drift.on_block=warn`` accepts the new distributions.
"""

from __future__ import annotations

import logging

import mlflow

from marketlab.drift.run import DriftBlockedError, run
from marketlab.runtime import JobContext, main_guard
from marketlab.tracking import job_run

log = logging.getLogger("marketlab.job")


def main(ctx: JobContext) -> None:
    p = ctx.settings.jobs.drift
    with job_run(ctx.settings, "drift", ctx.lake, params=p.model_dump()) as mlrun:
        try:
            res = run(ctx.lake, p, run_id=mlrun.info.run_id)
        except DriftBlockedError:
            mlflow.set_tag("drift.status", "block")
            raise
        compared = res.rows.dropna(subset=["psi"])
        mlflow.log_metrics({"drift.columns": len(res.rows), "drift.max_psi": float(compared["psi"].max())
                            if not compared.empty else 0.0})
        mlflow.set_tag("drift.status", res.status)
    worst = res.worst()
    where = f"; max PSI {worst['psi']:.3f} ({worst['table']}.{worst['column']}[{worst['slice']}])" if worst is not None else ""
    counts = res.rows["status"].value_counts().to_dict()
    print(f"drift {res.status}: {len(res.rows)} columns x slices {counts}{where}"
          f"{f'; not built yet: {res.missing}' if res.missing else ''} -> {p.output_table} v{res.version}")
    log.info("drift rows:\n%s", res.rows.drop(columns=["checked_at", "run_id"]).to_string(index=False,
                                                                                           float_format="%.4g"))


if __name__ == "__main__":
    main_guard("drift", main)

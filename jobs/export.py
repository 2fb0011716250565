"""Export job: the next campaign wave (strategy's actions + random holdout) for an e-mail tool.

    spark-submit jobs/export.py --conf conf/local.yaml

Reads ``gold.strategy`` (or, before any strategy exists, re-randomizes the evaluated
campaign's customers) and writes ``gold.campaign_export`` plus a single-file CSV copy. Its
responses come back as the next ``silver.campaign_log`` and are evaluated by the
evaluation job: the closed loop.
"""

from __future__ import annotations

import os

import mlflow

from marketlab.evaluation.export import next_wave_export
from marketlab.runtime import JobContext, main_guard
from marketlab.tracking import job_run

DEV_SALT = "marketlab-dev-salt"


def main(ctx: JobContext) -> int:
    """Write this wave's rows of gold.campaign_export (replacing only this campaign)."""
    p = ctx.settings.jobs.evaluation
    e = ctx.settings.jobs.export
    with job_run(ctx.settings, "export", ctx.lake, params={"export": e.model_dump(), "control_arm": p.control_arm}):
        strategy = ctx.lake.read(e.source_table) if ctx.lake.exists(e.source_table) else None
        salt = os.environ.get("MARKETLAB_PSEUDONYM_SALT", DEV_SALT)
        rows, origin = next_wave_export(ctx.lake.read(e.input_table), strategy, export=e, control_arm=p.control_arm,
                                        treatment_col=p.treatment_column, salt=salt)
        ctx.lake.write(rows, e.output_table, replace_where=f"campaign = '{e.campaign}'")
        wave = ctx.lake.read(e.output_table).where(f"campaign = '{e.campaign}'")
        if e.csv:  # one CSV file (in a Spark-style folder) that an e-mail tool can import
            wave.coalesce(1).write.mode("overwrite").option("header", True) \
                .csv(ctx.lake.path(e.output_table) + "_csv/" + e.campaign)
        n = wave.count()
        held = wave.where("is_holdout").count()
        mlflow.log_metrics({"export.rows": n, "export.holdout": held})
        mlflow.set_tag("export.audience", origin)
    print(f"export {e.campaign}: {n} customers from {origin}, {held} held out -> {e.output_table}")
    return n


if __name__ == "__main__":
    main_guard("export", main)

"""Recommend job: evaluate + tune ALS, fit on all interactions, write gold.recommendations.

spark-submit jobs/recommend.py --conf conf/local.yaml [--set jobs.recommend.tuning.enabled=true]
"""

from __future__ import annotations

import mlflow
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.recommend.report import metric_curves
from marketlab.recommend.run import CUSTOMER_KEY, random_hide_evaluation, recommend_all, temporal_evaluation
from marketlab.runtime import JobContext, JobError, main_guard
from marketlab.tracking import SPARK_MODEL_REQUIREMENTS, job_run, pinned_requirements, promote_if_better


def main(ctx: JobContext) -> None:
    p = ctx.settings.jobs.recommend
    lake = ctx.lake
    checkpoint_dir = ctx.settings.resolve(ctx.settings.lake_root).rstrip("/") + "/" + p.checkpoint_subdir
    interactions = lake.read(p.interactions_table).select(CUSTOMER_KEY, C.ITEM_ID, "strength")
    items = lake.read(p.item_features_table).select(C.ITEM_ID, C.DESCRIPTION)
    segments = lake.read(p.segments_table) if lake.exists(p.segments_table) else None
    lines = lake.read(p.order_lines_table).where(F.col(C.CUSTOMER_ID).isNotNull())
    # The temporal evaluation needs per-line timestamps, which gold.interactions aggregates
    # away; it runs on silver order lines and only its metrics leave the run.
    events = lines.select(F.col(C.CUSTOMER_ID).cast("string").alias(C.USER_ID), F.col(C.STOCK_CODE).alias(C.ITEM_ID),
                          F.col("invoice_ts").alias("ts"), F.col(C.QUANTITY).cast("double").alias("strength"))
    if interactions.limit(1).count() == 0:
        raise JobError(f"{p.interactions_table} is empty: nothing to recommend from")
    with job_run(ctx.settings, "recommend", lake, params=p.model_dump()) as run:
        best, metrics, temporal, info = temporal_evaluation(events, items, p, checkpoint_dir)
        mlflow.log_figure(metric_curves(temporal, p.k_curve, f"temporal split, cutoff {info['cutoff'][:10]}"),
                          "plots/temporal_metric_at_k.png")
        if p.evaluate_random_hide:
            hide_metrics, hide = random_hide_evaluation(interactions, items, p, best, checkpoint_dir)
            metrics.update(hide_metrics)
            mlflow.log_figure(metric_curves(hide, p.k_curve, "per-user random hide"), "plots/hide_metric_at_k.png")
        mlflow.log_params({f"tuned.{k}": v for k, v in best.model_dump().items()} | {f"eval.{k}": v for k, v in info.items()})
        mlflow.log_metrics({k.replace("@", "_at_"): v for k, v in metrics.items() if v == v})
        recs, model, _ = recommend_all(interactions, items, p, best, checkpoint_dir, segments)
        version = lake.write(recs, p.output_table)
        mv = mlflow.spark.log_model(model, "model", registered_model_name=p.model_name,
                                    dfs_tmpdir=checkpoint_dir + "/../mlflow-dfs",
                                    pip_requirements=pinned_requirements(*SPARK_MODEL_REQUIREMENTS))
        gate_value = metrics.get(p.gate_metric, float("nan"))
        promoted = promote_if_better(p.model_name, mv.registered_model_version, p.gate_metric, gate_value,
                                     margin=p.gate_margin)
        mlflow.set_tag("recommend.promoted", str(promoted))
    k = p.k
    print(f"recommend: {p.output_table} v{version}; temporal MAP@{k} als={metrics.get(f'temporal.als.map_at_{k}', 0):.4f} "
          f"blend={metrics.get(f'temporal.blend.map_at_{k}', 0):.4f} popular={metrics.get(f'temporal.popular.map_at_{k}', 0):.4f}; "
          f"hide AUC als={metrics.get('hide.als.auc', float('nan')):.3f} popular={metrics.get('hide.popular.auc', float('nan')):.3f}; "
          f"model v{mv.registered_model_version} {'promoted to champion' if promoted else 'not promoted'} (run {run.info.run_id})")


if __name__ == "__main__":
    main_guard("recommend", main)

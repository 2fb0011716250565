"""Recommend job: evaluate + tune ALS, fit on all interactions, write gold.recommendations.

spark-submit jobs/recommend.py --conf conf/local.yaml [--set jobs.recommend.tuning.enabled=true]
"""

from __future__ import annotations

import mlflow

from marketlab.recommend.report import metric_curves
from marketlab.recommend.run import run
from marketlab.recommend.select import gate_served
from marketlab.runtime import JobContext, main_guard
from marketlab.tracking import SPARK_MODEL_REQUIREMENTS, job_run, pinned_requirements


def main(ctx: JobContext) -> None:
    p = ctx.settings.jobs.recommend
    checkpoint_dir = ctx.settings.resolve(ctx.settings.lake_root).rstrip("/") + "/" + p.checkpoint_subdir
    with job_run(ctx.settings, "recommend", ctx.lake, params=p.model_dump()) as mlrun:
        res = run(ctx.lake, p, checkpoint_dir)  # resolves the pseudonym secret only to read sequence scores
        metrics = res.metrics
        mlflow.log_figure(metric_curves(res.temporal, p.k_curve, f"temporal split, cutoff {res.info['cutoff'][:10]}"),
                          "plots/temporal_metric_at_k.png")
        if res.hide is not None:
            mlflow.log_figure(metric_curves(res.hide, p.k_curve, "per-user random hide"), "plots/hide_metric_at_k.png")
        mlflow.log_params({f"tuned.{k}": v for k, v in res.als_params.model_dump().items()}
                          | {f"eval.{k}": v for k, v in res.info.items()})
        mlflow.log_metrics({k.replace("@", "_at_"): v for k, v in metrics.items() if v == v})
        mv = mlflow.spark.log_model(res.model, "model", registered_model_name=p.model_name,
                                    dfs_tmpdir=checkpoint_dir + "/../mlflow-dfs",
                                    pip_requirements=pinned_requirements(*SPARK_MODEL_REQUIREMENTS))
        sel = res.selection
        mlflow.log_params({"select.served": sel.served, "select.metric": sel.metric, "select.start": sel.start.isoformat(),
                           "select.end": sel.end.isoformat(), "select.sequence_as_of": str(sel.sequence_as_of)})
        mlflow.set_tag("recommend.served", sel.served)
        promoted = gate_served(p.model_name, mv.registered_model_version, sel, p.gate_metric,
                               metrics.get(p.gate_metric, float("nan")), p.gate_margin)
        mlflow.set_tag("recommend.promoted", str(promoted))
    k = p.k
    served = {m: round(r[sel.metric], 4) for m, r in sel.results.items()}
    print(f"recommend: {p.output_table} v{res.version}; served {sel.served} (validation {sel.metric} {served}); "
          f"temporal MAP@{k} als={metrics.get(f'temporal.als.map_at_{k}', 0):.4f} "
          f"blend={metrics.get(f'temporal.blend.map_at_{k}', 0):.4f} popular={metrics.get(f'temporal.popular.map_at_{k}', 0):.4f}; "
          f"hide AUC als={metrics.get('hide.als.auc', float('nan')):.3f} popular={metrics.get('hide.popular.auc', float('nan')):.3f}; "
          f"model v{mv.registered_model_version} {'promoted to champion' if promoted else 'not promoted'} (run {mlrun.info.run_id})")


if __name__ == "__main__":
    main_guard("recommend", main)

"""Sequence models: Transformer + Mult-VAE (data-parallel), honest evaluation, gold.sequence_scores.

spark-submit jobs/sequence.py --conf conf/cluster.yaml [--set jobs.sequence.train.backend=tf-distribute]
"""

from __future__ import annotations

import shutil

from marketlab.sequence.run import run as run_sequence
from marketlab.runtime import JobContext, main_guard
from marketlab.sequence import logging_mlflow as ml
from marketlab.tracking import job_run


def main(ctx: JobContext) -> dict:
    p = ctx.settings.jobs.sequence
    with job_run(ctx.settings, "sequence", ctx.lake, params=p.model_dump(mode="json")) as run:
        root = ctx.settings.resolve(ctx.settings.lake_root).rstrip("/")
        work = f"{root}/{p.staging_dir}/{run.info.run_id}"
        try:
            res = run_sequence(ctx.lake, p, work_uri=work, checkpoint_path=f"{root}/{p.checkpoint_dir}/{run.info.run_id}")
            ctx.lake.write(res.output(), p.output_table)
        finally:
            shutil.rmtree(work.replace("file://", ""), ignore_errors=True)
        metrics = ml.log_result(res)
        gates = {}
        for kind, name in (("transformer", p.model_name), ("vae", p.vae_model_name)):
            if kind in res.models:
                mv = ml.register(res, kind, name)
                gates[kind] = f"v{mv.version} {ml.gate(res, kind, name, mv.version, p.gate_metric, p.gate_margin)}"
    g = p.gate_metric
    gain = res.gains.get(f"transformer_vs_{res.best_baseline}", (float("nan"),) * 3)
    summary = {"split": res.split.describe(), "items": len(res.vocabulary.items), "customers": res.n_customers,
               "served": res.served, "best_baseline": res.best_baseline, "gates": gates,
               f"test_{g}": {m: metrics.get(f"test.{m}.{g}") for m in res.test["model"]}, "transformer_gain": gain}
    print(f"sequence: {res.n_customers} customers x {len(res.vocabulary.items)} items, cutoff {res.split.describe()['cutoff']}; "
          f"test {g} transformer {metrics.get(f'test.transformer.{g}', float('nan')):.4f} vs {res.best_baseline} "
          f"{metrics.get(f'test.{res.best_baseline}.{g}', float('nan')):.4f} (gain {gain[0]:+.1%} [{gain[1]:+.1%}, {gain[2]:+.1%}]); "
          f"served {res.served}; {gates}")
    return summary


if __name__ == "__main__":
    main_guard("sequence", main)

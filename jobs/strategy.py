"""Budgeted action per customer from predicted uplift + off-policy evaluation -> gold.strategy(_summary)."""

import os
import tempfile
import warnings

import mlflow

from marketlab.effect.data import pseudonymise
from marketlab.runtime import JobContext, JobError, main_guard
from marketlab.strategy.allocate import AllocationError
from marketlab.strategy.report import log_strategy_run
from marketlab.strategy.run import StrategyInputError, build_strategy
from marketlab.tracking import job_run

DEV_SALT = "marketlab-dev-salt"


def main(ctx: JobContext) -> None:
    p = ctx.settings.jobs.strategy
    salt = os.environ.get("MARKETLAB_PSEUDONYM_SALT") or DEV_SALT
    if salt == DEV_SALT:
        warnings.warn("MARKETLAB_PSEUDONYM_SALT is unset: using the development salt for customer_key")
    scores = ctx.lake.read(p.scores_table).toPandas()
    log_df = pseudonymise(ctx.lake.read(p.log_table), salt)
    evaluations = ctx.lake.read(p.evaluations_table).toPandas() if ctx.lake.exists(p.evaluations_table) else None
    with job_run(ctx.settings, "strategy", ctx.lake, params=p.model_dump()):
        mlflow.set_tag("marketlab.run_kind", "effect_evaluation")
        try:
            res = build_strategy(scores, log_df, p, evaluations)
        except (StrategyInputError, AllocationError) as exc:
            raise JobError(str(exc)) from None
        with tempfile.TemporaryDirectory() as tmp:
            log_strategy_run(res, p, tmp)
        v1 = ctx.lake.write(ctx.spark.createDataFrame(res.strategy), p.strategy_table)
        v2 = ctx.lake.write(ctx.spark.createDataFrame(res.summary), p.summary_table)
    print(f"strategy: wrote {p.strategy_table} v{v1}, {p.summary_table} v{v2}; evaluations used: {evaluations is not None}")
    dr = res.ope[res.ope["estimator"] == "dr"].set_index("policy")
    for pol in ["strategy", "bandit_greedy", res.reference, "none"]:
        r = dr.loc[pol]
        print(f"  {pol:<22} DR value/customer {r['value']:+.4f} [{r.get('lo', float('nan')):+.4f}, {r.get('hi', float('nan')):+.4f}]"
              f"  vs {res.reference}: {r['diff']:+.4f} [{r.get('diff_lo', float('nan')):+.4f}, {r.get('diff_hi', float('nan')):+.4f}]"
              f"  (detectable: {r.get('mde', float('nan')):.4f})")
    for note in res.notes:
        print(f"  note: {note}")


if __name__ == "__main__":
    main_guard("strategy", main)

"""Budgeted action per customer from predicted uplift + off-policy evaluation -> gold.strategy(_summary)."""

import logging

import mlflow

from marketlab import privacy
from marketlab.runtime import JobContext, main_guard
from marketlab.strategy.report import log_strategy_run, ope_line
from marketlab.strategy.run import run
from marketlab.tracking import job_run

log = logging.getLogger("marketlab.job")


def main(ctx: JobContext) -> None:
    p = ctx.settings.jobs.strategy
    secret = privacy.resolve_secret(ctx.settings)
    with job_run(ctx.settings, "strategy", ctx.lake, params=p.model_dump()):
        mlflow.set_tag("marketlab.run_kind", "effect_evaluation")
        res = run(ctx.lake, p, secret, ctx.settings.jobs.evaluation)
        log_strategy_run(res, p)
    v1, v2 = res.versions[p.strategy_table], res.versions[p.summary_table]
    dr = res.ope[res.ope["estimator"] == "dr"].set_index("policy")
    for pol in ["strategy", "bandit_greedy", res.reference, "none"]:
        log.info("%s", ope_line(pol, dr.loc[pol], res.reference))
    print(f"strategy: wrote {p.strategy_table} v{v1}, {p.summary_table} v{v2}; evaluations used: {res.evaluations_used}; "
          + ope_line("strategy", dr.loc["strategy"], res.reference).strip())
    for note in res.notes:
        log.info("note: %s", note)


if __name__ == "__main__":
    main_guard("strategy", main)

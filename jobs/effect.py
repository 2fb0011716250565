"""Uplift models per arm x outcome on the randomized campaign -> gold.uplift_scores."""

import logging

from marketlab import privacy
from marketlab.effect.run import log_results, run
from marketlab.runtime import JobContext, main_guard
from marketlab.tracking import job_run

log = logging.getLogger("marketlab.job")


def main(ctx: JobContext) -> None:
    params = ctx.settings.jobs.effect
    secret = privacy.resolve_secret(ctx.settings)
    with job_run(ctx.settings, "effect", ctx.lake, params=params.model_dump()):
        res = run(ctx.lake, params, secret, register=lambda results: log_results(results, params))
    print(f"effect: wrote {params.output_table} v{res.version}")
    for r in res.results:
        m = r.metrics[r.selected]
        log.info(f"  {r.arm:>14} {r.outcome:<10} {r.selected:<21} qini_auc={m['qini_auc']:.4f} "
              f"[{m.get('qini_auc_lo', float('nan')):.4f}, {m.get('qini_auc_hi', float('nan')):.4f}] "
              f"uplift@30={m.get('uplift_at_30', float('nan')):.4f}")


if __name__ == "__main__":
    main_guard("effect", main)

"""Uplift models per arm x outcome on the randomized campaign -> gold.uplift_scores."""

import os
import warnings

from marketlab.effect.data import EffectInputError
from marketlab.effect.run import fit_all, log_results, scores_table
from marketlab.runtime import JobContext, JobError, main_guard
from marketlab.tracking import job_run

DEV_SALT = "marketlab-dev-salt"


def main(ctx: JobContext) -> None:
    params = ctx.settings.jobs.effect
    salt = os.environ.get(params.pseudonym_salt_env)
    if not salt:
        warnings.warn(f"{params.pseudonym_salt_env} is unset: using the development salt for customer_key")
        salt = DEV_SALT
    campaign = ctx.lake.read(params.input_table)
    with job_run(ctx.settings, "effect", ctx.lake, params=params.model_dump()):
        try:
            split, results = fit_all(campaign, params)
        except EffectInputError as exc:
            raise JobError(f"{params.input_table}: {exc}") from None
        versions = log_results(results, params)
        version = ctx.lake.write(scores_table(split, results, salt, versions), params.output_table)
    print(f"effect: wrote {params.output_table} v{version}")
    for r in results:
        m = r.metrics[r.selected]
        print(f"  {r.arm:>14} {r.outcome:<10} {r.selected:<21} qini_auc={m['qini_auc']:.4f} "
              f"[{m.get('qini_auc_lo', float('nan')):.4f}, {m.get('qini_auc_hi', float('nan')):.4f}] "
              f"uplift@30={m.get('uplift_at_30', float('nan')):.4f}")


if __name__ == "__main__":
    main_guard("effect", main)

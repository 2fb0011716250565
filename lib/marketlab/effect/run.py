"""The effect stage's one entry point (:func:`run`), its steps, and its MLflow reporting.

:func:`run` reads the campaign and writes the scores through :class:`~marketlab.tables.Lake`
with the table names of :class:`~marketlab.effect.params.EffectParams`; the job passes
:func:`log_results` as the hook that logs and registers the fitted models before the
scores (which carry the registered versions) are written.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import pandas as pd  # noqa: E402
from pyspark.sql import DataFrame  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from marketlab import constants as C  # noqa: E402
from marketlab.effect.data import check_campaign, hash_split  # noqa: E402
from marketlab.effect.fit import ArmOutcomeResult, feature_importance, fit_arm_outcome, score_customers, slug  # noqa: E402
from marketlab.effect.params import EffectParams  # noqa: E402
from marketlab.privacy import pseudonymise  # noqa: E402
from marketlab.tables import Lake  # noqa: E402

log = logging.getLogger(__name__)


def fit_all(df: DataFrame, params: EffectParams) -> tuple[DataFrame, list[ArmOutcomeResult]]:
    """Check the campaign, split, fit every learner per arm x outcome on training rows.

    Args:
        df: Campaign table (contract: silver.campaign_log).
        params: Effect parameters.

    Returns:
        The split campaign frame (with ``is_holdout``) and one result per arm x outcome.

    Raises:
        EffectInputError: The campaign cannot support an estimate (see
            :func:`marketlab.effect.data.check_campaign`).
    """
    check_campaign(df, params.arms, params.control, list(params.outcomes), table=params.input_table)
    split = hash_split(df, params.validation_fraction, params.seed).cache()
    pairs = [(arm, outcome) for arm in params.arms for outcome in params.outcomes]

    def fit(pair: tuple[str, str]) -> ArmOutcomeResult:
        return fit_arm_outcome(split, pair[0], pair[1], params)

    if params.parallelism == 1 or len(pairs) == 1:
        return split, [fit(p) for p in pairs]
    # Spark runs jobs from several driver threads side by side (as CrossValidator's
    # `parallelism` does); map keeps the results in pair order.
    with ThreadPoolExecutor(max_workers=params.parallelism, thread_name_prefix="effect-fit") as pool:
        return split, list(pool.map(fit, pairs))


def scores_table(split: DataFrame, results: list[ArmOutcomeResult], secret: str,
                 versions: dict[tuple[str, str], str] | None = None) -> DataFrame:
    """gold.uplift_scores rows: pseudonymised customer x action x outcome with interval."""
    scored = score_customers(split, results, versions)
    return (pseudonymise(scored, secret).drop(C.CUSTOMER_ID)
            .withColumn("scored_at", F.current_timestamp())
            .select(C.CUSTOMER_KEY, "action", "outcome", "uplift", "effect_low", "effect_high", "mu_control",
                    "learner", "model_version", "is_holdout", "scored_at"))


@dataclass
class EffectResult:
    """What one effect run fitted and wrote.

    Attributes:
        results: One fitted-and-evaluated result per arm x outcome (in conf order).
        version: Delta version of the scores table written.
    """

    results: list[ArmOutcomeResult]
    version: int


def run(lake: Lake, params: EffectParams, secret: str,
        register: Callable[[list[ArmOutcomeResult]], dict[tuple[str, str], str]] | None = None) -> EffectResult:
    """Fit, evaluate and select the uplift learners; write every customer's scores.

    Args:
        lake: The lake (reads ``params.input_table``, writes ``params.output_table``).
        params: Effect parameters.
        secret: Pseudonymisation secret of ``customer_key``
            (:func:`marketlab.privacy.resolve_secret`).
        register: Called with the results before the scores are written; returns the
            registered model version per (arm, outcome) that the scores carry (the job
            passes :func:`log_results`).

    Raises:
        EffectInputError: The campaign cannot support an estimate.
    """
    split, results = fit_all(lake.read(params.input_table), params)
    versions = register(results) if register is not None else {}
    version = lake.write(scores_table(split, results, secret, versions), params.output_table)
    split.unpersist()
    return EffectResult(results, version)


def log_results(results: list[ArmOutcomeResult], params: EffectParams) -> dict[tuple[str, str], str]:
    """Log metrics, curves, calibration, importances to the active run; register selected models.

    Returns:
        (arm, outcome) -> registered model version ("" when registration is off).
    """
    versions: dict[tuple[str, str], str] = {}
    rows = []
    for r in results:
        key = f"{slug(r.arm)}.{r.outcome}"
        for learner, m in r.metrics.items():
            sel = r.selection.get(learner, float("nan"))
            mlflow.log_metrics({f"{key}.{learner}.{k}": v for k, v in m.items() if v == v})
            if sel == sel:
                mlflow.log_metric(f"{key}.{learner}.selection_{params.selection_metric}", sel)
            rows.append({"arm": r.arm, "outcome": r.outcome, "learner": learner,
                         "selected": learner == r.selected, f"selection_{params.selection_metric}": sel, **m})
        mlflow.log_param(f"selected.{key}", r.selected)
        mlflow.log_text(r.calibration.to_csv(index=False), f"effect/calibration_{key}.csv")
        fig = _figure(r)
        mlflow.log_figure(fig, f"effect/uplift_{key}.png", save_kwargs={"dpi": 90})
        plt.close(fig)
        imp = pd.concat([feature_importance(fl).assign(learner=n) for n, fl in r.learners.items()])
        mlflow.log_text(imp.to_csv(index=False), f"effect/importance_{key}.csv")
        if params.register_models:
            name = f"marketlab-uplift-{slug(r.arm)}-{r.outcome}"
            versions[(r.arm, r.outcome)] = _register(r, name, params)
    mlflow.log_text(pd.DataFrame(rows).to_csv(index=False), "effect/metrics.csv")
    return versions


def _register(r: ArmOutcomeResult, name: str, params: EffectParams) -> str:
    from marketlab.effect.registry import log_and_register
    from marketlab.tracking import promote_if_better

    version = log_and_register(r.learners[r.selected], f"model_{slug(r.arm)}_{r.outcome}", name)
    value = r.metrics[r.selected][params.selection_metric]
    promoted = promote_if_better(name, version, f"val_{params.selection_metric}", value, margin=params.promote_margin)
    log.info("%s v%s %s (val %s=%.4f)", name, version, "promoted" if promoted else "kept out", params.selection_metric, value)
    return version


def _figure(r: ArmOutcomeResult) -> plt.Figure:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for name, pts in r.curves.items():
        ax1.plot(pts["n"], pts["qini"], label=f"{name} (Qini AUC {r.metrics[name]['qini_auc']:.3f})")
    if r.curves:
        last = next(iter(r.curves.values())).iloc[-1]
        ax1.plot([0, last["n"]], [0, last["qini"]], "k--", label="random")
    ax1.set(title=f"Qini: {r.arm} vs control, {r.outcome}", xlabel="customers targeted", ylabel="incremental")
    ax1.legend(fontsize=7)
    cal = r.calibration
    ax2.errorbar(cal["bin"], cal["observed"], yerr=[cal["observed"] - cal["observed_lo"], cal["observed_hi"] - cal["observed"]],
                 fmt="o", label="observed (95% CI)")
    ax2.plot(cal["bin"], cal["predicted"], "s-", label="predicted")
    ax2.set(title=f"calibration ({r.selected})", xlabel="bin of predicted uplift (1 = highest)", ylabel=r.outcome)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    return fig

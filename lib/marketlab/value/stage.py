"""The value stage over a lake: summary in Spark, fits on the driver, holdout evaluation, scoring in Spark.

``run(lake, params)`` reads ``params.input_table`` (after the quality gate), evaluates the
model on a calibration/holdout split, refits on all history before ``as_of`` and writes the
``as_of`` slice of ``params.output_table``. MLflow logging is the job's (jobs/value.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.errors import BadInputError
from marketlab.privacy import customer_key, resolve_secret
from marketlab.tables import Lake
from marketlab.value import models as M
from marketlab.value import summary as S
from marketlab.value.evaluate import Evaluation, calibration_figure, evaluate
from marketlab.value.params import ValueParams
from marketlab.value.tiers import AT_RISK, TIER, at_risk, value_tiers

log = logging.getLogger(__name__)

OUTPUT_COLUMNS = (C.CUSTOMER_KEY, C.AS_OF, S.FREQUENCY, S.RECENCY, S.AGE, S.MONETARY, *S.SCORE_FIELDS, TIER, AT_RISK,
                  "horizon_days")


@dataclass
class Fit:
    """Both models fitted on one summary."""

    bgnbd: M.BGNBD
    gamma_gamma: M.GammaGamma


@dataclass
class ValueResult:
    """What the value stage produced.

    Attributes:
        as_of: Scoring date (exclusive end of the history used).
        fit: Models fitted on all history before ``as_of`` (the ones scored and registered).
        calibration_fit: Models fitted before the evaluation cutoff.
        evaluation: Holdout metrics of ``calibration_fit``.
        figure: Calibration plot.
        n_customers: Customers scored.
        dropped: Lines left out of the summary by reason (guest, nonpositive, outlier).
        version: Delta version of ``output_table`` written.
        totals: Sum of expected spend and of CLV, mean P(alive), at-risk count of the slice.
    """

    as_of: dt.date
    fit: Fit
    calibration_fit: Fit
    evaluation: Evaluation
    figure: object
    n_customers: int
    dropped: dict[str, int]
    version: int
    totals: dict[str, float] = field(default_factory=dict)


def fit_summary(summary: DataFrame, params: ValueParams) -> Fit:
    """Fit BG/NBD on the summary grouped to distinct rows, Gamma-Gamma on the repeat buyers (driver side)."""
    grouped = S.grouped_for_fit(summary)
    x, t_x, age, w = S.as_arrays(grouped, S.FREQUENCY, S.RECENCY, S.AGE, "weight")
    if w.sum() < params.min_customers:
        raise BadInputError(f"{w.sum():.0f} customers with purchases in the window; need at least "
                            f"min_customers={params.min_customers}")
    bg = M.fit_bgnbd(x, t_x, age, weight=w, penalizer=params.penalizer)
    rb = S.repeat_buyers(summary)
    gg = M.fit_gamma_gamma(*S.as_arrays(rb, S.FREQUENCY, S.MONETARY), weight=rb["weight"].to_numpy(float),
                           penalizer=params.penalizer)
    return Fit(bg, gg)


def _score(summary: DataFrame, fit: Fit, params: ValueParams, extra: tuple[int, ...] = ()) -> DataFrame:
    return S.score(summary, fit.bgnbd, fit.gamma_gamma, params.horizon_days, params.period_days,
                   params.discount_per_period, params.margin, extra)


def delta_clv(lines: DataFrame, as_of: dt.date, params: ValueParams) -> tuple[DataFrame, Fit]:
    """Point in time: the CLV and the ΔCLV of one more purchase on ``as_of`` of every customer
    with a purchase before it, from models fitted on that history only.

    What the campaign's objective adds to an incremental order (``jobs.campaign.clv_weight``):
    the wave date is the as-of, so no later order reaches the fit.

    Args:
        lines: Sale lines (``customer_id``, ``date``, ``amount``; ``is_outlier`` if present).
        as_of: Exclusive end of the history.
        params: Value parameters (horizon, discounting, margin, penalizer, outliers).

    Returns:
        ``(frame, fit)``: ``customer_id``, ``clv``, ``delta_clv``; and the models.

    Raises:
        BadInputError: Fewer than ``params.min_customers`` customers before ``as_of``.
    """
    days, _ = S.order_days(lines, params.exclude_outliers)
    summary = S.summarise(days, as_of)
    fit = fit_summary(summary, params)
    return S.delta_clv(summary, fit.bgnbd, fit.gamma_gamma, params.horizon_days, params.period_days,
                       params.discount_per_period, params.margin), fit


def holdout_evaluation(days: DataFrame, cutoff: dt.date, params: ValueParams) -> tuple[Fit, Evaluation]:
    """Fit before ``cutoff``, predict each holdout window after it, compare with what happened."""
    cal = S.summarise(days, cutoff).cache()
    try:
        fit = fit_summary(cal, params)
        scored = _score(cal, fit, params, tuple(params.holdout_days))
        for h in params.holdout_days:
            scored = scored.join(S.holdout_actuals(days, cutoff, h), C.CUSTOMER_ID, "left")
        scored = scored.fillna(0.0, subset=[f"actual_{k}_{h}" for h in params.holdout_days for k in ("purchases", "spend")])
        n = cal.count()
        if n > params.eval_max_customers:
            scored = scored.sample(fraction=min(1.0, 1.2 * params.eval_max_customers / n), seed=params.seed) \
                .limit(params.eval_max_customers)
        pdf = scored.drop(C.CUSTOMER_ID).toPandas()
    finally:
        cal.unpersist()
    ev = evaluate(pdf, str(cutoff), params.holdout_days, params.bootstrap, params.seed, params.calibration_max_frequency)
    return fit, ev


def _dates(params: ValueParams, first: dt.date, last: dt.date) -> tuple[dt.date, dt.date]:
    """(as_of, evaluation cutoff), checked against the data's first and last purchase day."""
    end = last + dt.timedelta(days=1)
    as_of = dt.date.fromisoformat(params.as_of) if params.as_of else end
    if as_of > end:
        raise BadInputError(f"as_of {as_of} is after the data (last purchase {last}): scoring would treat the "
                            f"{(as_of - end).days} days without data as days without purchases")
    if as_of <= first:
        raise BadInputError(f"as_of {as_of} leaves no purchase history (first purchase {first})")
    longest = max(params.holdout_days)
    cutoff = dt.date.fromisoformat(params.eval_cutoff) if params.eval_cutoff else as_of - dt.timedelta(days=longest)
    if cutoff + dt.timedelta(days=longest) > as_of:
        raise BadInputError(f"evaluation cutoff {cutoff} + the {longest}-day holdout runs past {as_of} "
                            f"(the data ends {last}): choose an earlier eval_cutoff or shorter holdout_days")
    if cutoff <= first:
        raise BadInputError(f"empty calibration window: evaluation cutoff {cutoff} is not after the first purchase {first}")
    return as_of, cutoff


def run(lake: Lake, params: ValueParams, secret: str | None = None) -> ValueResult:
    """Evaluate, fit, score and write ``params.output_table`` as of ``params.as_of``.

    Args:
        lake: The lake.
        params: Stage parameters.
        secret: Pseudonymisation secret (default: :func:`marketlab.privacy.resolve_secret`).

    Raises:
        BadInputError: Missing columns, no purchases, a cutoff or as_of outside the data, an
            empty calibration window, too few customers, a fit that fails.
        GateFailedError: The input version has not passed the quality gate (raised by the
            lake's read of a gated table).
    """
    lines = lake.read(params.input_table)
    missing = sorted({C.CUSTOMER_ID, C.DATE, C.AMOUNT} - set(lines.columns))
    if missing:
        raise BadInputError(f"{params.input_table} lacks column(s) {missing}")
    days, dropped_expr = S.order_days(lines, params.exclude_outliers)
    days = days.cache()
    try:
        stats = days.agg(F.min(C.DATE).alias("first"), F.max(C.DATE).alias("last")).first()
        dropped = lines.agg(dropped_expr).first()["dropped"].asDict()
        dropped = {k: int(v or 0) for k, v in dropped.items()}
        if stats["first"] is None:
            raise BadInputError(f"{params.input_table} has no customer purchase with a positive amount "
                                f"(left out: {dropped})")
        as_of, cutoff = _dates(params, stats["first"], stats["last"])
        cal_fit, ev = holdout_evaluation(days, cutoff, params)
        summary = S.summarise(days, as_of).cache()
        fit = fit_summary(summary, params)
        base = _score(summary, fit, params).cache()
        scored = at_risk(value_tiers(base, params.tiers, params.tier_quantiles), params.at_risk_min_clv_quantile,
                         params.at_risk_max_p_alive)
        out = (scored.withColumn(C.CUSTOMER_KEY, customer_key(C.CUSTOMER_ID, secret or resolve_secret(lake.settings)))
               .withColumn(C.AS_OF, F.lit(str(as_of)).cast("date"))
               .withColumn("horizon_days", F.lit(params.horizon_days))
               .select(*OUTPUT_COLUMNS))
        version = lake.write(out, params.output_table, replace_where=f"{C.AS_OF} = DATE'{as_of}'")
        written = lake.read(params.output_table).where(F.col(C.AS_OF) == F.lit(str(as_of)).cast("date"))
        row = written.agg(F.count("*").alias("n"), F.sum(S.EXP_SPEND).alias("expected_spend"),
                          F.sum(S.CLV).alias("clv"), F.avg(S.P_ALIVE).alias("mean_p_alive"),
                          F.sum(F.col(AT_RISK).cast("long")).alias("at_risk")).first()
        base.unpersist()
        summary.unpersist()
    finally:
        days.unpersist()
    totals = {k: float(row[k] or 0.0) for k in ("expected_spend", "clv", "mean_p_alive", "at_risk")}
    log.info("value: %d customers as of %s, %s", row["n"], as_of, totals)
    return ValueResult(as_of=as_of, fit=fit, calibration_fit=cal_fit, evaluation=ev,
                       figure=calibration_figure(ev, params.calibration_max_frequency), n_customers=int(row["n"]),
                       dropped=dropped, version=version, totals=totals)

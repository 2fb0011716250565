"""A/B evaluation of a randomized campaign: effects, intervals, SRM, corrections, ROI.

Spark reduces the campaign log to sufficient statistics per arm x segment in one pass
(count, visits, conversions, sum and sum of squares of spend); the tests then run on the
driver on those few hundred numbers. Only the optional bootstrap collects rows, and only
the spend of the overall treated and control groups.

Every arm is compared with the control, overall (``segment = 'all'``) and within each
value of each segment column. Metrics (effect = treated minus control):

- ``visit_rate`` (the click-through analogue) and ``conversion_rate``: two-proportion z
  and Newcombe interval;
- ``spend_per_customer``: Welch t (or BCa bootstrap interval);
- ``incremental_revenue``: spend effect x treated customers (same test as spend);
- ``incremental_margin``: margin_rate x incremental revenue - campaign cost;
- ``roi``: incremental margin / campaign cost;
- ``cost_per_incremental_conversion``: campaign cost / incremental conversions.

The economic metrics are exact linear (or reciprocal) transforms of a tested effect, so
their intervals are the transformed interval, and they carry no p-value of their own
(``p_value`` null): their hypotheses are those of the spend / conversion rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from marketlab import constants as C
from marketlab.errors import BadInputError
from marketlab.evaluation import stats as S
from marketlab.evaluation.params import EvaluationParams

ALL = "all"

#: Metrics tested directly (they form the multiple-testing families).
TESTED_METRICS = ("visit_rate", "conversion_rate", "spend_per_customer")
#: Derived metrics (transforms of a tested effect).
DERIVED_METRICS = ("incremental_revenue", "incremental_margin", "roi", "cost_per_incremental_conversion")

EVALUATION_SCHEMA = T.StructType([
    T.StructField("campaign", T.StringType(), False),
    T.StructField("arm", T.StringType(), False),
    T.StructField("control_arm", T.StringType(), False),
    T.StructField("metric", T.StringType(), False),
    T.StructField("segment", T.StringType(), False),
    T.StructField("segment_column", T.StringType(), False),
    T.StructField("segment_value", T.StringType(), False),
    T.StructField("effect", T.DoubleType(), True),
    T.StructField("ci_low", T.DoubleType(), True),
    T.StructField("ci_high", T.DoubleType(), True),
    T.StructField("p_value", T.DoubleType(), True),
    T.StructField("p_adjusted", T.DoubleType(), True),
    T.StructField("significant", T.BooleanType(), True),
    T.StructField("value_treated", T.DoubleType(), True),
    T.StructField("value_control", T.DoubleType(), True),
    T.StructField("relative_lift", T.DoubleType(), True),
    T.StructField("test", T.StringType(), False),
    T.StructField("n_treated", T.LongType(), False),
    T.StructField("n_control", T.LongType(), False),
    T.StructField("cost_per_contact", T.DoubleType(), False),
    T.StructField("campaign_cost", T.DoubleType(), False),
    T.StructField("margin_rate", T.DoubleType(), False),
    T.StructField("alpha", T.DoubleType(), False),
    T.StructField("correction", T.StringType(), False),
    T.StructField("srm_p_value", T.DoubleType(), True),
    T.StructField("srm_mismatch", T.BooleanType(), False),
    T.StructField("run_id", T.StringType(), True),
    T.StructField("evaluated_at", T.TimestampType(), False),
])


class CampaignDataError(BadInputError):
    """The campaign log cannot be evaluated (missing columns, no control, empty arm)."""


@dataclass
class CampaignEvaluation:
    """Result of :func:`evaluate_campaign`.

    Attributes:
        rows: Evaluation rows (pandas, ``EVALUATION_SCHEMA`` columns).
        srm: The sample-ratio-mismatch check over all arms.
        arm_counts: Arm -> customers.
        segments_skipped: ``"column=value"`` segments below ``min_segment_size``.
    """

    rows: pd.DataFrame
    srm: S.SrmResult
    arm_counts: dict[str, int]
    segments_skipped: list[str] = field(default_factory=list)

    def to_spark(self, spark: SparkSession) -> DataFrame:
        """The rows as a Spark DataFrame with ``EVALUATION_SCHEMA`` (NaN -> null)."""
        records = []
        for rec in self.rows[[f.name for f in EVALUATION_SCHEMA]].to_dict("records"):
            records.append({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in rec.items()})
        # Rebuild typed tuples: pandas turns longs into numpy ints and timestamps into
        # pandas Timestamps, which Spark's verifier rejects for a declared schema.
        typed = []
        for rec in records:
            row = []
            for f in EVALUATION_SCHEMA:
                v = rec[f.name]
                if v is None:
                    row.append(None)
                elif isinstance(f.dataType, T.LongType):
                    row.append(int(v))
                elif isinstance(f.dataType, T.DoubleType):
                    row.append(float(v))
                elif isinstance(f.dataType, T.BooleanType):
                    row.append(bool(v))
                elif isinstance(f.dataType, T.TimestampType):
                    row.append(pd.Timestamp(v).to_pydatetime())
                else:
                    row.append(str(v))
            typed.append(tuple(row))
        return spark.createDataFrame(typed, EVALUATION_SCHEMA)


def arm_statistics(
    df: DataFrame,
    segment_columns: list[str],
    treatment_col: str = C.CAMPAIGN_TREATMENT,
    visit_col: str = C.VISIT,
    conversion_col: str = C.CONVERSION,
    spend_col: str = C.SPEND,
) -> pd.DataFrame:
    """Sufficient statistics per arm, overall and per segment value, in one Spark pass.

    Args:
        df: Campaign log, one row per customer.
        segment_columns: Columns whose values define segments (cast to string).
        treatment_col: Arm column.
        visit_col: 0/1 visit outcome.
        conversion_col: 0/1 conversion outcome.
        spend_col: Spend (>= 0, null counts as 0 only if the caller filled it).

    Returns:
        pandas with ``arm, segment_column, segment_value, n, visits, conversions,
        spend_sum, spend_sumsq``; overall rows have ``segment_column = segment_value =
        'all'``.

    Raises:
        CampaignDataError: Missing columns or nulls in arm/outcome columns.
    """
    needed = [treatment_col, visit_col, conversion_col, spend_col, *segment_columns]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise CampaignDataError(f"campaign log lacks column(s) {missing}; has {df.columns}")
    nulls = df.select([F.sum(F.col(c).isNull().cast("long")).alias(c)
                       for c in (treatment_col, visit_col, conversion_col, spend_col)]).first().asDict()
    bad = {k: v for k, v in nulls.items() if v}
    if bad:
        raise CampaignDataError(f"campaign log has nulls in {bad}: clean or fill them before evaluating")
    # One row per customer and segmentation (overall + each column), then one groupBy.
    pairs = [F.struct(F.lit(ALL).alias("c"), F.lit(ALL).alias("v"))]
    pairs += [F.struct(F.lit(c).alias("c"), F.coalesce(F.col(c).cast("string"), F.lit("null")).alias("v"))
              for c in segment_columns]
    spend = F.col(spend_col).cast("double")
    out = (
        df.select(F.col(treatment_col).cast("string").alias("arm"),
                  F.col(visit_col).cast("long").alias("_visit"),
                  F.col(conversion_col).cast("long").alias("_conv"),
                  spend.alias("_spend"),
                  F.explode(F.array(*pairs)).alias("_seg"))
        .groupBy("arm", F.col("_seg.c").alias("segment_column"), F.col("_seg.v").alias("segment_value"))
        .agg(F.count(F.lit(1)).alias("n"), F.sum("_visit").alias("visits"), F.sum("_conv").alias("conversions"),
             F.sum("_spend").alias("spend_sum"), F.sum(F.col("_spend") * F.col("_spend")).alias("spend_sumsq"))
        .toPandas()
    )
    return out.sort_values(["segment_column", "segment_value", "arm"]).reset_index(drop=True)


def summary_metrics(result: CampaignEvaluation) -> dict[str, float]:
    """Flat MLflow metrics of the overall rows: ``<arm>.<metric>.{effect,ci_low,ci_high,p_adjusted}``."""
    out: dict[str, float] = {"srm_p_value": result.srm.p_value, "srm_mismatch": float(result.srm.mismatch),
                             "segments_skipped": float(len(result.segments_skipped))}
    for r in result.rows[result.rows["segment"] == ALL].itertuples():
        for k in ("effect", "ci_low", "ci_high", "p_adjusted"):
            v = getattr(r, k)
            if v is not None and math.isfinite(v):
                out[f"{r.arm.replace(' ', '_')}.{r.metric}.{k}"] = float(v)
    for arm, n in result.arm_counts.items():
        out[f"n.{arm.replace(' ', '_')}"] = float(n)
    return out


def _moments(row: pd.Series) -> tuple[float, float, int]:
    n = int(row["n"])
    mean = float(row["spend_sum"]) / n
    # Sample variance from sums; clip tiny negative rounding residue.
    var = max((float(row["spend_sumsq"]) - n * mean * mean) / (n - 1), 0.0) if n > 1 else 0.0
    return mean, var, n


def _rel(t: float, c: float) -> float:
    return (t - c) / c if c else float("nan")


def evaluate_campaign(
    df: DataFrame,
    params: EvaluationParams,
    *,
    evaluated_at: datetime | None = None,
    run_id: str | None = None,
    visit_col: str = C.VISIT,
    conversion_col: str = C.CONVERSION,
    spend_col: str = C.SPEND,
) -> CampaignEvaluation:
    """Evaluate each treatment arm of a randomized campaign against its control.

    Multiple-testing correction runs over two families: the overall rows (arms x tested
    metrics) and the per-segment rows (arms x tested metrics x segments); derived
    metrics inherit the adjusted p-value of the effect they transform.

    Args:
        df: Campaign log (``silver.campaign_log`` contract), one row per customer.
        params: Evaluation parameters: ``campaign`` (stored on every row),
            ``control_arm``, ``arms`` (empty: every arm but the control),
            ``segment_columns``, the cost per contact (:meth:`EvaluationParams.cost_of`),
            ``margin_rate``, ``alpha``, ``correction``, ``spend_test`` (the bootstrap serves
            the overall rows; segment rows use Welch, which is what the bootstrap converges
            to at those sizes), ``bootstrap_resamples``, ``seed``, ``expected_allocation``
            (empty: equal shares), ``srm_alpha``, ``min_segment_size``, ``treatment_column``.
        evaluated_at: Timestamp stored on the rows (default now, UTC).
        run_id: MLflow run id stored on the rows.
        visit_col: Visit outcome column.
        conversion_col: Conversion outcome column.
        spend_col: Spend column.

    Returns:
        The evaluation (rows, SRM check, counts, skipped segments).

    Raises:
        CampaignDataError: No control rows, an unknown arm, or bad columns.
    """
    p = params
    campaign, control_arm, treatment_col = p.campaign, p.control_arm, p.treatment_column
    margin_rate, alpha, correction, seed = p.margin_rate, p.alpha, p.correction, p.seed
    spend_test, bootstrap_resamples, min_segment_size = p.spend_test, p.bootstrap_resamples, p.min_segment_size
    segment_columns = list(p.segment_columns)
    costs = p.cost_of
    evaluated_at = evaluated_at or datetime.now(timezone.utc).replace(tzinfo=None)
    stats_pd = arm_statistics(df, segment_columns, treatment_col, visit_col, conversion_col, spend_col)
    overall = stats_pd[stats_pd["segment_column"] == ALL].set_index("arm")
    counts = {str(a): int(n) for a, n in overall["n"].items()}
    if control_arm not in counts:
        raise CampaignDataError(f"no rows with {treatment_col} = '{control_arm}' (the control arm); arms present: {sorted(counts)}")
    present = [a for a in counts if a != control_arm]
    arms = list(p.arms) if p.arms else sorted(present)
    unknown = [a for a in arms if a not in counts]
    if unknown:
        raise CampaignDataError(f"arm(s) {unknown} have no rows; arms present: {sorted(counts)}")
    if not arms:
        raise CampaignDataError(f"only the control arm '{control_arm}' is present: nothing to compare")
    srm = S.srm_check(counts, p.expected_allocation or None, p.srm_alpha)

    boot_values: dict[str, np.ndarray] = {}
    if spend_test == "bootstrap":
        wanted = [control_arm, *arms]
        pdf = df.select(F.col(treatment_col).cast("string").alias("arm"), F.col(spend_col).cast("double").alias("s")) \
            .where(F.col("arm").isin(wanted)).toPandas()
        boot_values = {a: g["s"].to_numpy() for a, g in pdf.groupby("arm")}

    records: list[dict] = []
    skipped: list[str] = []
    for (seg_col, seg_val), grp in stats_pd.groupby(["segment_column", "segment_value"], sort=True):
        by_arm = grp.set_index("arm")
        if control_arm not in by_arm.index:
            skipped.append(f"{seg_col}={seg_val}")
            continue
        ctrl = by_arm.loc[control_arm]
        for arm in arms:
            if arm not in by_arm.index:
                skipped.append(f"{seg_col}={seg_val}:{arm}")
                continue
            trt = by_arm.loc[arm]
            n_t, n_c = int(trt["n"]), int(ctrl["n"])
            is_all = seg_col == ALL
            if not is_all and min(n_t, n_c) < min_segment_size:
                skipped.append(f"{seg_col}={seg_val}:{arm}")
                continue
            cpc = float(costs(arm))
            cost = cpc * n_t
            base = dict(campaign=campaign, arm=arm, control_arm=control_arm,
                        segment=ALL if is_all else f"{seg_col}={seg_val}", segment_column=seg_col,
                        segment_value=seg_val, n_treated=n_t, n_control=n_c, cost_per_contact=cpc,
                        campaign_cost=cost, margin_rate=margin_rate, alpha=alpha, correction=correction,
                        srm_p_value=srm.p_value, srm_mismatch=srm.mismatch, run_id=run_id,
                        evaluated_at=evaluated_at, family="overall" if is_all else "segment")

            def add(metric: str, r: S.TestResult, **extra) -> None:
                records.append({**base, "metric": metric, "effect": r.effect, "ci_low": r.ci_low,
                                "ci_high": r.ci_high, "p_value": r.p_value, "value_treated": r.value_treated,
                                "value_control": r.value_control, "relative_lift": _rel(r.value_treated, r.value_control),
                                "test": r.test, **extra})

            visit = S.two_proportions(int(trt["visits"]), n_t, int(ctrl["visits"]), n_c, alpha)
            conv = S.two_proportions(int(trt["conversions"]), n_t, int(ctrl["conversions"]), n_c, alpha)
            if is_all and spend_test == "bootstrap":
                spend = S.bootstrap_mean_diff(boot_values[arm], boot_values[control_arm], alpha,
                                              bootstrap_resamples, seed)
            else:
                m_t, v_t, _ = _moments(trt)
                m_c, v_c, _ = _moments(ctrl)
                spend = S.welch_from_stats(m_t, v_t, n_t, m_c, v_c, n_c, alpha)
            add("visit_rate", visit)
            add("conversion_rate", conv)
            add("spend_per_customer", spend)

            nan = float("nan")
            revenue = S.TestResult(spend.effect * n_t, spend.ci_low * n_t, spend.ci_high * n_t, spend.p_value,
                                   spend.value_treated * n_t, spend.value_control * n_t, f"derived:{spend.test}")
            add("incremental_revenue", revenue, _parent="spend_per_customer")
            margin = S.TestResult(margin_rate * revenue.effect - cost, margin_rate * revenue.ci_low - cost,
                                  margin_rate * revenue.ci_high - cost, nan, nan, nan, "derived:spend_per_customer")
            add("incremental_margin", margin)
            if cost > 0:
                roi = S.TestResult(margin.effect / cost, margin.ci_low / cost, margin.ci_high / cost, nan, nan, nan,
                                   "derived:spend_per_customer")
                add("roi", roi)
                # Cost / incremental conversions: defined only for a positive effect; the
                # interval's upper end is unbounded when the conversion interval reaches 0.
                inc_conv = conv.effect * n_t
                cpic = cost / inc_conv if inc_conv > 0 else nan
                hi = cost / (conv.ci_low * n_t) if conv.ci_low > 0 else nan
                lo = cost / (conv.ci_high * n_t) if conv.ci_high > 0 else nan
                add("cost_per_incremental_conversion",
                    S.TestResult(cpic, lo, hi, nan, nan, nan, "derived:conversion_rate"))

    rows = pd.DataFrame.from_records(records)
    if rows.empty:
        raise CampaignDataError("no comparison could be made (every segment below min_segment_size?)")
    rows["p_adjusted"] = np.nan
    for fam in ("overall", "segment"):
        mask = (rows["family"] == fam) & rows["metric"].isin(TESTED_METRICS)
        if mask.any():
            rows.loc[mask, "p_adjusted"] = S.adjust_pvalues(rows.loc[mask, "p_value"].to_numpy(), correction, alpha)
    # Incremental revenue is the spend effect scaled: same hypothesis, same adjusted p.
    key = ["arm", "segment"]
    spend_adj = rows[rows["metric"] == "spend_per_customer"].set_index(key)["p_adjusted"]
    rev = rows["metric"] == "incremental_revenue"
    rows.loc[rev, "p_adjusted"] = [spend_adj.get((a, s), np.nan) for a, s in rows.loc[rev, key].itertuples(index=False)]
    rows["significant"] = [bool(p < alpha) if np.isfinite(p) else None for p in rows["p_adjusted"]]
    rows = rows.drop(columns=[c for c in ("family", "_parent") if c in rows.columns])
    order = {m: i for i, m in enumerate(TESTED_METRICS + DERIVED_METRICS)}
    rows = rows.assign(_o=rows["metric"].map(order), _s=rows["segment"] != ALL) \
        .sort_values(["_s", "segment", "arm", "_o"]).drop(columns=["_o", "_s"]).reset_index(drop=True)
    return CampaignEvaluation(rows=rows, srm=srm, arm_counts=counts, segments_skipped=sorted(set(skipped)))

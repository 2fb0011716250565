"""Gather the report's inputs: lake tables aggregated in Spark, MLflow runs of each job.

Only small frames reach the driver: histograms, per-day / per-bucket / per-bin sums,
tables that are small by construction (quality results, profiles, status, summaries).
Anything that cannot be read becomes :class:`~marketlab.report.model.Unavailable` with the
reason, so the report renders whatever exists.
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.config import Settings
from marketlab.drift.run import SEVERITY as DRIFT_SEVERITY
from marketlab.effect.params import EffectParams
from marketlab.pipeline import STAGES
from marketlab.privacy import pseudonymise
from marketlab.report.model import Unavailable
from marketlab.report.params import ReportTables
from marketlab.tables import Lake, TableNotFoundError

log = logging.getLogger(__name__)

SCORE_BINS = 200

# The stages whose MLflow runs the report reads: those that write tables (not the report itself).
JOBS = tuple(s.name for s in STAGES if s.outputs)


@dataclass
class Hist:
    """A histogram computed in Spark.

    Attributes:
        bins: ``lo, hi, count`` (edges in the value's units; log-spaced when ``log``).
        stats: ``rows, mean, p50, p90, p99, min, max`` (+ ``non_positive`` when ``log``).
        label: Axis label.
        log: Log-spaced bins (the value was strictly positive).
    """

    bins: pd.DataFrame
    stats: dict[str, float]
    label: str
    log: bool = False


@dataclass
class JobRun:
    """What the report uses of one job's latest finished MLflow run."""

    job: str
    run_id: str
    start_time: pd.Timestamp | None
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]


NA = Unavailable("not collected")


@dataclass
class ReportInputs:
    """Everything the sections render; each field is the data or :class:`Unavailable`."""

    # data quality
    quality_results: Any = NA
    audit_counts: Any = NA
    ingest_log: Any = NA
    # distributions
    order_values: Any = NA
    quantities: Any = NA
    rfm: Any = NA
    # segments
    segment_profiles: Any = NA
    # purchase intent
    intent_bins: Any = NA
    intent_confusion: Any = NA
    intent_info: Any = NA
    behaviour_importance: Any = NA
    # recommender
    recommendations: Any = NA
    # forecast
    demand_history: Any = NA
    forecasts: Any = NA
    forecast_backtest: Any = NA
    # inventory
    inventory_status: Any = NA
    inventory_plan: Any = NA
    # uplift, A/B, strategy
    uplift_buckets: Any = NA
    effect_importance: Any = NA
    evaluations: Any = NA
    strategy_summary: Any = NA
    # the shop's campaign waves: plans per wave x policy, results per wave x arm, featured products
    campaign_plans: Any = NA
    campaign_results: Any = NA
    campaign_featured: Any = NA
    # customer lifetime value: CustomerValue; calibration CSVs of the value run (name -> frame)
    customer_value: Any = NA
    drift: Any = NA
    value_calibration: Any = NA
    # MLflow: job -> JobRun | Unavailable
    runs: dict[str, Any] = field(default_factory=dict)
    # lineage
    versions: dict[str, int] = field(default_factory=dict)
    settings_info: dict[str, Any] = field(default_factory=dict)

    def metrics(self, job: str) -> dict[str, float] | Unavailable:
        """Metrics of ``job``'s latest finished run, or why there are none."""
        run = self.runs.get(job, Unavailable(f"no MLflow run of the {job} job was looked up"))
        return run if isinstance(run, Unavailable) else run.metrics


# --- helpers ---------------------------------------------------------------------------------


def _writer_of(table: str) -> str | None:
    return next((s.name for s in STAGES if table in s.outputs), None)


def _missing_table(table: str) -> Unavailable:
    stage = _writer_of(table)
    hint = f": run the '{stage}' stage first" if stage else ""
    return Unavailable(f"table {table} does not exist{hint}")


def safe(what: str, fn: Callable[[], Any]) -> Any:
    """``fn()``, or :class:`Unavailable` with the error (logged) if it raises."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - the report must render whatever exists
        log.warning("report: %s failed: %s: %s", what, type(exc).__name__, exc)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return Unavailable(f"{what} failed ({type(exc).__name__}: {msg[:300]})")


class _Tables:
    """Reads the report's tables (``names``: their catalog names), a missing one as :class:`Unavailable`."""

    def __init__(self, lake: Lake, names: ReportTables):
        self.lake = lake
        self.names = names

    def get(self, name: str) -> DataFrame | Unavailable:
        if name not in self.lake.settings.catalog:
            return Unavailable(f"table {name} is not in the catalog")
        try:
            return self.lake.read(name)
        except TableNotFoundError:
            return _missing_table(name)


def _cols(df: DataFrame, name: str, needed: list[str]) -> None:
    absent = [c for c in needed if c not in df.columns]
    if absent:
        raise ValueError(f"{name} lacks column(s) {absent}")


def _latest(df: DataFrame, col: str) -> DataFrame:
    """Rows of the latest value of ``col`` (e.g. the latest ``as_of`` cutoff)."""
    last = df.agg(F.max(col)).first()[0]
    return df.where(F.col(col) == F.lit(last)) if last is not None else df


# --- Spark aggregations -------------------------------------------------------------------------


def histogram(df: DataFrame, col: str, bins: int, label: str, log_scale: bool = False,
              discrete: bool | None = None) -> Hist | Unavailable:
    """Histogram of ``col`` in two Spark passes (bounds and stats, then bucket counts).

    Bins span the 0.1 %-99.9 % approximate quantiles (log10-spaced with ``log_scale``,
    where non-positive values are left out and counted); values beyond them are counted
    in the end bins. Integer columns (``discrete``, default: from the column type) get
    edges on half-integers, so every bin holds whole values (no empty comb teeth).
    """
    from pyspark.ml.feature import Bucketizer
    from pyspark.sql.types import IntegralType

    if discrete is None:
        discrete = isinstance(df.schema[col].dataType, IntegralType)
    v = F.col(col).cast("double")
    base = df.select(v.alias("v")).where(F.col("v").isNotNull() & ~F.isnan("v"))
    kept = F.when(F.col("v") > 0, F.col("v")) if log_scale else F.col("v")  # null: left out of the stats
    x = F.log10(kept) if log_scale else kept
    q = [0.001, 0.5, 0.9, 0.99, 0.999]
    row = base.agg(F.count(kept).alias("rows"), F.mean(kept).alias("mean"), F.min(kept).alias("min"),
                   F.max(kept).alias("max"), F.percentile_approx(x, q, 10000).alias("q"),
                   F.sum((F.col("v") <= 0).cast("long")).alias("non_positive")).first()
    non_positive = int(row["non_positive"] or 0)
    if log_scale:
        base = base.where(F.col("v") > 0)
    if not row["rows"]:
        return Unavailable(f"no {'positive ' if log_scale else ''}values of {col}")
    to_v = (lambda z: 10 ** z) if log_scale else (lambda z: z)
    to_x = (lambda z: math.log10(z)) if log_scale else (lambda z: z)
    lo, p50, p90, p99, hi = (float(z) for z in row["q"])
    vmin, vmax = float(row["min"]), float(row["max"])
    if hi <= lo:
        lo, hi = to_x(vmin), to_x(vmax)
    if hi <= lo:
        hi = lo + 1.0
    edges = [to_v(lo + i * (hi - lo) / bins) for i in range(bins + 1)]
    if discrete:
        half = sorted({math.floor(e) + 0.5 for e in edges} | {math.floor(edges[0]) - 0.5})
        edges = [e for e in half if not log_scale or e > 0] or [0.5, 1.5]
        if len(edges) < 2:
            edges = [edges[0], edges[0] + 1.0]
    splits = [-float("inf"), *edges[1:-1], float("inf")]
    if len(splits) < 3:  # one bin: Bucketizer needs at least three splits
        splits = [-float("inf"), edges[0], float("inf")]
    bucketed = Bucketizer(splits=splits, inputCol="v", outputCol="b").transform(base)
    counts = {int(r["b"]): int(r["count"]) for r in bucketed.groupBy("b").count().collect()}
    n_bins = len(splits) - 1
    if n_bins != len(edges) - 1:  # the single-bin case above: fold everything into one bin
        edges, counts = [edges[0], edges[-1] if edges[-1] > edges[0] else edges[0] + 1.0], {0: sum(counts.values())}
    frame = pd.DataFrame({"lo": edges[:-1], "hi": edges[1:], "count": [counts.get(i, 0) for i in range(len(edges) - 1)]})
    stats = {"rows": int(row["rows"]), "mean": float(row["mean"]), "p50": to_v(p50), "p90": to_v(p90),
             "p99": to_v(p99), "min": vmin, "max": vmax}
    if log_scale:
        stats["non_positive"] = int(non_positive)
    return Hist(frame, stats, label, log_scale)


def quality_results(t: _Tables) -> pd.DataFrame | Unavailable:
    """Quality results of the latest checked version of each table."""
    df = t.get(t.names.quality_results)
    if isinstance(df, Unavailable):
        return df
    latest = df.groupBy("table").agg(F.max("version").alias("version"))
    out = df.join(latest, ["table", "version"]).select(
        "table", "version", "expectation", "kind", "column", "severity", "passed", "offending", "rows", "detail",
        "checked_at")
    return out.orderBy("passed", "table", "expectation").toPandas()


def audit_counts(t: _Tables) -> pd.DataFrame | Unavailable:
    df = t.get(t.names.audit)
    if isinstance(df, Unavailable):
        return df
    return (df.groupBy("source_table", "table", "action", "reason").count().withColumnRenamed("count", "rows")
              .orderBy("source_table", "action", F.desc("rows")).toPandas())


def ingest_log(t: _Tables) -> pd.DataFrame | Unavailable:
    df = t.get(t.names.ingest_log)
    if isinstance(df, Unavailable):
        return df
    cols = [c for c in ("source", "file", "status", "records", "bronze_rows", "rejected_rows", "table",
                        "table_version", "ingested_at") if c in df.columns]
    out = df.select(*cols).orderBy(F.desc("ingested_at") if "ingested_at" in cols else F.lit(1)).limit(200).toPandas()
    if "file" in out:
        out["file"] = out["file"].map(lambda p: str(p).rstrip("/").rsplit("/", 1)[-1])
    return out


def order_distributions(t: _Tables, bins: int) -> tuple[Any, Any]:
    df = t.get(t.names.order_lines)
    if isinstance(df, Unavailable):
        return df, df
    _cols(df, t.names.order_lines, [C.INVOICE_NO, C.AMOUNT, C.QUANTITY])
    orders = df.groupBy(C.INVOICE_NO).agg(F.sum(C.AMOUNT).alias("order_value"))
    values = safe("order value histogram",
                  lambda: histogram(orders, "order_value", bins, "order value (sum of line amounts)", log_scale=True))
    quantities = safe("quantity histogram", lambda: histogram(df, C.QUANTITY, bins, "units per order line", log_scale=True))
    return values, quantities


RFM = (("recency_days", "recency (days since last order)", False), ("frequency", "frequency (orders)", True),
       ("monetary", "monetary (net revenue)", True))


def rfm_distributions(t: _Tables, bins: int) -> dict[str, Any] | Unavailable:
    df = t.get(t.names.customer_features)
    if isinstance(df, Unavailable):
        return df
    if C.AS_OF in df.columns:
        df = _latest(df, C.AS_OF)
    out = {}
    for col, label, log_scale in RFM:
        out[col] = (Unavailable(f"{t.names.customer_features} has no column {col}") if col not in df.columns
                    else safe(f"{col} histogram", lambda c=col, lb=label, ls=log_scale: histogram(df, c, bins, lb, ls)))
    return out


def segment_profiles(t: _Tables) -> pd.DataFrame | Unavailable:
    df = t.get(t.names.segment_profiles)
    if isinstance(df, Unavailable):
        return df
    if C.AS_OF in df.columns:
        df = _latest(df, C.AS_OF)
    return df.orderBy("segment").toPandas()


def purchase_intent(t: _Tables) -> tuple[Any, Any, Any]:
    """Score bins, confusion counts and model info of the test split of gold.purchase_intent."""
    df = t.get(t.names.purchase_intent)
    if isinstance(df, Unavailable):
        return df, df, df
    _cols(df, t.names.purchase_intent, [C.LABEL, "probability", "prediction"])
    df = df.where(F.col(C.LABEL).isNotNull() & F.col("probability").isNotNull())
    b = F.least(F.floor(F.col("probability") * SCORE_BINS), F.lit(SCORE_BINS - 1)).cast("int")

    def score_bins(frame: DataFrame) -> pd.DataFrame:
        return (frame.groupBy(b.alias("bin")).agg(F.count(F.lit(1)).alias("n"),
                                                  F.sum(F.col(C.LABEL).cast("long")).alias("n_pos"),
                                                  F.sum("probability").alias("sum_prob")).toPandas())

    split, bins = "all sessions", pd.DataFrame()
    if "split" in df.columns:  # the held-out test split when there is one
        bins = score_bins(df.where(F.col("split") == "test"))
        if not bins.empty:
            df, split = df.where(F.col("split") == "test"), "test split"
    if bins.empty:
        bins = score_bins(df)
    if bins.empty:
        un = Unavailable(f"{t.names.purchase_intent} has no scored rows with a label")
        return un, un, un
    bins["p_mid"] = (bins["bin"] + 0.5) / SCORE_BINS
    conf = df.groupBy(C.LABEL, "prediction").agg(F.count(F.lit(1)).alias("n")).toPandas()
    info_cols = [c for c in ("model", "threshold", "run_id", "scored_at") if c in df.columns]
    first = df.select(*info_cols).first() if info_cols else None
    info = {"split": split, **({c: first[c] for c in info_cols} if first else {})}
    return bins.sort_values("bin").reset_index(drop=True), conf, info


def recommendations(t: _Tables) -> pd.DataFrame | Unavailable:
    df = t.get(t.names.recommendations)
    if isinstance(df, Unavailable):
        return df
    return (df.groupBy("source").agg(F.countDistinct(C.CUSTOMER_KEY).alias("customers"), F.count(F.lit(1)).alias("rows"),
                                     F.countDistinct(C.ITEM_ID).alias("distinct_items"), F.max("rank").alias("max_rank"))
              .orderBy(F.desc("rows")).toPandas())


def forecast_inputs(t: _Tables, history_days: int) -> tuple[Any, Any, Any]:
    """Daily totals (per warehouse) of the forecast and of the actual demand before it, and the backtest."""
    backtest = t.get(t.names.forecast_backtest)
    backtest = backtest if isinstance(backtest, Unavailable) else backtest.orderBy("model", "cutoff").toPandas()
    fc = t.get(t.names.forecasts)
    if isinstance(fc, Unavailable):
        return Unavailable(f"no forecast horizon to align the history to ({fc.reason})"), fc, backtest
    _cols(fc, t.names.forecasts, [C.ITEM_ID, C.WAREHOUSE, C.DATE, "p50", "p90"])
    meta_cols = [c for c in ("model", "model_version", "made_at") if c in fc.columns]
    fc_daily = (fc.groupBy(C.WAREHOUSE, C.DATE).agg(F.sum("p50").alias("p50"), F.sum("p90").alias("p90"),
                                                    F.countDistinct(C.ITEM_ID).alias("items"))
                  .orderBy(C.WAREHOUSE, C.DATE).toPandas())
    if fc_daily.empty:
        empty = Unavailable(f"{t.names.forecasts} is empty")
        return empty, empty, backtest
    fc_daily.attrs["meta"] = fc.select(*meta_cols).first().asDict() if meta_cols else {}
    if "model" in fc.columns:  # forecasts mix the LSTM with fallbacks for short / sparse series
        fc_daily.attrs["series_per_model"] = {
            r["model"]: int(r["n"]) for r in fc.select("model", C.ITEM_ID, C.WAREHOUSE).distinct()
            .groupBy("model").agg(F.count(F.lit(1)).alias("n")).collect()}
    start = fc_daily[C.DATE].min()
    demand = t.get(t.names.demand_daily)
    if isinstance(demand, Unavailable):
        return demand, fc_daily, backtest
    series = fc.select(C.ITEM_ID, C.WAREHOUSE).distinct()
    lo = pd.Timestamp(start) - pd.Timedelta(days=history_days)
    hist = (demand.where((F.col(C.DATE) >= F.lit(lo.date())) & (F.col(C.DATE) < F.lit(pd.Timestamp(start).date())))
                  .join(series, [C.ITEM_ID, C.WAREHOUSE], "left_semi")
                  .groupBy(C.WAREHOUSE, C.DATE).agg(F.sum("units").alias("units"))
                  .orderBy(C.WAREHOUSE, C.DATE).toPandas())
    return hist, fc_daily, backtest


def inventory_inputs(t: _Tables) -> tuple[Any, Any]:
    status = t.get(t.names.inventory_status)
    status = status if isinstance(status, Unavailable) else status.orderBy("scenario", C.WAREHOUSE).toPandas()
    plan = t.get(t.names.inventory_plan)
    if not isinstance(plan, Unavailable):
        sums = [c for c in ("order_qty", "arrival_qty", "inventory_end", "shortage", "safety_stock", "demand_p50",
                            "actual_demand", "realized_shortage") if c in plan.columns]
        keys = [c for c in ("scenario", C.WAREHOUSE, "period", "period_start") if c in plan.columns]
        plan = (plan.groupBy(*keys).agg(*[F.sum(c).alias(c) for c in sums], F.countDistinct(C.ITEM_ID).alias("items"))
                    .orderBy(*keys).toPandas())
    return status, plan


def uplift_buckets(t: _Tables, effect: EffectParams, points: int, secret: str) -> pd.DataFrame | Unavailable:
    """Held-out customers of the uplift scores bucketed by predicted uplift, with observed outcomes.

    The scores carry only the pseudonymised ``customer_key``; it is rebuilt from the effect
    stage's campaign log with ``secret`` (the one the effect job used) to attach treatment
    and outcomes.
    """
    scores = t.get(t.names.uplift_scores)
    if isinstance(scores, Unavailable):
        return scores
    p = effect
    campaign = t.get(p.input_table)
    if isinstance(campaign, Unavailable):
        return campaign
    _cols(scores, t.names.uplift_scores, [C.CUSTOMER_KEY, "action", "outcome", "uplift"])
    outcomes = [o for o in p.outcomes if o in campaign.columns]
    if not outcomes:
        return Unavailable(f"{p.input_table} has none of the outcomes {list(p.outcomes)}")
    camp = pseudonymise(campaign, secret).select(C.CUSTOMER_KEY, F.col(C.CAMPAIGN_TREATMENT).alias("_arm"), *outcomes)
    sc = scores
    holdout = "is_holdout" in scores.columns and scores.where(F.col("is_holdout")).limit(1).count() > 0
    if holdout:
        sc = scores.where(F.col("is_holdout"))
    joined = sc.join(camp, C.CUSTOMER_KEY).where((F.col("_arm") == F.col("action")) | (F.col("_arm") == F.lit(p.control)))
    treated = (F.col("_arm") == F.col("action")).cast("double")
    y = F.coalesce(*[F.when(F.col("outcome") == o, F.col(o).cast("double")) for o in outcomes], F.lit(None))
    w = Window.partitionBy("action", "outcome").orderBy(F.desc("uplift"))
    bucket = F.least(F.floor(F.percent_rank().over(w) * points), F.lit(points - 1)).cast("int")
    out = (joined.select("action", "outcome", treated.alias("t"), y.alias("y"), bucket.alias("bucket"))
                 .where(F.col("y").isNotNull())
                 .groupBy("action", "outcome", "bucket")
                 .agg(F.sum("t").alias("n_t"), F.sum(1 - F.col("t")).alias("n_c"),
                      F.sum(F.col("y") * F.col("t")).alias("y_t"), F.sum(F.col("y") * (1 - F.col("t"))).alias("y_c"))
                 .orderBy("action", "outcome", "bucket").toPandas())
    if out.empty:
        return Unavailable("no uplift score matched a campaign customer: is the pseudonym secret "
                           "the one the effect job used?")
    out.attrs["holdout_only"] = holdout
    return out


def qini_buckets(lake: Lake, settings: Settings, secret: str, points: int | None = None) -> pd.DataFrame | Unavailable:
    """:func:`uplift_buckets` of a lake (for notebooks): the data of the Qini curves, or why not.

    Args:
        lake: The lake.
        settings: Loaded settings (report and effect params).
        secret: Pseudonymisation secret (:func:`marketlab.privacy.resolve_secret`).
        points: Buckets per curve (default ``jobs.report.qini_points``).
    """
    p = settings.jobs.report
    return safe(f"bucketing {p.tables.uplift_scores}",
                lambda: uplift_buckets(_Tables(lake, p.tables), settings.jobs.effect, points or p.qini_points, secret))


def evaluations(t: _Tables) -> pd.DataFrame | Unavailable:
    df = t.get(t.names.campaign_evaluations)
    if isinstance(df, Unavailable):
        return df
    _cols(df, t.names.campaign_evaluations, ["arm", "metric", "segment", "effect", "ci_low", "ci_high"])
    n_segments = df.where(F.col("segment") != "all").count()
    out = df.where(F.col("segment") == "all").orderBy("campaign", "arm", "metric").toPandas()
    out.attrs["segment_rows"] = int(n_segments)
    return out


def strategy_summary(t: _Tables) -> pd.DataFrame | Unavailable:
    df = t.get(t.names.strategy_summary)
    if isinstance(df, Unavailable):
        return df
    return df.orderBy("segment", "action").toPandas()


def drift(t: _Tables) -> pd.DataFrame | Unavailable:
    """The latest drift run's rows, worst verdict and largest PSI first."""
    df = t.get(t.names.drift)
    if isinstance(df, Unavailable):
        return df
    _cols(df, t.names.drift, ["checked_at", "table", "column", "slice", "psi", "status", "accepted"])
    out = _latest(df, "checked_at").toPandas()
    rank = {s: i for i, s in enumerate(DRIFT_SEVERITY)}
    out = out.assign(_rank=out["status"].map(rank)).sort_values(["_rank", "psi"], ascending=[True, False])
    return out.drop(columns="_rank").reset_index(drop=True)


def campaign_inputs(t: _Tables, per_segment: int) -> tuple[Any, Any, Any]:
    """The campaign waves: ``(plans, results, featured)``.

    ``featured``: per segment, the ``per_segment`` products featured most often in the
    e-mails of the latest wave that were sent (not held out), with their description
    (counted in Spark; the waves table has one row per customer and wave).
    """
    plans, results, waves = (t.get(n) for n in (t.names.campaign_plans, t.names.campaign_results,
                                                  t.names.campaign_waves))
    plans_pd = plans if isinstance(plans, Unavailable) else plans.orderBy("wave", "policy").toPandas()
    results_pd = results if isinstance(results, Unavailable) else results.orderBy("wave", "arm").toPandas()
    if isinstance(waves, Unavailable):
        return plans_pd, results_pd, waves
    _cols(waves, t.names.campaign_waves, ["wave", C.CUSTOMER_KEY, "featured_items", "holdout"])
    last = waves.agg(F.max("wave")).first()[0]
    if last is None:
        return plans_pd, results_pd, Unavailable(f"{t.names.campaign_waves} is empty")
    sent = (waves.where((F.col("wave") == last) & ~F.col("holdout") & (F.length("featured_items") > 0))
            .select(C.CUSTOMER_KEY, F.explode(F.split("featured_items", ";")).alias(C.ITEM_ID)))
    segs = t.get(t.names.segments)
    if isinstance(segs, Unavailable):
        sent = sent.withColumn("segment_name", F.lit("all customers"))
    else:
        sent = (sent.join(segs.select(C.CUSTOMER_KEY, F.col("segment_name").cast("string")), C.CUSTOMER_KEY, "left")
                .fillna({"segment_name": "not segmented"}))
    counts = sent.groupBy("segment_name", C.ITEM_ID).agg(F.count(F.lit(1)).alias("emails"))
    w = Window.partitionBy("segment_name").orderBy(F.desc("emails"), C.ITEM_ID)
    top = counts.withColumn("rank", F.row_number().over(w)).where(F.col("rank") <= per_segment)
    items = t.get(t.names.item_features)
    if not isinstance(items, Unavailable):
        top = top.join(items.select(C.ITEM_ID, C.DESCRIPTION), C.ITEM_ID, "left")
    featured = top.orderBy("segment_name", "rank").toPandas()
    featured.attrs["wave"] = int(last)
    return plans_pd, results_pd, featured


@dataclass
class CustomerValue:
    """The latest slice of gold.customer_value, aggregated in Spark.

    Attributes:
        as_of: Scoring date of the slice.
        customers: Rows (customers) of the slice.
        clv: Histogram of CLV (log-spaced; CLV <= 0 counted in its stats).
        p_alive: Histogram of P(alive).
        totals: Sum of CLV and of expected spend, mean P(alive), at-risk customers and their CLV.
        tiers: One row per value tier (conf tiers, highest first): customers, CLV and at-risk counts.
        at_risk: The highest-CLV at-risk customers (pseudonymous ``customer_key`` only), at most
            ``max_rows``.
        rule: The tier and at-risk rule applied (tiers, quantiles, thresholds).
    """

    as_of: Any
    customers: int
    clv: Any
    p_alive: Any
    totals: dict[str, float]
    tiers: pd.DataFrame
    at_risk: pd.DataFrame
    rule: dict[str, Any]


#: Columns of the at-risk list (no shop customer id exists in gold.customer_value; none is added).
AT_RISK_COLUMNS = ("customer_key", "value_tier", "clv", "p_alive", "expected_purchases", "expected_spend",
                   "frequency", "recency", "T", "monetary")


def customer_value(t: _Tables, value: Any, bins: int, max_rows: int) -> CustomerValue | Unavailable:
    """CLV distribution, tier mix and the top at-risk customers of the latest value slice.

    Tiers and the at-risk flag are recomputed on the slice with the value stage's conf
    (``value``: :class:`marketlab.value.params.ValueParams`) through
    :func:`marketlab.value.value_tiers` and :func:`marketlab.value.at_risk`.
    """
    from marketlab.value import at_risk, value_tiers
    from marketlab.value.summary import CLV, EXP_SPEND, P_ALIVE
    from marketlab.value.tiers import AT_RISK, TIER

    df = t.get(t.names.customer_value)
    if isinstance(df, Unavailable):
        return df
    _cols(df, t.names.customer_value, [C.CUSTOMER_KEY, C.AS_OF, CLV, P_ALIVE])
    sl = _latest(df, C.AS_OF).cache()
    try:
        n = sl.count()
        if not n:
            return Unavailable(f"{t.names.customer_value} is empty")
        as_of = sl.select(F.max(C.AS_OF)).first()[0]
        scored = at_risk(value_tiers(sl.drop(TIER, AT_RISK), value.tiers, value.tier_quantiles), value.at_risk_min_clv_quantile,
                         value.at_risk_max_p_alive).cache()
        spend = F.sum(EXP_SPEND) if EXP_SPEND in sl.columns else F.lit(None)
        row = scored.agg(F.sum(CLV).alias("clv"), spend.alias("expected_spend"), F.mean(P_ALIVE).alias("mean_p_alive"),
                         F.sum(F.col(AT_RISK).cast("long")).alias("at_risk"),
                         F.sum(F.when(F.col(AT_RISK), F.col(CLV))).alias("clv_at_risk")).first()
        totals = {k: float(row[k]) if row[k] is not None else float("nan") for k in row.asDict()}
        tiers = (scored.groupBy(TIER).agg(F.count(F.lit(1)).alias("customers"), F.min(CLV).alias("min_clv"),
                                          F.mean(CLV).alias("mean_clv"), F.sum(CLV).alias("total_clv"),
                                          F.mean(P_ALIVE).alias("mean_p_alive"),
                                          F.sum(F.col(AT_RISK).cast("long")).alias("at_risk")).toPandas())
        order = {name: i for i, name in enumerate(value.tiers)}
        tiers = tiers.sort_values(TIER, key=lambda c: c.map(order)).reset_index(drop=True)
        tiers.insert(2, "share", tiers["customers"] / n)
        tiers.insert(6, "share_of_clv", tiers["total_clv"] / tiers["total_clv"].sum())
        cols = [c for c in AT_RISK_COLUMNS if c in scored.columns]
        top = (scored.where(F.col(AT_RISK)).orderBy(F.desc(CLV), C.CUSTOMER_KEY).limit(max_rows).select(*cols).toPandas())
        clv_hist = safe("CLV histogram", lambda: histogram(sl, CLV, bins, "CLV (discounted margin)", log_scale=True))
        alive_hist = safe("P(alive) histogram", lambda: histogram(sl, P_ALIVE, bins, "P(alive)"))
        scored.unpersist()
    finally:
        sl.unpersist()
    rule = {"tiers": list(value.tiers), "tier_quantiles": list(value.tier_quantiles),
            "at_risk_min_clv_quantile": value.at_risk_min_clv_quantile, "at_risk_max_p_alive": value.at_risk_max_p_alive}
    return CustomerValue(as_of, int(n), clv_hist, alive_hist, totals, tiers, top, rule)


# --- MLflow --------------------------------------------------------------------------------------


class MlflowRuns:
    """The latest finished run per job (tag ``marketlab.job``) in the settings' experiment."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.uri = settings.tracking_uri()
        self.problem: str | None = None
        self.client = None
        self.experiment_id = None
        if self.uri.startswith("sqlite:///") and not Path(self.uri[len("sqlite:///"):]).is_file():
            self.problem = f"no MLflow store at {self.uri}"
            return
        from mlflow.tracking import MlflowClient

        try:
            self.client = MlflowClient(tracking_uri=self.uri)
            exp = self.client.get_experiment_by_name(settings.mlflow.experiment)
        except Exception as exc:  # noqa: BLE001
            self.problem = f"MLflow store {self.uri} cannot be read ({type(exc).__name__})"
            return
        if exp is None:
            self.problem = f"no MLflow experiment '{settings.mlflow.experiment}' in {self.uri}"
        else:
            self.experiment_id = exp.experiment_id

    def latest(self, job: str) -> JobRun | Unavailable:
        if self.problem:
            return Unavailable(self.problem)
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`marketlab.job` = '{job}' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"], max_results=1)
        if not runs:
            return Unavailable(f"no finished MLflow run of the {job} job in experiment '{self.settings.mlflow.experiment}'")
        r = runs[0]
        start = pd.Timestamp(r.info.start_time, unit="ms") if r.info.start_time else None
        return JobRun(job, r.info.run_id, start, dict(r.data.metrics), dict(r.data.params), dict(r.data.tags))

    def artifact_csvs(self, run: JobRun | Unavailable, folder: str, prefix: str = "") -> dict[str, pd.DataFrame] | Unavailable:
        """CSV artifacts under ``folder`` whose name starts with ``prefix`` (name -> frame)."""
        if isinstance(run, Unavailable):
            return run
        files = [a.path for a in self.client.list_artifacts(run.run_id, folder)
                 if not a.is_dir and a.path.endswith(".csv") and a.path.rsplit("/", 1)[-1].startswith(prefix)]
        if not files:
            return Unavailable(f"the {run.job} run {run.run_id[:8]} logged no {folder}/{prefix}*.csv")
        out = {}
        with tempfile.TemporaryDirectory() as tmp:
            for path in files:
                local = self.client.download_artifacts(run.run_id, path, tmp)
                out[path.rsplit("/", 1)[-1]] = pd.read_csv(local)
        return out


# --- all inputs ------------------------------------------------------------------------------------


def collect_inputs(lake: Lake, settings: Settings, secret: str) -> ReportInputs:
    """Read everything the report shows; never raises for a missing or broken input.

    Args:
        lake: The lake (reads are recorded for lineage).
        settings: Loaded settings (report params, the MLflow store, the stages' params shown).
        secret: Pseudonymisation secret of ``customer_key`` (joins uplift scores to outcomes).

    The lake aggregations are independent small Spark jobs: they are submitted from
    ``jobs.report.threads`` driver threads at once (Spark schedules concurrent jobs of
    one session), which mostly saves Delta-log and job-start latency.
    """
    from concurrent.futures import ThreadPoolExecutor

    p = settings.jobs.report
    t = _Tables(lake, p.tables)
    inp = ReportInputs()
    n = p.tables
    work = {
        "quality": (f"reading {n.quality_results}", lambda: quality_results(t)),
        "audit": (f"counting {n.audit}", lambda: audit_counts(t)),
        "ingest": (f"reading {n.ingest_log}", lambda: ingest_log(t)),
        "orders": ("order distributions", lambda: order_distributions(t, p.histogram_bins)),
        "rfm": ("RFM distributions", lambda: rfm_distributions(t, p.histogram_bins)),
        "profiles": (f"reading {n.segment_profiles}", lambda: segment_profiles(t)),
        "intent": (f"aggregating {n.purchase_intent}", lambda: purchase_intent(t)),
        "recs": (f"summarising {n.recommendations}", lambda: recommendations(t)),
        "forecast": (f"aggregating {n.forecasts}", lambda: forecast_inputs(t, p.history_days)),
        "inventory": ("aggregating the inventory plan", lambda: inventory_inputs(t)),
        "uplift": (f"bucketing {n.uplift_scores}",
                   lambda: uplift_buckets(t, settings.jobs.effect, p.qini_points, secret)),
        "evaluations": (f"reading {n.campaign_evaluations}", lambda: evaluations(t)),
        "strategy": (f"reading {n.strategy_summary}", lambda: strategy_summary(t)),
        "campaign": (f"reading {n.campaign_plans}, {n.campaign_results} and {n.campaign_waves}",
                     lambda: campaign_inputs(t, p.featured_per_segment)),
        "drift": (f"reading {n.drift}", lambda: drift(t)),
        "value": (f"aggregating {n.customer_value}",
                  lambda: customer_value(t, settings.jobs.value, p.histogram_bins, p.max_table_rows)),
    }
    if p.threads > 1:
        with ThreadPoolExecutor(max_workers=p.threads, thread_name_prefix="report") as pool:
            futures = {k: pool.submit(safe, what, fn) for k, (what, fn) in work.items()}
            got = {k: f.result() for k, f in futures.items()}
    else:
        got = {k: safe(what, fn) for k, (what, fn) in work.items()}

    def split(value: Any, n: int) -> tuple:
        return value if isinstance(value, tuple) else (value,) * n

    inp.quality_results, inp.audit_counts, inp.ingest_log = got["quality"], got["audit"], got["ingest"]
    inp.order_values, inp.quantities = split(got["orders"], 2)
    inp.rfm, inp.segment_profiles = got["rfm"], got["profiles"]
    inp.intent_bins, inp.intent_confusion, inp.intent_info = split(got["intent"], 3)
    inp.recommendations = got["recs"]
    inp.demand_history, inp.forecasts, inp.forecast_backtest = split(got["forecast"], 3)
    inp.inventory_status, inp.inventory_plan = split(got["inventory"], 2)
    inp.uplift_buckets, inp.evaluations, inp.strategy_summary = got["uplift"], got["evaluations"], got["strategy"]
    inp.customer_value, inp.drift = got["value"], got["drift"]
    if isinstance(inp.drift, pd.DataFrame):
        inp.drift.attrs.update(warn_psi=settings.jobs.drift.warn_psi, block_psi=settings.jobs.drift.block_psi)
    inp.campaign_plans, inp.campaign_results, inp.campaign_featured = split(got["campaign"], 3)

    ml = safe("opening the MLflow store", lambda: MlflowRuns(settings))
    for job in JOBS:
        inp.runs[job] = ml if isinstance(ml, Unavailable) else safe(f"looking up the {job} run", lambda j=job: ml.latest(j))
    if not isinstance(ml, Unavailable):
        imp = safe("downloading the behaviour feature importance",
                   lambda: ml.artifact_csvs(inp.runs["behaviour"], "behaviour", "feature_importance"))
        inp.behaviour_importance = imp if isinstance(imp, Unavailable) else next(iter(imp.values()))
        inp.effect_importance = safe("downloading the effect feature importances",
                                     lambda: ml.artifact_csvs(inp.runs["effect"], "effect", "importance_"))
        inp.value_calibration = safe("downloading the value calibration tables",
                                     lambda: ml.artifact_csvs(inp.runs["value"], "value", "calibration_"))
    else:
        inp.behaviour_importance = inp.effect_importance = inp.value_calibration = ml
    inp.versions = dict(sorted(lake.reads.items()))
    inp.settings_info = {"lake_root": settings.resolve(settings.lake_root), "tracking_uri": settings.tracking_uri(),
                         "experiment": settings.mlflow.experiment, "env": settings.env,
                         "effect_outcomes": list(settings.jobs.effect.outcomes),
                         "effect_control": settings.jobs.effect.control,
                         "recommend_k": settings.jobs.recommend.k, "top_features": p.top_features,
                         "max_table_rows": p.max_table_rows, "value_tiers": list(settings.jobs.value.tiers)}
    return inp

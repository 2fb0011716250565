"""A small, synthetic but schema-correct lake + MLflow store for the report and notebook tests.

Every table the report and the notebooks read is written with the exact schema the jobs
produce (DDL copied from a real pipeline lake); columns a test does not care about are
null of the right type. One finished MLflow run per job carries metrics named as the
jobs log them, plus the CSV artifacts the report downloads.

The lake is built once per test session (cached here, shared by tests/report and
tests/notebooks).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from marketlab.drift.run import SCHEMA as DRIFT_SCHEMA
from marketlab.privacy import pseudonymise

SCHEMAS = {
    "quality.results": "table string, version bigint, expectation string, kind string, column string, severity string, passed boolean, offending bigint, rows bigint, observed double, detail string, checked_at timestamp, run_id string",
    "silver._audit": "table string, source_table string, action string, reason string, detail string, _source_file string, _line bigint, _batch_id string, record string",
    "ops.ingest_log": "source string, file string, sha256 string, size_bytes bigint, modified timestamp, batch_id string, status string, records bigint, bronze_rows bigint, rejected_rows bigint, rejected_by_reason map<string,bigint>, table string, table_version bigint, message string, ingested_at timestamp",
    "silver.order_lines": "invoice_no string, stock_code string, description string, quantity int, invoice_ts timestamp, date date, unit_price double, amount double, customer_id bigint, country string, warehouse string, is_outlier boolean, year int, month int, dow int, hour int, _source_file string, _line bigint, _batch_id string",
    "silver.campaign_log": "customer_id bigint, treatment string, recency int, history double, history_bin int, history_segment string, mens int, womens int, zip_code string, newbie int, channel string, visit int, conversion int, spend double, _source_file string, _line bigint, _batch_id string",
    "gold.customer_features": "customer_key string, as_of date, recency_days int, frequency bigint, monetary double, r_score int, f_score int, m_score int, tenure_days int, gross_revenue double, units bigint, n_items bigint, avg_basket_value double, avg_basket_units double, avg_basket_items double, returned_units bigint, return_rate double, orders_7d bigint, orders_30d bigint, orders_90d bigint, revenue_7d double, revenue_30d double, revenue_90d double, units_7d bigint, units_30d bigint, units_90d bigint, rfm_code string, rfm_segment string, _built_from string",
    "gold.segments": "customer_key string, segment int, segment_name string, as_of date, value_tier string, clv double, p_alive double, at_risk boolean",
    "gold.segment_profiles": "segment int, n_customers bigint, mean_recency_days double, mean_frequency double, mean_monetary double, mean_tenure_days double, mean_avg_basket_value double, mean_return_rate double, mean_r_score double, mean_f_score double, mean_m_score double, median_monetary double, total_monetary double, share double, segment_name string, k int, silhouette double, as_of date, n_valued bigint, mean_clv double, median_clv double, total_clv double, mean_p_alive double, n_at_risk bigint, value_tier_mix map<string,bigint>, value_as_of date",
    "gold.customer_value": "customer_key string, as_of date, frequency double, recency double, T double, monetary double, p_alive double, expected_purchases double, expected_order_value double, expected_spend double, clv double, value_tier string, at_risk boolean, horizon_days int",
    "gold.purchase_intent": "session_id bigint, split string, label int, probability double, prediction int, threshold double, model string, run_id string, scored_at timestamp",
    "gold.demand_daily": "item_id string, warehouse string, date date, units double, sold_units double, returned_units double, dow int, week int, month int, is_weekend boolean, _built_from string",
    "gold.recommendations": "customer_key string, item_id string, rank int, score double, source string",
    "gold.forecasts": "item_id string, warehouse string, date date, p50 double, p90 double, model string, model_version string, made_at timestamp, flags array<string>",
    "gold.forecast_backtest": "model string, cutoff date, n_series bigint, n_series_mase bigint, mase double, wape double, bias double, pinball_p50 double, pinball_p90 double, pinball double, coverage_p90 double, first_cutoff date, made_at timestamp",
    "gold.inventory_plan": "scenario string, warehouse string, item_id string, period int, order_qty double, arrival_qty double, inventory_end double, shortage double, safety_shortfall double, demand_p50 double, safety_stock double, actual_demand double, realized_shortage double, period_start date, forecast_source string",
    "gold.inventory_status": "scenario string, warehouse string, status string, message string, objective double, solve_seconds double, iterations int, n_items int, n_vars int, n_constraints int, slack_capacity double, slack_budget double, slack_fill_rate double, cost_ordering double, cost_holding double, cost_shortage double, cost_safety double, planned_fill_rate double, demand_total double, actual_total double, realized_fill_rate double, realized_cycle_service double, realized_cost double, forecast_source string",
    "gold.uplift_scores": "customer_key string, action string, outcome string, uplift double, effect_low double, effect_high double, mu_control double, learner string, model_version string, is_holdout boolean, scored_at timestamp",
    "gold.campaign_evaluations": "campaign string, arm string, control_arm string, metric string, segment string, segment_column string, segment_value string, effect double, ci_low double, ci_high double, p_value double, p_adjusted double, significant boolean, value_treated double, value_control double, relative_lift double, test string, n_treated bigint, n_control bigint, cost_per_contact double, campaign_cost double, margin_rate double, alpha double, correction string, srm_p_value double, srm_mismatch boolean, run_id string, evaluated_at timestamp",
    "gold.item_features": "item_id string, description string, n_orders bigint, n_customers bigint, units bigint, revenue double, price_mean double, price_median double, first_sold date, last_sold date, returned_units bigint, return_rate double",
    "gold.campaign_waves": "campaign_id string, wave int, design string, customer_key string, arm string, greedy string, holdout boolean, propensity double, p_none double, holdout_fraction double, featured_items string, coupon_level double, sent_at timestamp, predicted_gain double",
    "gold.campaign_results": "campaign_id string, wave bigint, arm string, design string, n_treated bigint, n_control bigint, measured double, measured_low double, measured_high double, p_value double, order_lift double, status string, predicted double, predicted_low double, predicted_high double, covered boolean",
    "gold.campaign_plans": "wave bigint, campaign_id string, policy string, predicted double, predicted_low double, predicted_high double, roi double, roi_low double, roi_high double, true double",
    "gold.strategy_summary": "segment string, action string, customers bigint, expected_profit double, mean_predicted_uplift double, segment_customers bigint, share_of_segment double, segment_cap double, outcome string",
    "ops.drift": DRIFT_SCHEMA,
}

#: The pseudonym secret of this lake's keys; the report tests pass it to the report.
SECRET = "report-tests-pseudonym-secret"
ARMS = ("Mens E-Mail", "Womens E-Mail")
CONTROL = "No E-Mail"
OUTCOMES = ("visit", "conversion", "spend")
WAREHOUSES = ("EU", "UK")
AS_OF = dt.date(2011, 12, 10)
NOW = dt.datetime(2011, 12, 10, 6, 0)


@dataclass
class SmallLake:
    """Where the small lake is and how to point settings / notebooks at it."""

    root: Path
    lake_root: Path
    tracking_uri: str
    artifact_root: Path
    settings: object
    run_ids: dict[str, str]

    @property
    def overrides(self) -> list[str]:
        """``--set`` overrides selecting this lake and MLflow store (over conf/test.yaml)."""
        return [f"lake_root={self.lake_root}", f"mlflow.tracking_uri={self.tracking_uri}",
                f"mlflow.artifact_root={self.artifact_root}"]


def to_spark(spark: SparkSession, pdf: pd.DataFrame, ddl: str) -> DataFrame:
    """``pdf`` as a DataFrame with exactly the columns and types of ``ddl`` (absent columns null)."""
    schema = spark.createDataFrame([], ddl).schema
    pdf = pdf[[c for c in pdf.columns if pdf[c].notna().any()]]  # all-null columns: typed nulls below
    df = spark.createDataFrame(pdf)
    cols = []
    for f in schema.fields:
        c = F.col(f.name) if f.name in pdf.columns else F.lit(None)
        cols.append(c.cast(f.dataType).alias(f.name))
    return df.select(*cols)


# --- table contents ----------------------------------------------------------------------------


def quality_results() -> pd.DataFrame:
    rows = []
    for table, n in (("silver.order_lines", 400), ("silver.sessions", 600), ("silver.campaign_log", 3000)):
        for exp, kind in (("not_empty", "min_rows"), ("schema", "schema"), ("id_not_null", "not_null")):
            rows.append((table, 1, exp, kind, None, "blocking", True, 0, n, None, "ok"))
    rows.append(("silver.order_lines", 1, "fresh", "freshness", "date", "warning", False, 1, 400, 5000.0,
                 "latest date 2011-12-09, 5000 days before today (max 35)"))
    # an older version of the same table: the report shows the latest one only
    rows.append(("silver.order_lines", 0, "not_empty", "min_rows", None, "blocking", False, 1, 0, None, "0 rows"))
    cols = ["table", "version", "expectation", "kind", "column", "severity", "passed", "offending", "rows", "observed",
            "detail"]
    out = pd.DataFrame(rows, columns=cols)
    out["checked_at"] = pd.Timestamp(NOW)
    return out


def audit() -> pd.DataFrame:
    rows = ([("silver.order_lines", "bronze.orders", "excluded", "duplicate")] * 5
            + [("silver.order_lines", "bronze.orders", "excluded", "non_positive_price")] * 3
            + [("silver.order_lines", "bronze.orders", "altered", "description_trimmed")] * 7
            + [("silver.sessions", "bronze.sessions", "excluded", "all_missing")] * 2)
    return pd.DataFrame(rows, columns=["table", "source_table", "action", "reason"]).assign(detail="synthetic")


def ingest_log() -> pd.DataFrame:
    return pd.DataFrame({
        "source": ["online_retail", "online_shoppers", "hillstrom"],
        "file": ["file:/data/raw/online_retail.csv.gz", "file:/data/raw/shoppers.csv", "file:/data/raw/hillstrom.csv"],
        "status": ["ok", "ok", "ok"], "records": [408, 602, 3000], "bronze_rows": [408, 602, 3000],
        "rejected_rows": [0, 0, 0], "table": ["bronze.orders", "bronze.sessions", "bronze.campaign_log"],
        "table_version": [0, 0, 0], "ingested_at": [pd.Timestamp(NOW)] * 3})


def order_lines(rng: np.random.Generator) -> pd.DataFrame:
    n = 400
    invoice = rng.integers(0, 80, n)
    q = np.maximum(1, np.round(rng.lognormal(1.5, 1.0, n))).astype(int)
    price = np.round(rng.lognormal(0.8, 0.6, n), 2)
    ts = pd.Timestamp("2011-10-01") + pd.to_timedelta(rng.integers(0, 70 * 24, n), unit="h")
    return pd.DataFrame({"invoice_no": [f"5{i:05d}" for i in invoice], "stock_code": [f"2{i:04d}" for i in rng.integers(0, 12, n)],
                         "description": "THING", "quantity": q, "invoice_ts": ts, "date": ts.date, "unit_price": price,
                         "amount": q * price, "customer_id": 12000 + invoice, "country": "United Kingdom",
                         "warehouse": rng.choice(WAREHOUSES, n), "is_outlier": False})


def customer_features(rng: np.random.Generator) -> pd.DataFrame:
    n = 150
    keys = [f"c{i:04d}" for i in range(n)]
    parts = []
    for as_of, shift in ((AS_OF, 0), (dt.date(2011, 11, 1), 30)):
        parts.append(pd.DataFrame({
            "customer_key": keys, "as_of": as_of, "recency_days": rng.integers(1, 300, n) + shift,
            "frequency": rng.geometric(0.3, n), "monetary": np.round(rng.lognormal(6, 1.2, n), 2)}))
    out = pd.concat(parts, ignore_index=True)
    out.loc[0, "monetary"] = -5.0  # a net-negative customer (left out of the log-scale histogram)
    return out


SEGMENT_NAMES = ("bottom_value_lapsed", "mid_value_recent", "top_value_frequent")


def segments(cf: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    latest = cf[cf["as_of"] == AS_OF].copy()
    latest["segment"] = pd.qcut(latest["monetary"].rank(method="first"), 3, labels=False).astype(int)
    latest["segment_name"] = latest["segment"].map(dict(enumerate(SEGMENT_NAMES)))
    seg = latest[["customer_key", "segment", "segment_name", "as_of"]]
    g = latest.groupby(["segment", "segment_name"], as_index=False).agg(
        n_customers=("customer_key", "size"), mean_recency_days=("recency_days", "mean"),
        mean_frequency=("frequency", "mean"), mean_monetary=("monetary", "mean"),
        median_monetary=("monetary", "median"), total_monetary=("monetary", "sum"))
    g["share"] = g["n_customers"] / g["n_customers"].sum()
    g["k"], g["silhouette"], g["as_of"] = 3, 0.52, AS_OF
    return seg, g


#: Customers of gold.customer_value: the 150 segmented ones and 10 more without features.
VALUE_CUSTOMERS = 160
VALUE_EARLIER = dt.date(2011, 11, 1)  # an older slice: the report and the segments use the latest


def customer_value(rng: np.random.Generator) -> pd.DataFrame:
    """Two as_of slices of scored customers (CLV lognormal, P(alive) uniform), columns as the value stage writes."""
    parts = []
    for as_of in (AS_OF, VALUE_EARLIER):
        n = VALUE_CUSTOMERS
        freq = rng.geometric(0.4, n) - 1.0
        spend = np.round(rng.lognormal(5.5, 1.1, n), 2)
        parts.append(pd.DataFrame({
            "customer_key": [f"c{i:04d}" for i in range(n)], "as_of": as_of, "frequency": freq,
            "recency": np.minimum(freq * 20, 300.0), "T": 330.0, "monetary": np.where(freq > 0, spend / 3, 0.0),
            "p_alive": np.round(rng.uniform(0.02, 1.0, n), 4), "expected_purchases": spend / 300,
            "expected_order_value": 300.0, "expected_spend": spend, "clv": np.round(spend * 0.3, 4),
            "value_tier": "stale", "at_risk": False, "horizon_days": 365}))
    return pd.concat(parts, ignore_index=True)


def value_calibration(h: int) -> pd.DataFrame:
    """The value job's calibration_<h>d.csv: mean holdout purchases by calibration frequency."""
    f = np.arange(8)
    return pd.DataFrame({"frequency": f, "customers": [900, 400, 250, 150, 90, 60, 40, 120],
                         "actual": 0.1 * h / 90 * (f + 0.5), "model": 0.1 * h / 90 * (f + 0.45),
                         "historical": 0.1 * h / 90 * (f + 0.9)})


def purchase_intent(rng: np.random.Generator) -> pd.DataFrame:
    n = 600
    label = (rng.random(n) < 0.2).astype(int)
    prob = np.clip(0.15 + 0.45 * label + rng.normal(0, 0.18, n), 0.001, 0.999)
    return pd.DataFrame({"session_id": np.arange(n), "split": np.where(np.arange(n) % 2 == 0, "test", "train"),
                         "label": label, "probability": prob, "prediction": (prob >= 0.35).astype(int),
                         "threshold": 0.35, "model": "gbt", "run_id": "synthetic", "scored_at": pd.Timestamp(NOW)})


def recommendations() -> pd.DataFrame:
    rows = [(f"c{u:04d}", f"2{(u + r) % 12:04d}", r + 1, 1.0 / (r + 1), "als" if u < 40 else "segment_popular")
            for u in range(50) for r in range(5)]
    return pd.DataFrame(rows, columns=["customer_key", "item_id", "rank", "score", "source"])


def demand_and_forecasts(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    days = pd.date_range(AS_OF - dt.timedelta(days=90), AS_OF - dt.timedelta(days=1), freq="D")
    rows, fc = [], []
    for w in WAREHOUSES:
        for i in range(6):
            lam = 3 + 2 * i + (5 if w == "UK" else 0)
            units = rng.poisson(lam * (1 + 0.3 * (days.dayofweek < 5)))
            rows.append(pd.DataFrame({"item_id": f"2{i:04d}", "warehouse": w, "date": days.date, "units": units.astype(float),
                                      "sold_units": units.astype(float), "returned_units": 0.0, "dow": days.dayofweek + 1}))
            if i < 4:  # two items are not forecast (too short): the history must leave them out too
                h = pd.date_range(AS_OF, periods=14, freq="D")
                p50 = lam * (1 + 0.3 * (h.dayofweek < 5))
                fc.append(pd.DataFrame({"item_id": f"2{i:04d}", "warehouse": w, "date": h.date, "p50": p50,
                                        "p90": p50 * 1.5, "model": "lstm", "model_version": "marketlab-demand-lstm/1",
                                        "made_at": pd.Timestamp(NOW)}))
    bt = []
    cutoffs = [dt.date(2011, 11, 1), dt.date(2011, 11, 15), dt.date(2011, 11, 29)]
    for model, mase in (("lstm", 0.82), ("seasonal_naive", 1.0), ("ets", 0.9)):
        for c in [*cutoffs, None]:
            m = mase * (1.0 if c is None else 1 + 0.05 * cutoffs.index(c))
            bt.append({"model": model, "cutoff": c, "n_series": 8, "n_series_mase": 8, "mase": m, "wape": m / 2,
                       "bias": 0.01, "pinball_p50": m, "pinball_p90": m / 2, "pinball": m * 0.75,
                       "coverage_p90": 0.86 if model == "lstm" else 0.8, "first_cutoff": cutoffs[0], "made_at": pd.Timestamp(NOW)})
    return pd.concat(rows, ignore_index=True), pd.concat(fc, ignore_index=True), pd.DataFrame(bt)


def inventory(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for scenario in ("plan", "backtest"):
        for w in WAREHOUSES:
            for i in range(5):
                for period in range(8):
                    d = float(rng.poisson(40))
                    rows.append({"scenario": scenario, "warehouse": w, "item_id": f"2{i:04d}", "period": period,
                                 "order_qty": float(rng.poisson(40)), "arrival_qty": 40.0, "inventory_end": float(rng.poisson(20)),
                                 "shortage": float(rng.random() < 0.1) * 5, "demand_p50": d, "safety_stock": 10.0,
                                 "actual_demand": d + rng.normal(0, 5) if scenario == "backtest" else None,
                                 "realized_shortage": float(rng.random() < 0.2) * 3 if scenario == "backtest" else None,
                                 "period_start": AS_OF + dt.timedelta(days=7 * period),
                                 "forecast_source": "forecasts" if scenario == "plan" else "seasonal_naive"})
    status = []
    for scenario in ("plan", "backtest"):
        for j, w in enumerate(WAREHOUSES):
            status.append({"scenario": scenario, "warehouse": w, "status": "optimal" if j == 0 else "infeasible_relaxed",
                           "message": "", "objective": 1000.0 + j, "solve_seconds": 0.1, "iterations": 12, "n_items": 5,
                           "n_vars": 200, "n_constraints": 150, "slack_capacity": 0.0, "slack_budget": 0.0,
                           "slack_fill_rate": 0.0 if j == 0 else 3.5, "cost_ordering": 400.0, "cost_holding": 250.0 + 50 * j,
                           "cost_shortage": 120.0, "cost_safety": 30.0, "planned_fill_rate": 0.95, "demand_total": 1600.0,
                           "actual_total": 1580.0 if scenario == "backtest" else None,
                           "realized_fill_rate": 0.93 if scenario == "backtest" else None,
                           "realized_cycle_service": 0.8 if scenario == "backtest" else None,
                           "realized_cost": 900.0 if scenario == "backtest" else None,
                           "forecast_source": "forecasts" if scenario == "plan" else "seasonal_naive"})
    return pd.DataFrame(rows), pd.DataFrame(status)


def campaign(rng: np.random.Generator) -> pd.DataFrame:
    n = 3000
    arm = rng.choice([CONTROL, *ARMS], n)
    recency = rng.integers(1, 13, n)
    lift = np.where(arm == CONTROL, 0.0, 0.12 * (recency <= 4))  # treatment works on recent customers
    visit = (rng.random(n) < 0.1 + lift).astype(int)
    conversion = (visit & (rng.random(n) < 0.2)).astype(int)
    spend = np.where(conversion == 1, np.round(rng.gamma(2.0, 60.0, n), 2), 0.0)
    return pd.DataFrame({"customer_id": np.arange(n) + 1, "treatment": arm, "recency": recency,
                         "history": np.round(rng.gamma(2.0, 120.0, n), 2), "history_bin": rng.integers(1, 8, n),
                         "mens": rng.integers(0, 2, n), "womens": rng.integers(0, 2, n),
                         "zip_code": rng.choice(["Urban", "Suburban", "Rural"], n), "newbie": rng.integers(0, 2, n),
                         "channel": rng.choice(["Web", "Phone", "Multichannel"], n), "visit": visit,
                         "conversion": conversion, "spend": spend})


def item_features() -> pd.DataFrame:
    """The 12 items of the order lines, with descriptions (the campaign section shows them)."""
    return pd.DataFrame({"item_id": [f"2{i:04d}" for i in range(12)],
                         "description": [f"THING NUMBER {i}" for i in range(12)], "n_orders": 10, "units": 50})


#: Shop campaign: 3 waves over the 150 segmented customers; arms and the policies of gold.campaign_plans.
CAMPAIGN_ARMS = ("no_contact", "email", "email_coupon_5")
CAMPAIGN_WAVES = 3


def campaign_waves(rng: np.random.Generator) -> pd.DataFrame:
    """One row per customer x wave; wave 0 randomized, later ones targeted with a 10 % holdout of e-mails."""
    rows = []
    for w in range(CAMPAIGN_WAVES):
        for i in range(150):
            arm = CAMPAIGN_ARMS[rng.integers(0, 3)] if w == 0 else ("email" if i % 3 else "no_contact")
            email = arm != "no_contact"
            # Featured items follow the customer's segment (keys c0000.. are segmented by monetary).
            items = ";".join(f"2{(i % 4 + r) % 12:04d}" for r in range(3)) if email else ""
            rows.append({"campaign_id": f"shop_w{w}", "wave": w, "design": "randomized" if w == 0 else "targeted",
                         "customer_key": f"c{i:04d}", "arm": arm, "greedy": arm,
                         "holdout": bool(w > 0 and email and i % 10 == 1), "propensity": 1 / 3 if w == 0 else 0.9,
                         "featured_items": items, "coupon_level": 0.05 if arm == "email_coupon_5" else 0.0,
                         "sent_at": pd.Timestamp("2011-11-01 09:00") + pd.Timedelta(days=30 * w),
                         "predicted_gain": 0.0 if w == 0 else float(rng.normal(1.0, 0.5))})
    return pd.DataFrame(rows)


def campaign_results() -> pd.DataFrame:
    """Per wave x e-mail arm: measured effect (Welch CI) and, for targeted waves, the predicted interval."""
    rows = []
    for w in range(CAMPAIGN_WAVES):
        for j, arm in enumerate(CAMPAIGN_ARMS[1:]):
            measured = 0.8 - 0.6 * j + 0.1 * w
            pred = (math.nan,) * 3 if w == 0 else (0.7 - 0.5 * j, -1.0, 2.5 - j)
            rows.append({"campaign_id": f"shop_w{w}", "wave": w, "arm": arm,
                         "design": "randomized" if w == 0 else "targeted", "n_treated": 45, "n_control": 50,
                         "measured": measured, "measured_low": measured - 1.5, "measured_high": measured + 1.5,
                         "p_value": 0.4, "order_lift": 0.02, "status": "ok", "predicted": pred[0],
                         "predicted_low": pred[1], "predicted_high": pred[2],
                         "covered": bool(w > 0 and pred[1] <= measured <= pred[2])})
    return pd.DataFrame(rows)


#: True profit per policy and wave (simulator): strategy improving towards the oracle.
CAMPAIGN_TRUE = {"strategy": (40.0, 70.0), "oracle": (120.0, 120.0), "random": (-30.0, -25.0),
                 "all_email": (60.0, 60.0), "all_no_contact": (0.0, 0.0)}


def campaign_plans() -> pd.DataFrame:
    rows = []
    for w in range(1, CAMPAIGN_WAVES):
        for policy, true in CAMPAIGN_TRUE.items():
            pred = (true[w - 1] + 5, true[w - 1] - 40, true[w - 1] + 50) if policy in ("strategy", "all_email") \
                else ((0.0, 0.0, 0.0) if policy == "all_no_contact" else (math.nan,) * 3)
            rows.append({"wave": w, "campaign_id": f"shop_w{w}", "policy": policy, "predicted": pred[0],
                         "predicted_low": pred[1], "predicted_high": pred[2], "roi": 2.0, "roi_low": 1.0,
                         "roi_high": 3.0, "true": true[w - 1]})
    return pd.DataFrame(rows)


def uplift_scores(spark: SparkSession, camp: DataFrame, rng: np.random.Generator) -> DataFrame:
    """Scores that rank recent customers first (the synthetic campaign's true effect)."""
    base = camp.select("customer_id", "recency").toPandas()
    rows = []
    for action in ARMS:
        for outcome in OUTCOMES:
            scale = {"visit": 0.12, "conversion": 0.024, "spend": 3.0}[outcome]
            u = scale * ((base["recency"] <= 4).astype(float) + rng.normal(0, 0.3, len(base)))
            rows.append(pd.DataFrame({"customer_id": base["customer_id"], "action": action, "outcome": outcome,
                                      "uplift": u, "effect_low": u - scale, "effect_high": u + scale, "mu_control": 0.1,
                                      "learner": "t_learner", "model_version": "1",
                                      "is_holdout": base["customer_id"] % 2 == 0}))
    pdf = pd.concat(rows, ignore_index=True)
    df = pseudonymise(spark.createDataFrame(pdf), SECRET)  # the secret the report tests pass
    return df.withColumn("scored_at", F.current_timestamp())


def evaluations() -> pd.DataFrame:
    rows = []
    for arm, k in zip(ARMS, (1.0, 0.5)):
        for metric, eff, lo, hi in (("visit_rate", 0.04 * k, 0.02 * k, 0.06 * k), ("conversion_rate", 0.004 * k, -0.001, 0.009),
                                    ("spend_per_customer", 0.5 * k, -0.2, 1.2)):
            for segment in ("all", "channel=Web"):
                rows.append({"campaign": "hillstrom_2008", "arm": arm, "control_arm": CONTROL, "metric": metric,
                             "segment": segment, "effect": eff, "ci_low": lo, "ci_high": hi, "p_value": 0.01 if lo > 0 else 0.2,
                             "p_adjusted": 0.02 if lo > 0 else 0.3, "significant": lo > 0, "value_treated": 0.1 + eff,
                             "value_control": 0.1, "relative_lift": eff / 0.1, "test": "welch", "n_treated": 1000,
                             "n_control": 1000, "alpha": 0.05, "correction": "holm", "srm_p_value": 0.61,
                             "srm_mismatch": False, "run_id": "synthetic", "evaluated_at": pd.Timestamp(NOW)})
    return pd.DataFrame(rows)


def strategy_summary() -> pd.DataFrame:
    rows = []
    for seg, n in zip(SEGMENT_NAMES, (1000, 1200, 800)):
        for action, share in ((CONTROL, 0.5), (ARMS[0], 0.3), (ARMS[1], 0.2)):
            rows.append({"segment": seg, "action": action, "customers": int(n * share), "expected_profit": 100 * share,
                         "mean_predicted_uplift": 0.0 if action == CONTROL else 0.02, "segment_customers": n,
                         "share_of_segment": share, "segment_cap": np.nan, "outcome": "spend"})
    return pd.DataFrame(rows)


# --- MLflow runs ------------------------------------------------------------------------------------


def job_metrics() -> dict[str, dict[str, float]]:
    """Metric dicts per job, named as the jobs log them."""
    rec = {}
    for model, base in (("als", 0.05), ("blend", 0.055), ("popular", 0.02), ("itemcf", 0.03)):
        for k in (1, 5, 10, 20):
            for metric, f in (("map", 1.0), ("ndcg", 1.5), ("precision", 0.8), ("recall", 0.3 * k ** 0.5)):
                rec[f"temporal.{model}.{metric}_at_{k}"] = base * f
        rec[f"hide.{model}.map_at_10"] = base * 2
        rec[f"hide.{model}.auc"] = 0.8 + base
    rec.update({"val_map_at_10": 0.051, "tuning.default_value": 0.045, "temporal.cold_test_users": 12.0})
    behaviour = {}
    for model, auc in (("gbt", 0.9), ("lr", 0.86), ("majority", 0.5), ("page_values_rule", 0.84)):
        behaviour.update({f"test.{model}.roc_auc": auc, f"test.{model}.pr_auc": auc - 0.3, f"test.{model}.accuracy": 0.85,
                          f"test.{model}.precision": 0.5, f"test.{model}.recall": 0.7, f"test.{model}.f1": 0.58,
                          f"test.{model}.threshold": 0.35})
    effect = {}
    for arm in ("mens_e_mail", "womens_e_mail"):
        for outcome in OUTCOMES:
            for learner, q in (("t_learner", 0.05), ("x_learner", 0.04), ("class_transformation", 0.03)):
                effect.update({f"{arm}.{outcome}.{learner}.qini_auc": q, f"{arm}.{outcome}.{learner}.qini_auc_lo": q - 0.02,
                               f"{arm}.{outcome}.{learner}.qini_auc_hi": q + 0.02,
                               f"{arm}.{outcome}.{learner}.uplift_at_30": q * 2})
    value = {"n_customers": 160.0, "fit.r": 0.8, "fit.alpha": 60.0, "fit.a": 0.1, "fit.b": 2.5}
    for h in (90, 180):
        for target, scale in (("count", 1.0), ("spend", 300.0)):
            for pred, k in (("model", 1.0), ("historical", 1.2), ("population", 1.4)):
                for metric, base in (("mae", 0.6), ("rmse", 1.1), ("aggregate_error", 0.05)):
                    v = base * k * scale * (h / 90) if metric != "aggregate_error" else base * k
                    value[f"holdout.h{h}.{target}.{metric}.{pred}"] = v
                    value[f"holdout.h{h}.{target}.{metric}.{pred}_lo"] = v * 0.9
                    value[f"holdout.h{h}.{target}.{metric}.{pred}_hi"] = v * 1.1
            value[f"holdout.h{h}.{target}.rmse_gain_vs_historical"] = 1 - 1 / 1.2
            value[f"holdout.h{h}.{target}.rmse_gain_vs_historical_lo"] = 0.1
            value[f"holdout.h{h}.{target}.rmse_gain_vs_historical_hi"] = 0.25
    strategy = {"budget.contacts": 1500.0, "budget.share": 0.5, "budget.expected_profit": 310.0}
    for policy, v in (("strategy", 0.9), ("bandit_greedy", 0.7), ("all_Mens_E_Mail", 0.6), ("none", 0.0)):
        for est in ("dr", "ipw"):
            strategy.update({f"ope.{policy}.{est}.value": v, f"ope.{policy}.{est}.lo": v - 0.2, f"ope.{policy}.{est}.hi": v + 0.2,
                             f"ope.{policy}.{est}.diff": v - 0.6, f"ope.{policy}.{est}.diff_lo": v - 0.8,
                             f"ope.{policy}.{est}.diff_hi": v - 0.4})
    return {
        "ingest": {"files_ok": 3.0},
        "clean": {"orders.bronze_rows": 408.0, "orders.rows.order_lines": 400.0, "orders.excluded.duplicate": 5.0,
                  "orders.excluded.non_positive_price": 3.0, "orders.altered.description_trimmed": 7.0,
                  "sessions.bronze_rows": 602.0, "sessions.rows.sessions": 600.0, "sessions.excluded.all_missing": 2.0},
        "segments": {"k": 3.0, "silhouette": 0.52, "silhouette.k3": 0.52, "silhouette.k4": 0.47, "silhouette.k5": 0.41},
        "behaviour": behaviour,
        "recommend": rec,
        "forecast": {"bt.lstm.mase": 0.82, "bt.seasonal_naive.mase": 1.0, "bt.mase_gain_vs_seasonal_naive": 0.18,
                     "bt.mase_gain_vs_seasonal_naive.ci_low": 0.1, "bt.mase_gain_vs_seasonal_naive.ci_high": 0.25},
        "inventory": {"total_cost": 1660.0, "planned_fill_rate": 0.95, "n_warehouses": 2.0, "status_optimal": 1.0,
                      "status_infeasible_relaxed": 1.0, "backtest_realized_fill_rate": 0.93},
        "effect": effect,
        "evaluation": {"srm_p_value": 0.61},
        "strategy": strategy,
        "value": value,
    }


def log_runs(tracking_uri: str, artifact_root: Path, experiment: str) -> dict[str, str]:
    """One FINISHED run per job (tag ``marketlab.job``), with the artifacts the report reads."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp else client.create_experiment(experiment, artifact_location=artifact_root.as_uri())
    ids = {}
    t0 = int(dt.datetime(2026, 1, 1).timestamp() * 1000)
    for i, (job, metrics) in enumerate(job_metrics().items()):
        run = client.create_run(exp_id, start_time=t0 + i * 1000, tags={"marketlab.job": job, "mlflow.runName": job})
        rid = run.info.run_id
        client.log_batch(rid, metrics=[Metric(k, float(v), t0, 0) for k, v in metrics.items()])
        if job == "behaviour":
            client.log_text(rid, pd.DataFrame({"feature": ["page_values", "exit_rates", "month=Nov", "bounce_rates"],
                                               "importance": [0.5, 0.2, 0.2, 0.1]}).to_csv(index=False),
                            "behaviour/feature_importance.csv")
            client.set_tag(rid, "selected_model", "gbt")
        if job == "effect":
            params = []
            for arm in ("mens_e_mail", "womens_e_mail"):
                for outcome in OUTCOMES:
                    params.append(Param(f"selected.{arm}.{outcome}", "t_learner"))
                    imp = pd.DataFrame({"model": "mu1", "feature": ["recency", "history", "channel", "zip_code"],
                                        "importance": [0.6, 0.2, 0.1, 0.1], "learner": "t_learner"})
                    client.log_text(rid, imp.to_csv(index=False), f"effect/importance_{arm}.{outcome}.csv")
            client.log_batch(rid, params=params)
        if job == "value":
            for h in (90, 180):
                client.log_text(rid, value_calibration(h).to_csv(index=False), f"value/calibration_{h}d.csv")
        client.set_terminated(rid, "FINISHED", end_time=t0 + i * 1000 + 500)
        ids[job] = rid
    return ids


# --- build -----------------------------------------------------------------------------------------

_CACHE: dict[str, SmallLake] = {}


def drift() -> pd.DataFrame:
    """ops.drift of one run: a blocked monetary shift, a warned null share, a stable column."""
    at = pd.Timestamp("2011-12-10 06:00")
    rows = [("gold.customer_features", "monetary", "all", 0.41, 0.21, 1e-9, "block", 0.0, 0.0),
            ("gold.customer_features", "recency_days", "all", 0.02, 0.03, 0.4, "ok", 0.0, 0.0),
            ("gold.purchase_intent", "probability", "all", 0.04, 0.05, 0.2, "warn", 0.0, 0.09),
            ("gold.uplift_scores", "uplift", "action=Mens E-Mail,outcome=spend", 0.13, 0.08, 0.01, "warn", 0.0, 0.0)]
    return pd.DataFrame([{"checked_at": at, "run_id": "r-drift", "table": t, "column": c, "slice": sl,
                          "ref_version": 0, "cur_version": 1, "n_ref": 150, "n_cur": 150, "null_rate_ref": nr,
                          "null_rate_cur": nc, "psi": psi, "ks_stat": ks, "ks_pvalue": p, "status": st,
                          "accepted": True} for t, c, sl, psi, ks, p, st, nr, nc in rows])


def build_small_lake(spark: SparkSession, root: Path, seed: int = 7) -> SmallLake:
    """Write every table and MLflow run (idempotent per ``root`` within one process)."""
    key = str(root)
    if key in _CACHE:
        return _CACHE[key]
    from marketlab.config import load_settings
    from marketlab.tables import Lake

    project = Path(__file__).resolve().parents[2]
    lake_root, artifacts = root / "lake", root / "artifacts"
    tracking = f"sqlite:///{root / 'mlflow.db'}"
    settings = load_settings(project / "conf" / "test.yaml", [f"lake_root={lake_root}", f"mlflow.tracking_uri={tracking}",
                                                             f"mlflow.artifact_root={artifacts}"])
    lake = Lake(spark, settings)
    rng = np.random.default_rng(seed)
    cf = customer_features(rng)
    seg, profiles = segments(cf)
    demand, fc, bt = demand_and_forecasts(rng)
    plan, status = inventory(rng)
    camp_pd = campaign(rng)
    values = customer_value(rng)
    frames = {
        "quality.results": quality_results(), "silver._audit": audit(), "ops.ingest_log": ingest_log(),
        "silver.order_lines": order_lines(rng), "gold.customer_features": cf, "gold.customer_value": values,
        "gold.purchase_intent": purchase_intent(rng),
        "gold.recommendations": recommendations(), "gold.demand_daily": demand, "gold.forecasts": fc,
        "gold.forecast_backtest": bt, "gold.inventory_plan": plan, "gold.inventory_status": status,
        "silver.campaign_log": camp_pd, "gold.campaign_evaluations": evaluations(),
        "gold.strategy_summary": strategy_summary(), "gold.item_features": item_features(),
        "gold.campaign_waves": campaign_waves(rng), "gold.campaign_results": campaign_results(),
        "gold.campaign_plans": campaign_plans(), "ops.drift": drift(),
    }
    # independent Delta commits: submitted from a few threads (mostly commit latency, not compute)
    from concurrent.futures import ThreadPoolExecutor

    dfs = {name: to_spark(spark, pdf, SCHEMAS[name]) for name, pdf in frames.items()}
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda item: lake.write(item[1], item[0]), dfs.items()))
    # Version 1 of the gated silver tables is the one quality_results() passes (reads are gated).
    for name in ("silver.order_lines", "silver.campaign_log"):
        lake.write(dfs[name], name)
    # the segments' value columns as the segments stage computes them (latest value slice, conf tiers)
    from marketlab.segments.value import VALUE_AS_OF, attach_value, value_profiles, value_slice

    vp = settings.jobs.value
    latest, value_as_of = value_slice(lake.read("gold.customer_value"), AS_OF)
    base = spark.createDataFrame(seg).select("customer_key", F.col("segment").cast("int"), "segment_name",
                                             F.col("as_of").cast("date"))
    valued = attach_value(base, latest, vp.tiers, vp.tier_quantiles, vp.at_risk_min_clv_quantile, vp.at_risk_max_p_alive)
    lake.write(to_spark_df(valued, SCHEMAS["gold.segments"]), "gold.segments")
    prof = to_spark(spark, profiles, SCHEMAS["gold.segment_profiles"].split(", n_valued")[0])
    prof = prof.join(value_profiles(valued), "segment", "left").withColumn(VALUE_AS_OF, F.lit(str(value_as_of)).cast("date"))
    lake.write(to_spark_df(prof, SCHEMAS["gold.segment_profiles"]), "gold.segment_profiles")
    camp = lake.read("silver.campaign_log")
    lake.write(to_spark_df(uplift_scores(spark, camp, rng), SCHEMAS["gold.uplift_scores"]), "gold.uplift_scores")
    ids = log_runs(settings.tracking_uri(), artifacts, settings.mlflow.experiment)
    out = SmallLake(root, lake_root, tracking, artifacts, settings, ids)
    _CACHE[key] = out
    return out


def to_spark_df(df: DataFrame, ddl: str) -> DataFrame:
    """Cast a DataFrame to the columns and types of ``ddl`` (absent columns null)."""
    schema = df.sparkSession.createDataFrame([], ddl).schema
    return df.select(*[(F.col(f.name) if f.name in df.columns else F.lit(None)).cast(f.dataType).alias(f.name)
                       for f in schema.fields])


def shared_small_lake(spark: SparkSession, tmp_path_factory) -> SmallLake:
    """The session's one small lake (tests/report and tests/notebooks share it)."""
    if "shared" not in _CACHE:
        _CACHE["shared"] = build_small_lake(spark, tmp_path_factory.mktemp("small_lake"))
    return _CACHE["shared"]

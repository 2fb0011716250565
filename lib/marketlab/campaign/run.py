"""The campaign stage's entry point :func:`run`: plan, send, ingest, measure — wave after wave.

Wave 0 is a randomized test (every action, uniform); waves 1..N are targeted: the
response models (bagged ridge T-learners on every wave so far, inverse-propensity
weighted) predict each customer's incremental profit per action, the best action under
the contact budget is chosen, featured products come from the recommender fitted as of
the wave's history cutoff minus what the inventory plan vetoes, a share ``explore`` is
randomised (logged propensity) and a random ``holdout_fraction`` is not sent. Before a
wave is sent its predicted effect (with intervals) is recorded; after its responses are
ingested, the measured effect against its holdout. With ``simulate`` the campaign
simulator plays the e-mail platform; without it the stage measures the waves whose
responses have arrived and plans the next one.
"""

from __future__ import annotations

import datetime as dt
import glob
import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.campaign import features as feat
from marketlab.campaign import model as rm
from marketlab.campaign.measure import measure, predicted_cells
from marketlab.campaign.params import CampaignParams
from marketlab.campaign.plan import PREDICTION_COLS, assigned_prediction, best_action, totals, uniform, vetoed_items
from marketlab.campaign.responses import check
from marketlab.errors import BadInputError, ConfError
from marketlab.ingest.params import IngestParams
from marketlab.ingest.run import run as ingest
from marketlab.recommend.params import RecommendParams
from marketlab.simulator import CampaignSimulator, SimulatorParams
from marketlab.tables import Lake
from marketlab.value.params import ValueParams
from marketlab.value.stage import delta_clv
from marketlab.value.summary import DELTA_CLV

log = logging.getLogger(__name__)


@dataclass
class WaveSummary:
    """One wave: what was predicted before sending and measured after.

    Attributes:
        wave / campaign_id / design: Which wave.
        customers / contacts / vetoed_items: Sizes.
        predicted: Policy -> (mean, low, high) predicted incremental profit of the plan.
        roi: Policy -> (mean, low, high) predicted ROI.
        true: Policy -> true expected incremental profit (simulation only).
        true_total: True expected total profit (not incremental) of the wave as sent: each
            customer's arm, no contact for the holdout (simulation only). Under the
            simulator's dynamics earlier waves move it, so its sum over waves is the
            long-run figure a one-wave A/B cannot give.
        ingest: Response accounting.
        export: Folder of the wave export.
        ridge_effect: Interaction penalty the cross-validation chose (targeted waves).
    """

    wave: int
    campaign_id: str
    design: str
    customers: int
    contacts: int
    vetoed_items: int
    predicted: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    roi: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    true: dict[str, float] = field(default_factory=dict)
    true_total: float = math.nan
    ingest: dict[str, int] = field(default_factory=dict)
    export: str = ""
    ridge_effect: float = math.nan

    @property
    def gap_closed(self) -> float:
        """Share of the gap between the best single action and the oracle the strategy closes (simulation)."""
        if not self.true:
            return math.nan
        best = max(v for k, v in self.true.items() if k.startswith("all_"))
        gap = self.true["oracle"] - best
        return (self.true["strategy"] - best) / gap if gap > 0 else math.nan


@dataclass
class CampaignResult:
    """Outcome of one campaign run.

    Attributes:
        waves: One summary per wave.
        results: Predicted vs measured per wave x arm (gold.campaign_results).
        plans: Per wave x policy: predicted (and true) totals (gold.campaign_plans).
        versions: Catalog name -> Delta version written.
    """

    waves: list[WaveSummary]
    results: pd.DataFrame
    plans: pd.DataFrame
    versions: dict[str, int] = field(default_factory=dict)

    @property
    def coverage(self) -> float:
        """Share of measured (wave x arm) cells whose predicted interval covers the measured effect."""
        r = self.results.dropna(subset=["measured", "predicted"])
        return float(r["covered"].mean()) if len(r) else math.nan


def simulator_params(p: CampaignParams, sim: SimulatorParams, wave_date: dt.date) -> SimulatorParams:
    """The simulator playing this campaign: the campaign's actions and economics (stated once, here)."""
    return sim.model_copy(update={
        "actions": list(p.actions),
        "margin": p.margin, "contact_cost": p.contact_cost, "featured_k": p.featured_k, "wave_date": wave_date,
        "dynamics": sim.dynamics.model_copy(update={"gap_days": p.gap_days})})


def _training(p: CampaignParams, customers: DataFrame, responses: DataFrame) -> DataFrame:
    waves = [r[0] for r in responses.select("wave").distinct().collect()]
    hist = feat.history_features(responses, waves)
    x = responses.select("wave", C.CUSTOMER_KEY, "treatment", "ordered", "revenue", "profit", "p_realised")
    x = x.join(customers.drop(C.CUSTOMER_ID), C.CUSTOMER_KEY)
    if hist is not None:
        x = x.join(hist, [C.CUSTOMER_KEY, "wave"], "left").fillna(0.0, subset=feat.HISTORY)
    # Inverse propensity of the treatment really given, truncated (a few explored rows must
    # not carry a whole model).
    return x.select("*", F.least(F.lit(1.0) / F.col("p_realised"), F.lit(p.max_weight)).alias("weight"),
                    F.xxhash64(C.CUSTOMER_KEY, "wave").alias("_h"))


def _plan_wave(p: CampaignParams, t: int, scored: DataFrame, cands: DataFrame, inventory: DataFrame | None,
               n_customers: int, sent_at: dt.datetime) -> tuple[DataFrame, int]:
    """Greedy action, veto, featured items, randomisation: the wave's rows (keys, not ids yet)."""
    acts = [p.no_contact, *p.email_actions]
    nc = p.no_contact
    n_act = len(acts)
    cid = p.campaign_id(t)
    max_contacts = int(math.floor(p.max_contacts_fraction * n_customers)) if p.max_contacts_fraction < 1 else None
    s = best_action(scored, acts, nc, max_contacts)
    # The wave's extra demand per featured item (top candidates of the customers to e-mail).
    dp = F.lit(0.0)
    for a in p.email_actions:
        dp = F.when(F.col("greedy") == a, F.col(f"dp_{a}")).otherwise(dp)
    top = cands.where(F.col("rank") <= p.featured_k)
    demand = (s.where(F.col("greedy") != nc).select(C.CUSTOMER_KEY, dp.alias("_dp")).join(top, C.CUSTOMER_KEY)
              .groupBy(C.ITEM_ID).agg((F.sum(F.greatest("_dp", F.lit(0.0))) * p.lift_units / p.featured_k)
                                      .alias("lift_units")))
    vetoed, n_vetoed = vetoed_items(inventory, demand, p.unplanned_items, cands)
    items = feat.featured(cands, vetoed, p.featured_k)
    u_exp, u_arm, u_hold = (uniform(C.CUSTOMER_KEY, F.lit(cid), F.lit(p.seed), F.lit(k)) for k in (1, 2, 3))
    random_arm = F.element_at(F.array(*[F.lit(a) for a in acts]), (F.floor(u_arm * n_act) + 1).cast("int"))
    if t == 0:
        design, arm = "randomized", random_arm
        prop, p_none, hold, h = F.lit(1.0 / n_act), F.lit(1.0 / n_act), F.lit(False), 0.0
    else:
        design, h = "targeted", p.holdout_fraction
        explore = u_exp < F.lit(p.explore)
        arm = F.when(explore, random_arm).otherwise(F.col("greedy"))
        prop = F.lit(p.explore / n_act) + F.when(F.col("arm") == F.col("greedy"), F.lit(1 - p.explore)).otherwise(0.0)
        p_none = F.lit(p.explore / n_act) + F.when(F.col("greedy") == nc, F.lit(1 - p.explore)).otherwise(0.0)
        hold = (u_hold < F.lit(h)) & (F.col("arm") != nc)
    coupon = F.create_map(*[x for a in p.actions for x in (F.lit(a.name), F.lit(float(a.coupon)))])
    w = (s.join(items, C.CUSTOMER_KEY, "left").withColumn("arm", arm)
         .withColumn("propensity", prop).withColumn("p_none", p_none).withColumn("holdout", hold)
         .withColumn("featured_items", F.when(F.col("arm") != nc, F.coalesce("featured_items", F.lit(""))).otherwise(""))
         .withColumn("coupon_level", coupon[F.col("arm")])
         .withColumn("campaign_id", F.lit(cid)).withColumn("wave", F.lit(t)).withColumn("design", F.lit(design))
         .withColumn("holdout_fraction", F.lit(float(h))).withColumn("sent_at", F.lit(sent_at).cast("timestamp")))
    return w, n_vetoed


def planned_rows(wave: DataFrame, p: CampaignParams, predicted: bool) -> DataFrame:
    """The rows of ``gold.campaign_waves`` of a planned wave (keys; the export carries the ids).

    Args:
        wave: The wave of :func:`_plan_wave`.
        p: Campaign parameters (actions, interval).
        predicted: Whether response models scored the wave (False: the randomized first one).
    """
    acts = [p.no_contact, *p.email_actions]
    return assigned_prediction(wave, acts, p.interval, predicted=predicted).select(
        "campaign_id", "wave", "design", C.CUSTOMER_KEY, "arm", "greedy", "holdout", "propensity", "p_none",
        "holdout_fraction", "featured_items", "coupon_level", "sent_at", F.col("gain").alias("predicted_gain"),
        *PREDICTION_COLS)


def _interval(x: np.ndarray, level: float) -> tuple[float, float, float]:
    q = (1 - level) / 2
    return float(x.mean()), float(np.quantile(x, q)), float(np.quantile(x, 1 - q))


def run(lake: Lake, p: CampaignParams, rec: RecommendParams, sim: SimulatorParams, secret: str,
        checkpoint_dir: str | None = None, value: ValueParams | None = None) -> CampaignResult:
    """Play the campaign's waves (simulation) or plan the next one (production).

    Args:
        lake: The lake.
        p: Campaign parameters (table names included).
        rec: Recommender parameters (the featured products' model).
        sim: Simulator parameters (ground truth of the demo; used only with ``p.simulate``).
        secret: Pseudonymisation secret.
        checkpoint_dir: ALS checkpoint folder.
        value: Value parameters (the ΔCLV model; needed when ``p.clv_weight`` > 0).

    Raises:
        ConfError: The responses source is not configured, or ``clv_weight`` > 0 without ``value``.
        BadInputError: No customers before the wave date, or a response file that fails.
    """
    spec = lake.settings.sources.get(p.responses_source)
    if spec is None:
        raise ConfError(f"jobs.campaign.responses_source: no source '{p.responses_source}' in conf sources")
    sales, returns = lake.read(p.order_lines_table), lake.read(p.returns_table)
    wave_date = p.wave_date or sim.wave_date
    customers = feat.customer_frame(sales, returns, wave_date, secret)
    if p.clv_weight > 0:
        if value is None:
            raise ConfError("jobs.campaign.clv_weight > 0 needs the value parameters (jobs.value)")
        # Fitted on the history before the wave date, with the campaign's margin.
        dclv, _ = delta_clv(sales, wave_date, value.model_copy(update={"margin": p.margin}))
        customers = (customers.join(dclv.select(C.CUSTOMER_ID, DELTA_CLV), C.CUSTOMER_ID, "left")
                     .fillna(0.0, subset=[DELTA_CLV]))
    customers = customers.cache()
    n = customers.count()
    if n == 0:
        raise BadInputError(f"campaign: no customer has an order before the wave date {wave_date}")
    items = lake.read(p.item_features_table)
    cands = feat.candidates(sales, returns, items, wave_date, secret, rec, p.candidates, p.featured_bought,
                            checkpoint_dir, p.featured_source).cache()
    inventory = lake.read(p.inventory_plan_table) if lake.exists(p.inventory_plan_table) else None
    acts = [p.no_contact, *p.email_actions]  # the reference arm first
    simulator = None
    if p.simulate:
        lines = sales.select(C.CUSTOMER_ID, C.INVOICE_NO, C.INVOICE_TS, C.STOCK_CODE, C.QUANTITY, C.UNIT_PRICE).toPandas()
        simulator = CampaignSimulator.from_order_lines(lines, simulator_params(p, sim, wave_date))
        state = simulator.initial_state()
        n_waves = p.waves
        first = 0
    else:
        n_waves = 1
        first = 0
        if lake.exists(p.waves_table):
            first = int(lake.read(p.waves_table).agg(F.max("wave")).first()[0]) + 1
    resp_dir = lake.settings.source_path(spec)
    summaries: list[WaveSummary] = []
    results: list[pd.DataFrame] = []
    plans: list[dict] = []
    responses = None
    if not p.simulate and lake.exists(p.waves_table):
        # Production: the platform's response exports of the waves sent so far, measured.
        responses, counts = _ingest_and_check(lake, p, spec, secret)
        for w in sorted(r[0] for r in responses.select("wave").distinct().collect()):
            m = measure(responses, w, p.email_actions, p.no_contact, 1 - p.interval)
            m = m.assign(predicted=math.nan, predicted_low=math.nan, predicted_high=math.nan, covered=False)
            m.insert(0, "campaign_id", p.campaign_id(w))
            results.append(m)
        if responses.limit(1).count() == 0:
            responses = None
    for t in range(first, first + n_waves):
        sent_at = dt.datetime.combine(wave_date, dt.time(9)) + dt.timedelta(days=p.gap_days * t)
        cust_t = feat.with_history(customers, feat.history_features(responses, [t]) if responses is not None else None, t)
        model = None
        if t > 0 or responses is not None:
            if responses is None:
                raise BadInputError("campaign: a targeted wave needs the responses of a randomized one first")
            model = rm.fit(_training(p, customers, responses), acts, feat.FEATURES, bags=p.bags, ridge=p.ridge,
                           ridge_effect=p.ridge_effect, seed=p.seed + t)
            scored = rm.score(cust_t, model, acts, p.coupon_of, p.margin, p.contact_cost, p.no_contact,
                              keep=[C.CUSTOMER_ID, C.CUSTOMER_KEY], clv_weight=p.clv_weight)
        else:
            scored = cust_t.select(C.CUSTOMER_ID, C.CUSTOMER_KEY, *[x for a in acts for x in (
                F.lit(0.0).alias(f"inc_{a}"), F.array_repeat(F.lit(0.0), p.bags).alias(f"bags_{a}"),
                F.lit(0.0).alias(f"dp_{a}"), F.lit(0.0).alias(f"cost_{a}"), F.lit(0.0).alias(f"rev_{a}"))])
        wave, n_vetoed = _plan_wave(p, t, scored, cands, inventory, n, sent_at)
        wave = wave.cache()
        cid = p.campaign_id(t)
        design = "randomized" if t == 0 else "targeted"
        s = WaveSummary(t, cid, design, n, 0, n_vetoed)
        pred_cells = None
        if model is not None:
            s.ridge_effect = model.ridge_effect
            tot = totals(wave, acts, p.no_contact, p.bags)
            for k, v in tot.policy.items():
                s.predicted[k] = _interval(v, p.interval)
                cost = tot.cost[k]
                s.roi[k] = _interval(v / cost, p.interval) if cost > 0 else (math.nan,) * 3
            s.predicted["no_contact_policy"] = (0.0, 0.0, 0.0)
            pred_cells = predicted_cells(tot.cells, tot.cell_n, model.profit_var, p.email_actions, p.no_contact,
                                         p.interval)
        lake.write(planned_rows(wave, p, predicted=model is not None), p.waves_table,
                   replace_where=f"campaign_id = '{cid}'")
        export = wave.select("campaign_id", C.CUSTOMER_ID, "arm", "featured_items", "coupon_level", "holdout",
                             "sent_at", "propensity")
        s.export = lake.export_csv(export, p.waves_table, cid)
        s.contacts = wave.where((F.col("arm") != p.no_contact) & ~F.col("holdout")).count()
        if simulator is not None:
            s.true, s.true_total = _truth(simulator, state, wave, acts, p)
            sent = pd.concat([pd.read_csv(f, dtype={"featured_items": str, "customer_id": str}, keep_default_na=False)
                              for f in sorted(glob.glob(f"{s.export}/part-*.csv"))])
            state = simulator.respond(sent, _local(resp_dir), state=state).state
            responses, s.ingest = _ingest_and_check(lake, p, spec, secret)
            m = measure(responses, t, p.email_actions, p.no_contact, 1 - p.interval)
            if pred_cells is not None:
                m = m.merge(pred_cells, on="arm", how="left")
            else:
                m = m.assign(predicted=math.nan, predicted_low=math.nan, predicted_high=math.nan)
            m["covered"] = (m["measured"] >= m["predicted_low"]) & (m["measured"] <= m["predicted_high"])
            m.insert(0, "campaign_id", cid)
            results.append(m)
        for k, v in s.predicted.items():
            plans.append({"wave": t, "campaign_id": cid, "policy": k, "predicted": v[0], "predicted_low": v[1],
                          "predicted_high": v[2], "roi": s.roi.get(k, (math.nan,) * 3)[0],
                          "roi_low": s.roi.get(k, (math.nan,) * 3)[1], "roi_high": s.roi.get(k, (math.nan,) * 3)[2],
                          "true": s.true.get(k, math.nan)})
        for k, v in s.true.items():
            if k not in s.predicted:
                plans.append({"wave": t, "campaign_id": cid, "policy": k, "predicted": math.nan, "predicted_low": math.nan,
                              "predicted_high": math.nan, "roi": math.nan, "roi_low": math.nan, "roi_high": math.nan,
                              "true": v})
        wave.unpersist()
        summaries.append(s)
        log.info("campaign wave %d (%s): %d customers, %d e-mails, gap closed %.2f", t, design, n, s.contacts,
                 s.gap_closed)
    res = pd.concat(results, ignore_index=True) if results else pd.DataFrame()
    plan_df = pd.DataFrame(plans)
    versions = {}
    spark = lake.spark
    if len(res):
        versions[p.results_table] = lake.write(spark.createDataFrame(res), p.results_table)
    if len(plan_df):
        versions[p.plans_table] = lake.write(spark.createDataFrame(plan_df), p.plans_table)
    customers.unpersist()
    cands.unpersist()
    return CampaignResult(summaries, res, plan_df, versions)


def _local(uri: str) -> str:
    return uri[len("file:"):] if uri.startswith("file:") else uri


def _ingest_and_check(lake: Lake, p: CampaignParams, spec, secret: str) -> tuple[DataFrame, dict[str, int]]:
    """Ingest new response files, check every bronze row against the waves, rewrite silver + rejects."""
    res = ingest(lake, IngestParams(sources=[p.responses_source], rejects_table=p.ingest_rejects_table,
                                    log_table=p.ingest_log_table))
    res.raise_if_failed()
    if not lake.exists(spec.table):
        raise BadInputError(f"campaign: no response export of the planned waves yet in {lake.settings.source_path(spec)}")
    checked = check(lake.read(spec.table), lake.read(p.waves_table), p, secret)
    lake.write(checked.valid, p.responses_table)
    lake.write(checked.rejects, p.rejects_table)
    counts = {**checked.counts, "parse_rejected": res.totals(p.responses_source)["rejected_rows"]}
    return lake.read(p.responses_table).cache(), counts


def _truth(sim: CampaignSimulator, state, wave: DataFrame, acts: list[str], p: CampaignParams) -> tuple[dict[str, float], float]:
    """True expected incremental profit of the strategy, each single action, random and the oracle,
    and the true expected total profit of the wave as sent (the holdout gets no contact)."""
    sent_arm = F.when(F.col("holdout"), F.lit(p.no_contact)).otherwise(F.col("arm"))
    pol = wave.select(C.CUSTOMER_ID, "greedy", "featured_items", sent_arm.alias("sent")).toPandas()
    pol[C.CUSTOMER_ID] = pol[C.CUSTOMER_ID].astype(str)
    oracle = sim.oracle(state)
    items = pol[[C.CUSTOMER_ID, "featured_items"]]
    out = {"strategy": oracle.value(items.assign(arm=pol["greedy"]))["incremental_profit"]}
    for a in acts:
        out[f"all_{a}"] = oracle.value(items.assign(arm=a))["incremental_profit"]
    out["random"] = float(np.mean([out[f"all_{a}"] for a in acts]))
    max_contacts = int(p.max_contacts_fraction * len(pol)) if p.max_contacts_fraction < 1 else None
    out["oracle"] = float(oracle.policy(max_contacts)["incremental_profit"].sum())
    return out, float(oracle.expected(items.assign(arm=pol["sent"]))["profit"].sum())

"""Benchmark: the shop campaign's strategy stage in Spark at 1M synthetic customers, 2g driver (issue 22).

Everything is generated in Spark (``spark.range`` + hash uniforms, nothing of the customer
base on the driver): ``--customers`` customers with every column of
:data:`marketlab.campaign.features.FEATURES` (history columns included, as
:func:`~marketlab.campaign.features.with_history` gives them), ``customer_id`` and
``customer_key``; ``p.candidates`` featured-item candidates per customer (as the
recommender's output); and a randomized-wave training log of ``--train-rows`` rows (arm
uniform over the campaign's actions, order and revenue drawn from a known logistic /
lognormal model, ``p_realised``, ``weight`` and ``_h`` as ``campaign.run._training`` makes
them). The response models are fitted on the log once (``model.fit`` with the conf's bags,
ridge and ridge-effect grid). Then, timed, the stage's own code for one targeted wave, as
``campaign.run.run`` calls it:

* ``plan``: ``model.score`` -> ``campaign.run._plan_wave`` (``best_action`` with the contact
  budget ``--max-contacts-fraction``: a count and the ``approxQuantile`` cut, both eager;
  the featured items of the synthetic candidates; exploration and holdout), no inventory
  plan (nothing vetoed). The scored frame is not cached, as in the stage, so the count and
  the quantile each run the scoring (and the wave's cache in ``totals`` a third time);
* ``totals``: the wave cached, ``plan.totals`` (per-bag sums in ``mapInPandas``: the CI
  bootstrap) and the intervals of the predicted profit and ROI of every policy;
* ``write``: the planned wave written to ``gold.campaign_waves`` (Delta, ``replaceWhere``),
  the send list exported as CSV and the contacts counted, as the stage does.

Not timed as the stage: generating the customers and candidates (cached and counted, as
the stage caches its customer frame and candidates) and the fit (its input is
``--train-rows`` rows whatever ``--customers``). The simulator and the response ingest
are not part of the strategy step.

Baseline in the same run (same JVM, run first): the same pipeline at ``--customers // 10``;
``ratio = time(N) / time(N/10)`` per phase (linear scaling is ~10). Memory: the driver
JVM's peak RSS (``VmHWM`` of the java child of this process; in local mode it is driver
and executor at once), its garbage-collection seconds per phase (MXBeans), the Python driver's peak RSS
(``getrusage``) and the Spark Python workers' peak PSS summed (polled), per phase and over
the run. ``spark.driver.memory`` goes through the settings overrides ``get_spark``
applies at JVM launch and is read back (conf and ``Runtime.maxMemory``).

Usage:
    PYTHONPATH=$PWD/lib .venv/bin/python bench/strategy.py --customers 1000000 --driver-memory 2g

Prints the figures, then ONE JSON line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

MB = 1024 * 1024


class MemoryPoller:
    """Polls the RSS of the driver JVM and the PSS of its Python workers; peaks per phase and overall."""

    def __init__(self, jvm_pid: int, every_s: float = 0.25):
        import psutil

        self.jvm = psutil.Process(jvm_pid)
        self.every_s = every_s
        self.peak = {"jvm": 0, "workers": 0}
        self.phase = {"jvm": 0, "workers": 0}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        import psutil

        try:
            jvm = self.jvm.memory_info().rss
            kids = self.jvm.children(recursive=True)
        except psutil.Error:
            return
        workers = 0
        for k in kids:  # PSS: forked workers share pages with their daemon, summed RSS would count them twice
            try:
                # Python workers only: the JVM's short-lived spawn helpers share its address
                # space until they exec, and would count the JVM again.
                if "python" in k.name():
                    workers += k.memory_full_info().pss
            except psutil.Error:
                pass
        for d in (self.peak, self.phase):
            d["jvm"] = max(d["jvm"], jvm)
            d["workers"] = max(d["workers"], workers)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.every_s)

    def start(self) -> "MemoryPoller":
        self._t.start()
        return self

    def reset_phase(self) -> None:
        self.phase = {"jvm": 0, "workers": 0}

    def stop(self) -> None:
        self._stop.set()
        self._t.join()

    def hwm(self) -> int:
        """The JVM's VmHWM (kernel-recorded peak RSS) in bytes."""
        with open(f"/proc/{self.jvm.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return 0


def _jvm_pid() -> int:
    import psutil

    java = [p for p in psutil.Process().children(recursive=True) if p.name() == "java"]
    if len(java) != 1:
        raise RuntimeError(f"expected one java child of this process, found {[p.pid for p in java]}")
    return java[0].pid


def _gc_s(spark) -> float:
    """Seconds the driver JVM has spent in garbage collection so far (all collectors)."""
    mf = spark.sparkContext._jvm.java.lang.management.ManagementFactory
    return sum(max(int(b.getCollectionTime()), 0) for b in mf.getGarbageCollectorMXBeans()) / 1000.0


def synthetic_customers(n: int, seed: int, partitions: int, spark):
    """``n`` customers in Spark: ``customer_id``, ``customer_key`` and :data:`FEATURES`.

    Plausible shop figures: geometric order counts (mean ~4), lognormal baskets (median
    ~20), recency skewed to recent, a quarter of customers with returns, 0-3 earlier
    e-mails; the same log1p transforms as ``features.customer_frame``.
    """
    from pyspark.sql import functions as F

    from marketlab import constants as C
    from marketlab.campaign.plan import uniform
    from marketlab.privacy import customer_key

    def u(k: int):
        return uniform(F.col("id"), F.lit(seed), F.lit(k))

    def normal(k: int):  # Box-Muller from two uniforms
        return F.sqrt(-2.0 * F.log(F.lit(1.0) - u(k))) * F.cos(2 * math.pi * u(k + 1))

    lg = lambda c: F.log1p(F.col(c).cast("double"))  # noqa: E731
    base = spark.range(0, n, 1, partitions).select(
        (F.col("id") + 100000).cast("string").alias(C.CUSTOMER_ID),
        (1 + F.floor(-F.log(F.lit(1.0) - u(1)) * 3.0)).alias("frequency"),
        F.floor(365 * F.pow(u(2), 1.5)).alias("recency_days"),
        F.exp(3.0 + 0.7 * normal(3)).alias("basket"),
        F.when(u(5) < 0.75, 0.0).otherwise(u(6) * 0.4).alias("return_rate"),
        u(7).alias("_u7"), u(8).alias("_u8"), F.floor(4 * u(9)).alias("prev_contacts"), u(10).alias("_u10"),
        u(11).alias("_u11"), u(12).alias("_u12"))
    x = base.select(
        "*", (F.col("recency_days") + F.floor(730 * F.col("_u12"))).alias("tenure_days"),
        F.when(F.col("recency_days") < 90, F.floor(F.col("frequency") * F.col("_u7") * 0.5) + 1)
        .otherwise(0.0).alias("orders_90d"),
        (F.col("frequency") * (1 + F.floor(12 * F.col("_u8")))).alias("n_items"))
    return x.select(
        C.CUSTOMER_ID, customer_key(C.CUSTOMER_ID, "bench-strategy").alias(C.CUSTOMER_KEY),
        lg("recency_days").alias("log_recency"), lg("frequency").alias("log_frequency"),
        F.log1p(F.col("frequency") * F.col("basket")).alias("log_monetary"), lg("tenure_days").alias("log_tenure"),
        F.log1p("basket").alias("log_basket_value"), F.col("return_rate").cast("double").alias("return_rate"),
        F.col("orders_90d").cast("double").alias("orders_90d"),
        F.log1p(F.col("orders_90d") * F.col("basket")).alias("log_revenue_90d"), lg("n_items").alias("log_items"),
        F.col("prev_contacts").cast("double").alias("prev_contacts"),
        F.floor((F.col("prev_contacts") + 1) * F.col("_u10") * 0.6).cast("double").alias("prev_coupons"),
        F.when(F.col("prev_contacts") > 0, F.col("_u11") * 0.4).otherwise(0.0).alias("prev_order_rate"))


def synthetic_candidates(customers, k: int, items: int, seed: int):
    """``k`` candidates per customer: ``customer_key``, ``item_id``, ``rank``, ``score`` (the recommender's shape)."""
    from pyspark.sql import functions as F

    from marketlab import constants as C

    c = customers.select(C.CUSTOMER_KEY, F.explode(F.sequence(F.lit(1), F.lit(k))).alias("rank"))
    return c.select(C.CUSTOMER_KEY,
                    (F.pmod(F.xxhash64(C.CUSTOMER_KEY, "rank", F.lit(seed)), F.lit(items)) + 10000)
                    .cast("string").alias(C.ITEM_ID),
                    F.col("rank").cast("int").alias("rank"), (F.lit(1.0) / F.col("rank")).alias("score"))


def training_log(p, rows: int, seed: int, partitions: int, spark):
    """A randomized wave's log (the shape of ``campaign.run._training``) from a known response model.

    Order: logistic in frequency and recency with an arm lift (bigger coupon, bigger lift;
    the e-mail lift grows with frequency). Revenue of a buyer: lognormal around the basket.
    """
    from pyspark.sql import functions as F

    from marketlab import constants as C
    from marketlab.campaign.plan import uniform

    acts = [p.no_contact, *p.email_actions]
    lift = {p.no_contact: 0.0, **{a: 0.25 + 3.0 * p.coupon_of[a] for a in p.email_actions}}
    x = synthetic_customers(rows, seed + 7919, partitions, spark)
    u = lambda k: uniform(C.CUSTOMER_KEY, F.lit(seed), F.lit(k))  # noqa: E731
    arm = F.element_at(F.array(*[F.lit(a) for a in acts]), (F.floor(u(1) * len(acts)) + 1).cast("int"))
    x = x.withColumn("treatment", arm)
    lift_col = F.create_map(*[v for a in acts for v in (F.lit(a), F.lit(lift[a]))])[F.col("treatment")]
    email = (F.col("treatment") != p.no_contact).cast("double")
    logit = (-3.0 + 0.6 * (F.col("log_frequency") - 1.5) - 0.4 * (F.col("log_recency") - 4.5)
             + lift_col * (1 + 0.5 * (F.col("log_frequency") - 1.5)))
    ordered = u(2) < F.lit(1.0) / (1 + F.exp(-logit))
    z = F.sqrt(-2.0 * F.log(F.lit(1.0) - u(3))) * F.cos(2 * math.pi * u(4))
    revenue = F.when(ordered, F.exp(0.3 + 0.9 * F.col("log_basket_value") + 0.5 * z)).otherwise(0.0)
    coupon = F.create_map(*[v for a in acts for v in (F.lit(a), F.lit(p.coupon_of[a]))])[F.col("treatment")]
    x = x.select("*", ordered.alias("ordered"), revenue.alias("revenue"))
    x = x.select("*", (F.col("revenue") * (F.lit(p.margin) - coupon) - email * p.contact_cost).alias("profit"),
                 F.lit(1.0 / len(acts)).alias("p_realised"), F.lit(0).alias("wave"))
    return x.select("*", F.least(F.lit(1.0) / F.col("p_realised"), F.lit(p.max_weight)).alias("weight"),
                    F.xxhash64(C.CUSTOMER_KEY, "wave").alias("_h"))


def _interval(x, level: float, digits: int = 1) -> list[float]:
    """(mean, low, high) over the bags, as ``campaign.run._interval``."""
    import numpy as np

    q = (1 - level) / 2
    return [round(float(v), digits) for v in (x.mean(), np.quantile(x, q), np.quantile(x, 1 - q))]


def stage(spark, lake, p, model, n: int, seed: int, partitions: int, poller: MemoryPoller, tag: str) -> dict:
    """Generate (untimed as stage), then plan / totals / write one targeted wave of ``n`` customers."""
    from pyspark.sql import functions as F

    from marketlab import constants as C
    from marketlab.campaign import model as rm
    from marketlab.campaign.plan import totals
    from marketlab.campaign.run import _plan_wave, planned_rows

    acts = [p.no_contact, *p.email_actions]
    out: dict = {"customers": n, "seconds": {}, "peak_jvm_rss_mb": {}, "jvm_gc_s": {},
                 "peak_workers_pss_mb": {}}

    def timed(label: str, fn):
        poller.reset_phase()
        gc0 = _gc_s(spark)
        t0 = time.perf_counter()
        res = fn()
        out["seconds"][label] = round(time.perf_counter() - t0, 2)
        out["peak_jvm_rss_mb"][label] = round(poller.phase["jvm"] / MB)
        out["peak_workers_pss_mb"][label] = round(poller.phase["workers"] / MB)
        out["jvm_gc_s"][label] = round(_gc_s(spark) - gc0, 2)
        print(f"[{tag} n={n:,}] {label}: {out['seconds'][label]} s, JVM RSS peak {out['peak_jvm_rss_mb'][label]} MB, "
              f"GC {out['jvm_gc_s'][label]} s, workers {out['peak_workers_pss_mb'][label]} MB",
              flush=True)
        return res

    def generate():
        cust = synthetic_customers(n, seed, partitions, spark).cache()
        cands = synthetic_candidates(cust, p.candidates, 3000, seed).cache()
        return cust, cands, cust.count(), cands.count()

    customers, cands, n_rows, n_cands = timed("generate", generate)
    assert n_rows == n
    out["candidate_rows"] = n_cands
    t = 1  # a targeted wave
    sent_at = dt.datetime(2011, 12, 1, 9)

    def plan():
        scored = rm.score(customers, model, acts, p.coupon_of, p.margin, p.contact_cost, p.no_contact,
                          keep=[C.CUSTOMER_ID, C.CUSTOMER_KEY], clv_weight=p.clv_weight)
        return _plan_wave(p, t, scored, cands, None, n, sent_at)[0]

    wave = timed("plan", plan)

    def total():
        w = wave.cache()
        tot = totals(w, acts, p.no_contact, p.bags)
        pred = {k: _interval(v, p.interval) for k, v in tot.policy.items()}
        roi = {k: _interval(v / tot.cost[k], p.interval, 4) if tot.cost[k] > 0 else None
               for k, v in tot.policy.items()}
        return w, tot, pred, roi

    wave, tot, pred, roi = timed("totals", total)
    cid = p.campaign_id(t)

    def write():
        version = lake.write(planned_rows(wave, p, predicted=True), p.waves_table, replace_where=f"campaign_id = '{cid}'")
        export = wave.select("campaign_id", C.CUSTOMER_ID, "arm", "featured_items", "coupon_level", "holdout",
                             "sent_at", "propensity")
        lake.export_csv(export, p.waves_table, f"{cid}_{tag}")
        contacts = wave.where((F.col("arm") != p.no_contact) & ~F.col("holdout")).count()
        return version, contacts

    _, contacts = timed("write", write)
    out["seconds"]["stage"] = round(sum(out["seconds"][k] for k in ("plan", "totals", "write")), 2)
    written = lake.read_ungated(p.waves_table).where(F.col("campaign_id") == cid).agg(
        F.count(F.lit(1)).alias("rows"), F.sum(F.when(F.col("featured_items") != "", 1).otherwise(0)).alias("featured"),
        F.sum(F.when(F.col("greedy") != p.no_contact, 1).otherwise(0)).alias("greedy_email")).first()
    assert written["rows"] == n, (written["rows"], n)
    out.update({"contacts_sent": contacts, "greedy_emails": int(written["greedy_email"]),
                "with_featured_items": int(written["featured"]),
                "budget": int(math.floor(p.max_contacts_fraction * n)),
                "strategy_contacts": tot.contacts["strategy"],
                "predicted_profit": pred, "predicted_roi": roi})
    print(f"[{tag} n={n:,}] strategy: {tot.contacts['strategy']:,} e-mails (budget "
          f"{out['budget']:,}), predicted incremental profit {pred['strategy']} (mean, "
          f"{p.interval:.0%} interval), ROI {roi['strategy']}; sent {contacts:,}", flush=True)
    wave.unpersist()
    cands.unpersist()
    customers.unpersist()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--driver-memory", default="2g")
    ap.add_argument("--train-rows", type=int, default=80_000)
    ap.add_argument("--max-contacts-fraction", type=float, default=0.3)
    ap.add_argument("--partitions", type=int, default=8,
                    help="partitions of the generated customers (the stage's customer frame has the shuffle partitions)")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-baseline", action="store_true", help="skip the N/10 run")
    args = ap.parse_args()

    from marketlab.campaign import features as feat
    from marketlab.campaign import model as rm
    from marketlab.config import load_settings
    from marketlab.spark import get_spark
    from marketlab.tables import Lake

    tmp = Path(tempfile.mkdtemp(prefix="bench_strategy_"))
    st = load_settings(ROOT / "conf" / "local.yaml", [
        f"lake_root={tmp / 'lake'}", f"spark.master={args.master}", "spark.conf.spark.ui.enabled=false",
        f"spark.conf.spark.driver.memory={args.driver_memory}", f"spark.conf.spark.local.dir={tmp / 'spark'}",
        f"mlflow.tracking_uri=sqlite:///{tmp / 'mlflow.db'}", f"mlflow.artifact_root={tmp / 'art'}"])
    p = st.jobs.campaign.model_copy(update={"max_contacts_fraction": args.max_contacts_fraction, "seed": args.seed})
    spark = get_spark(st)
    conf_mem = spark.sparkContext.getConf().get("spark.driver.memory")
    max_heap = int(spark.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory())
    print(f"spark.driver.memory = {conf_mem}; JVM max heap {max_heap / MB:.0f} MB; master {spark.sparkContext.master}",
          flush=True)
    poller = MemoryPoller(_jvm_pid()).start()
    lake = Lake(spark, st)
    acts = [p.no_contact, *p.email_actions]
    r: dict = {"bench": "strategy", "load_avg_start": round(os.getloadavg()[0], 1), "customers": args.customers, "master": args.master,
               "spark.driver.memory": conf_mem, "jvm_max_heap_mb": round(max_heap / MB),
               "train_rows": args.train_rows, "bags": p.bags, "actions": acts, "candidates": p.candidates,
               "max_contacts_fraction": p.max_contacts_fraction, "partitions": args.partitions}
    try:
        t0 = time.perf_counter()
        train = training_log(p, args.train_rows, args.seed, args.partitions, spark).cache()
        train.count()
        t_log = time.perf_counter() - t0
        t0 = time.perf_counter()
        model = rm.fit(train, acts, feat.FEATURES, bags=p.bags, ridge=p.ridge, ridge_effect=p.ridge_effect,
                       seed=p.seed + 1)
        t_fit = time.perf_counter() - t0
        train.unpersist()
        r["fit_seconds"] = {"log": round(t_log, 2), "fit": round(t_fit, 2)}
        r["ridge_effect"] = model.ridge_effect
        print(f"training log {args.train_rows:,} rows: {t_log:.1f} s; fit ({p.bags} bags, ridge_effect chosen "
              f"{model.ridge_effect:g}): {t_fit:.1f} s", flush=True)
        runs = {}
        if not args.no_baseline:
            runs["baseline"] = stage(spark, lake, p, model, args.customers // 10, args.seed, args.partitions, poller,
                                     "baseline")
        runs["full"] = stage(spark, lake, p, model, args.customers, args.seed, args.partitions, poller, "full")
        r["runs"] = runs
        if "baseline" in runs:
            b, f = runs["baseline"]["seconds"], runs["full"]["seconds"]
            r["ratio_full_vs_tenth"] = {k: round(f[k] / b[k], 2) for k in f if b.get(k)}
        r["peak_jvm_rss_mb"] = round(poller.peak["jvm"] / MB)
        r["jvm_vmhwm_mb"] = round(poller.hwm() / MB)
        r["peak_workers_pss_mb"] = round(poller.peak["workers"] / MB)
        r["load_avg_end"] = round(os.getloadavg()[0], 1)
        r["peak_python_driver_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    finally:
        poller.stop()
        spark.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    f = r["runs"]["full"]
    print(f"stage at {args.customers:,}: plan {f['seconds']['plan']} + totals {f['seconds']['totals']} + write "
          f"{f['seconds']['write']} = {f['seconds']['stage']} s; ratio vs N/10: {r.get('ratio_full_vs_tenth')}")
    print(f"peak RSS: JVM {r['jvm_vmhwm_mb']} MB (VmHWM; heap max {r['jvm_max_heap_mb']} MB), Python driver "
          f"{r['peak_python_driver_rss_mb']} MB, Python workers {r['peak_workers_pss_mb']} MB (PSS, summed)")
    print(json.dumps(r))


if __name__ == "__main__":
    main()

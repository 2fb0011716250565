"""Benchmark: customer lifetime value at scale -- summary in Spark, fit on the driver, scoring in Spark.

Synthetic order lines of ``--customers`` customers are drawn from the BG/NBD and
Gamma-Gamma processes in the executors (:func:`marketlab.value.synthetic.simulate_order_lines`)
and written to a Delta table of a temporary lake (not timed). Then, timed:

* ``summary``: order days + (frequency, recency, T, monetary) per customer, cached and counted;
* ``fit``: the grouped BG/NBD input and the repeat buyers' (frequency, monetary) collected,
  both models fitted (what ``marketlab.value.run`` does on the driver);
* ``score``: P(alive), expected purchases/spend over 365 days and the 12-period CLV in
  ``mapInPandas``, written to Spark's ``noop`` sink (all rows computed, none collected);
* baseline ``score_driver``: the same functions in NumPy on the driver over the collected
  summary (the collect not timed) -- the ratio says what the distributed scoring costs or saves.

Also: rows of the grouped fit input vs customers (why the fit stays on the driver), and the
recovered parameters vs the true ones. Ends with ONE JSON line.

Usage:
    .venv/bin/python bench/clv.py --customers 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--driver-memory", default="3g")
    args = ap.parse_args()

    from marketlab.config import load_settings
    from marketlab.spark import get_spark
    from marketlab.tables import Lake
    from marketlab.value import models as M
    from marketlab.value import summary as S
    from marketlab.value.params import ValueParams
    from marketlab.value.stage import fit_summary
    from marketlab.value.synthetic import simulate_order_lines

    tmp = Path(tempfile.mkdtemp(prefix="bench_clv_"))
    st = load_settings(ROOT / "conf" / "test.yaml", [f"lake_root={tmp / 'lake'}", f"spark.master={args.master}",
                                                    "spark.conf.spark.sql.shuffle.partitions=8",
                                                    f"spark.conf.spark.driver.memory={args.driver_memory}",
                                                    # synthetic silver that no gate has evaluated
                                                    "jobs.quality.guard_reads=false"])
    spark = get_spark(st)
    lake = Lake(spark, st)
    true_bg, true_gg = M.BGNBD(0.6, 12.0, 0.8, 3.0), M.GammaGamma(6.0, 4.0, 15.0)
    t0 = time.perf_counter()
    lake.write(simulate_order_lines(spark, args.customers, true_bg, true_gg, days=args.days, seed=args.seed),
               "silver.order_lines")
    lines = lake.read("silver.order_lines")
    n_lines = lines.count()
    t_gen = time.perf_counter() - t0
    params = ValueParams(results_table=None)
    end = lines.agg({"date": "max"}).first()[0].toordinal() + 1
    as_of = dt.date.fromordinal(end)

    t0 = time.perf_counter()
    days, _ = S.order_days(lines)
    summary = S.summarise(days, as_of).cache()
    n_customers = summary.count()
    t_summary = time.perf_counter() - t0

    t0 = time.perf_counter()
    fit = fit_summary(summary, params)
    t_fit = time.perf_counter() - t0
    n_grouped = len(S.grouped_for_fit(summary))

    t0 = time.perf_counter()
    S.score(summary, fit.bgnbd, fit.gamma_gamma, params.horizon_days, params.period_days, params.discount_per_period,
            params.margin).write.format("noop").mode("overwrite").save()
    t_score = time.perf_counter() - t0

    pdf = summary.toPandas()
    t0 = time.perf_counter()
    x, t_x, age, mx = (pdf[c].to_numpy(float) for c in (S.FREQUENCY, S.RECENCY, S.AGE, S.MONETARY))
    M.p_alive(fit.bgnbd, x, t_x, age)
    M.expected_purchases(fit.bgnbd, 365.0, x, t_x, age)
    M.discounted_clv(fit.bgnbd, fit.gamma_gamma, x, t_x, age, mx, 365.0, 30.0, params.discount_per_period, params.margin)
    t_driver = time.perf_counter() - t0
    spark.stop()

    bg, gg = fit.bgnbd, fit.gamma_gamma
    out = {
        "bench": "clv", "customers": n_customers, "order_lines": n_lines, "master": args.master,
        "grouped_fit_rows": n_grouped, "seconds": {"generate_write": round(t_gen, 1), "summary": round(t_summary, 1),
                                                   "fit": round(t_fit, 1), "score": round(t_score, 1),
                                                   "score_driver_numpy": round(t_driver, 1)},
        "score_spark_vs_driver": round(t_score / t_driver, 2),
        "customers_scored_per_s": round(n_customers / t_score),
        "recovered": {"rate_per_day": [round(bg.r / bg.alpha, 4), true_bg.r / true_bg.alpha],
                      "mean_dropout": [round(bg.a / (bg.a + bg.b), 4), round(true_bg.a / (true_bg.a + true_bg.b), 4)],
                      "mean_spend": [round(gg.population_mean, 2), round(true_gg.population_mean, 2)]},
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()

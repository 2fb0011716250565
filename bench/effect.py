"""Uplift on the real Hillstrom campaign under the published scikit-uplift protocol.

Womens E-Mail vs No E-Mail, target visit, 50/50 ``train_test_split(random_state=42)``
(reproduced row for row by :func:`marketlab.effect.fit.protocol_split`). Builds
silver.campaign_log with the project's own ingest + clean into a temporary lake, fits
each learner with Spark ML, computes the metrics in Spark (Poisson-bootstrap CIs) and
re-computes the point figures with scikit-uplift on the same predictions. Timing: the
Spark metric pass against scikit-uplift on the collected predictions, same run.

    .venv/bin/python bench/effect.py [--learners class_transformation,t_learner,x_learner]
        [--base rf|gbt|logreg] [--max-iter 40] [--max-depth 4] [--bootstrap 100]

Ends with one JSON line.
"""

from __future__ import annotations

import argparse
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

PUBLISHED = {"uplift_at_30": 0.0661, "qini_auc_best": 0.0668, "qini_auc_two_model_rf": 0.0303}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--learners", default="class_transformation,t_learner,x_learner")
    ap.add_argument("--base", default="rf")
    ap.add_argument("--max-iter", type=int, default=40)
    ap.add_argument("--max-depth", type=int, default=4)
    ap.add_argument("--bootstrap", type=int, default=100)
    args = ap.parse_args()

    from sklift.metrics import qini_auc_score, uplift_at_k, uplift_auc_score

    from marketlab.clean.run import run as clean
    from marketlab.config import load_settings
    from marketlab.effect.data import TREATED_COL, arm_frame
    from marketlab.effect.fit import protocol_split
    from marketlab.effect.learners import fit_learner
    from marketlab.effect.metrics import uplift_metrics
    from marketlab.ingest.run import run as ingest
    from marketlab.quality.run import run as check
    from marketlab.spark import get_spark
    from marketlab.tables import Lake

    tmp = Path(tempfile.mkdtemp(prefix="bench-effect-"))
    st = load_settings(ROOT / "conf" / "test.yaml", [f"lake_root={tmp / 'lake'}", "jobs.clean.tables=[campaign]"])
    spark = get_spark(st)
    lake = Lake(spark, st)
    ingest(lake, st.jobs.ingest.model_copy(update={"sources": ["hillstrom"]}))
    cleaned = clean(lake, st.jobs.clean)
    check(lake, cleaned.silver_tables, st.jobs.quality).raise_if_failed()  # as jobs/clean.py: reads are gated
    silver = lake.read("silver.campaign_log")
    split = arm_frame(protocol_split(silver, "Womens E-Mail", "No E-Mail"), "Womens E-Mail", "No E-Mail").cache()
    train, hold = split.where("not is_holdout").cache(), split.where("is_holdout").cache()
    print(f"rows: silver {silver.count()}, Womens+No {split.count()}, train {train.count()}, validation {hold.count()}")
    out = {"published": PUBLISHED, "protocol": "Womens vs No, visit, 50/50 split, seed 42", "models": {}}
    for name in args.learners.split(","):
        t0 = time.perf_counter()
        fl = fit_learner(name, train, "visit", True, args.base, args.max_iter, args.max_depth, 42)
        pred = fl.predict(hold, "uplift").select("customer_id", "uplift", "visit", TREATED_COL).cache()
        pred.count()
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        m = uplift_metrics(pred, "uplift", "visit", TREATED_COL, "customer_id", [0.1, 0.2, 0.3], 0, 42)
        spark_s = time.perf_counter() - t0
        pdf = pred.toPandas().sort_values("customer_id")
        t0 = time.perf_counter()
        sk = {"qini_auc": qini_auc_score(pdf.visit, pdf.uplift, pdf[TREATED_COL]),
              "uplift_auc": uplift_auc_score(pdf.visit, pdf.uplift, pdf[TREATED_COL]),
              "uplift_at_30": uplift_at_k(pdf.visit, pdf.uplift, pdf[TREATED_COL], strategy="by_group", k=0.3),
              "uplift_at_30_overall": uplift_at_k(pdf.visit, pdf.uplift, pdf[TREATED_COL], strategy="overall", k=0.3)}
        sk_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        mb = uplift_metrics(pred, "uplift", "visit", TREATED_COL, "customer_id", [0.3], args.bootstrap, 42)
        boot_s = time.perf_counter() - t0
        row = {k: round(float(v), 5) for k, v in mb.items()}
        row.update({f"sklift_{k}": round(float(v), 5) for k, v in sk.items()})
        row.update({"fit_s": round(fit_s, 1), "spark_metrics_s": round(spark_s, 2), "sklift_metrics_s": round(sk_s, 3),
                    "bootstrap_s": round(boot_s, 1), "max_abs_diff_vs_sklift": max(abs(m[k] - sk[k]) for k in sk)})
        out["models"][name] = row
        print(f"{name:<22} qini_auc={row['qini_auc']:.4f} [{row['qini_auc_lo']:.4f}, {row['qini_auc_hi']:.4f}]  "
              f"uplift@30 by_group={row['uplift_at_30']:.4f} [{row['uplift_at_30_lo']:.4f}, {row['uplift_at_30_hi']:.4f}]  "
              f"overall={row['uplift_at_30_overall']:.4f}  | sklift qini={sk['qini_auc']:.4f} u@30={sk['uplift_at_30']:.4f}"
              f"  | fit {fit_s:.0f}s, spark metrics {spark_s:.1f}s vs sklift {sk_s:.2f}s")
        pred.unpersist()
    out["args"] = vars(args)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

"""Benchmark: the campaign loop on the real customers over waves and seeds (simulator truth).

On a lake that holds silver.order_lines / returns and gold.item_features (e.g. after
``marketlab pipeline --only ingest --only clean --only features``), plays ``--waves``
waves for each of ``--seeds`` (simulator seed and campaign seed moved together) and
reports, per targeted wave: the strategy's true incremental profit, the best single
action's, random's and the oracle's, the share of the gap between the best single action
and the oracle that the strategy closes (the issue-22 goal is >= 50 % by wave 1), and the
share of (wave x arm) cells whose 90 % predicted interval covers the measured effect
(goal 80-95 %). Every figure here comes from the campaign simulator (docs/SIMULATOR.md).
Ends with ONE JSON line.

``--compare-clv W`` plays every seed twice from the same start, with ``clv_weight`` 0 and W
(issue 25's ΔCLV term), and reports the paired difference of the true expected total profit
of the waves as sent, summed over the targeted waves, with a t-interval over seeds; the
``--carryover`` / ``--fatigue`` / ``--anticipation`` flags switch the simulator's dynamics on
(a long-run term can only pay where earlier waves move later ones).

Usage:
    .venv/bin/python bench/campaign_waves.py --lake /tmp/clake --waves 6 --seeds 5
    .venv/bin/python bench/campaign_waves.py --lake /tmp/clake --waves 4 --seeds 3 --compare-clv 1 --carryover
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lake", required=True, help="lake_root holding silver order lines and gold.item_features")
    ap.add_argument("--waves", type=int, default=6)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--bags", type=int, default=30)
    ap.add_argument("--compare-clv", type=float, default=None, metavar="W",
                    help="play each seed with clv_weight 0 and W; paired difference of the true total profit")
    ap.add_argument("--featured-source", choices=["als", "repeat"], default=None,
                    help="jobs.campaign.featured_source for this run (default: conf)")
    for flag in ("carryover", "fatigue", "anticipation"):
        ap.add_argument(f"--{flag}", action="store_true", help=f"simulator dynamics: {flag} on")
    args = ap.parse_args()

    import numpy as np
    import pandas as pd

    from marketlab.campaign.run import run
    from marketlab.config import load_settings
    from marketlab.privacy import resolve_secret
    from marketlab.spark import get_spark
    from marketlab.tables import Lake

    tmp = Path(tempfile.mkdtemp(prefix="bench-campaign-"))
    base = [f"lake_root={args.lake}", f"mlflow.tracking_uri=sqlite:///{tmp / 'mlflow.db'}",
            f"mlflow.artifact_root={tmp / 'art'}"]
    st = load_settings(ROOT / "conf" / "test.yaml", base)
    spark = get_spark(st)
    dyn = st.jobs.simulator.dynamics.model_copy(update={f: True for f in ("carryover", "fatigue", "anticipation")
                                                        if getattr(args, f)})
    weights = [0.0, args.compare_clv] if args.compare_clv is not None else [st.jobs.campaign.clv_weight]
    curves, cells, totals = [], [], []
    runs = [(seed, w) for seed in range(args.seeds) for w in weights]
    for seed, w in runs:
        p = st.jobs.campaign.model_copy(update={"waves": args.waves, "bags": args.bags, "seed": 1000 + seed,
                                                "name": f"bench{seed}w{weights.index(w)}", "clv_weight": w,
                                                "featured_source": args.featured_source
                                                or st.jobs.campaign.featured_source})
        sim = st.jobs.simulator.model_copy(update={"seed": 7 + seed, "dynamics": dyn})
        # The ALS of the featured items needs a checkpoint folder, as the campaign job gives it:
        # without one its lineage grows with the iterations, and a recomputed cached
        # partition overflows the task deserializer's stack (seen under memory pressure).
        res = run(Lake(spark, st), p, st.jobs.recommend, sim, resolve_secret(st), str(tmp / "checkpoints"),
                  value=st.jobs.value)
        totals.append({"seed": seed, "clv_weight": w, "total": sum(x.true_total for x in res.waves[1:])})
        if w != weights[0]:
            continue  # the curves and the coverage are of the first weight
        for wave in res.waves[1:]:
            best = max(v for k, v in wave.true.items() if k.startswith("all_"))
            curves.append({"seed": seed, "wave": wave.wave, "strategy": wave.true["strategy"], "best_single": best,
                           "random": wave.true["random"], "oracle": wave.true["oracle"],
                           "gap_closed": wave.gap_closed})
        cells.append(res.results.dropna(subset=["measured", "predicted"]).assign(seed=seed))
    c = pd.DataFrame(curves)
    print(c.round(1).to_string(index=False))  # per seed x wave: paired comparisons across runs
    by_wave = c.groupby("wave").agg(gap_closed=("gap_closed", "mean"), gap_sd=("gap_closed", "std"),
                                    strategy=("strategy", "mean"), best_single=("best_single", "mean"),
                                    random=("random", "mean"), oracle=("oracle", "mean"))
    print(by_wave.round(3).to_string())
    r = pd.concat(cells)
    coverage = float(r["covered"].mean())
    n = len(r)
    half = 1.96 * np.sqrt(coverage * (1 - coverage) / n) if n else float("nan")
    clv = {}
    if args.compare_clv is not None:
        from scipy import stats

        t = pd.DataFrame(totals).pivot(index="seed", columns="clv_weight", values="total")
        d = t[args.compare_clv] - t[0.0]
        hd = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
        clv = {"clv_weight": args.compare_clv, "total_profit_w0": float(t[0.0].mean()),
               "total_profit_w": float(t[args.compare_clv].mean()), "diff": float(d.mean()),
               "diff_ci95": [float(d.mean()) - hd, float(d.mean()) + hd], "diff_by_seed": [float(x) for x in d]}
        print(t.round(1).to_string())
    print(json.dumps({"bench": "campaign_waves", "waves": args.waves, "seeds": args.seeds,
                      "featured_source": args.featured_source or st.jobs.campaign.featured_source,
                      "dynamics": [f for f in ("carryover", "fatigue", "anticipation") if getattr(args, f)],
                      "compare_clv": clv,
                      "gap_closed_by_wave": {int(k): round(float(v), 4) for k, v in by_wave["gap_closed"].items()},
                      "strategy_true_by_wave": {int(k): round(float(v), 1) for k, v in by_wave["strategy"].items()},
                      "beats_best_single_share": float((c["strategy"] > c["best_single"]).mean()),
                      "beats_random_share": float((c["strategy"] > c["random"]).mean()),
                      "coverage": coverage, "coverage_ci": [coverage - half, coverage + half], "cells": n}))


if __name__ == "__main__":
    main()

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

Usage:
    .venv/bin/python bench/campaign_waves.py --lake /tmp/clake --waves 6 --seeds 5
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
    curves, cells = [], []
    for seed in range(args.seeds):
        name = f"bench{seed}"
        p = st.jobs.campaign.model_copy(update={"waves": args.waves, "bags": args.bags, "seed": 1000 + seed, "name": name})
        sim = st.jobs.simulator.model_copy(update={"seed": 7 + seed})
        res = run(Lake(spark, st), p, st.jobs.recommend, sim, resolve_secret(st))
        for w in res.waves[1:]:
            best = max(v for k, v in w.true.items() if k.startswith("all_"))
            curves.append({"seed": seed, "wave": w.wave, "strategy": w.true["strategy"], "best_single": best,
                           "random": w.true["random"], "oracle": w.true["oracle"], "gap_closed": w.gap_closed})
        cells.append(res.results.dropna(subset=["measured", "predicted"]).assign(seed=seed))
    c = pd.DataFrame(curves)
    by_wave = c.groupby("wave").agg(gap_closed=("gap_closed", "mean"), gap_sd=("gap_closed", "std"),
                                    strategy=("strategy", "mean"), best_single=("best_single", "mean"),
                                    random=("random", "mean"), oracle=("oracle", "mean"))
    print(by_wave.round(3).to_string())
    r = pd.concat(cells)
    coverage = float(r["covered"].mean())
    n = len(r)
    half = 1.96 * np.sqrt(coverage * (1 - coverage) / n) if n else float("nan")
    print(json.dumps({"bench": "campaign_waves", "waves": args.waves, "seeds": args.seeds,
                      "gap_closed_by_wave": {int(k): round(float(v), 4) for k, v in by_wave["gap_closed"].items()},
                      "beats_best_single_share": float((c["strategy"] > c["best_single"]).mean()),
                      "beats_random_share": float((c["strategy"] > c["random"]).mean()),
                      "coverage": coverage, "coverage_ci": [coverage - half, coverage + half], "cells": n}))


if __name__ == "__main__":
    main()

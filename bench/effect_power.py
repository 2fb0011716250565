"""Can any targeting policy beat "e-mail everyone with the best arm" detectably on Hillstrom?

Issue 6 asks for a strategy whose estimated profit beats the best single-arm policy with a
95 % CI that excludes zero, on held-out customers. This script measures, on the vendored
randomized log (64,000 customers, pandas; the rows are those of silver.campaign_log),
the two quantities that decide whether that is possible at all:

* the noise: the standard error of a paired policy difference and the minimal detectable
  difference (MDE, alpha 0.05, power 0.8) at the strategy's held-out size;
* the signal: how much the best arm per segment gains over the reference, for segment
  definitions from every campaign feature, cross-fitted (5 folds over all 64,000 rows,
  i.e. twice the strategy's held-out sample), with the number of customers at which that
  gain would be detectable, and in-sample (chosen and evaluated on the
  same rows: an optimistic bound that overfits).

Profit per customer = margin x spend - contact cost, both from conf/base/params/strategy.yaml.

    .venv/bin/python bench/effect_power.py [--margin 0.3] [--cost 0.1] [--holdout 0.5]

Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from marketlab.strategy.power import minimal_detectable_difference, segment_policy_gain  # noqa: E402

KEY_SETS = [
    ["mens", "womens"], ["newbie"], ["channel"], ["zip_code"], ["history_segment"], ["recency_band"],
    ["mens", "womens", "newbie"], ["mens", "womens", "channel"], ["history_segment", "mens", "womens"],
    ["mens", "womens", "newbie", "channel"], ["history_segment", "mens", "womens", "newbie"],
    ["mens", "womens", "newbie", "channel", "zip_code"], ["recency_band", "mens", "womens", "newbie", "channel"],
]


def main() -> None:
    import yaml

    conf = yaml.safe_load((ROOT / "conf/base/params/strategy.yaml").read_text())["jobs"]["strategy"]
    ap = argparse.ArgumentParser()
    ap.add_argument("--margin", type=float, default=conf["margin"])
    ap.add_argument("--cost", type=float, default=conf["default_contact_cost"])
    ap.add_argument("--holdout", type=float, default=0.5, help="held-out share the strategy is judged on")
    args = ap.parse_args()
    t0 = time.perf_counter()

    log = pd.read_csv(ROOT / "data/hillstrom/hillstrom.csv").rename(columns={"segment": "action"})
    log["reward"] = args.margin * log["spend"] - np.where(log["action"] == conf["control"], 0.0, args.cost)
    log["recency_band"] = pd.cut(log["recency"], [0, 3, 6, 9, 12], labels=False)
    arms = log.groupby("action")["reward"].agg(["size", "mean", "std"])
    reference = arms.drop(conf["control"])["mean"].idxmax()
    print(f"{len(log):,} customers; profit = {args.margin} x spend - {args.cost} per e-mail")
    print(arms.round(4).to_string())
    print(f"reference policy: everyone gets '{reference}'\n")

    rows = [segment_policy_gain(log, keys, reference) for keys in KEY_SETS]
    n_hold = int(round(len(log) * args.holdout))
    print(f"{'segments by':<48} {'n_seg':>5} {'changed':>7} {'gain [95% CI]':>26} {'in-sample':>9} "
          f"{'MDE@held-out':>12} {'n needed':>12}")
    for r in rows:
        mde_hold = minimal_detectable_difference(r.se * np.sqrt(len(log) / n_hold))
        print(f"{'+'.join(r.keys):<48} {r.n_segments:>5} {r.share_changed:>7.2f} "
              f"{r.gain:>+8.4f} [{r.lo:+.4f}, {r.hi:+.4f}] {r.insample_gain:>+9.4f} {mde_hold:>12.4f} {r.n_needed:>12,.0f}")
    best = max(rows, key=lambda r: r.gain)
    best_in = max(rows, key=lambda r: r.insample_gain)
    # a policy that moves half the customers off the reference: the typical budgeted strategy
    half = next(r for r in rows if r.keys == ["mens", "womens", "newbie", "channel"])
    mde_half = minimal_detectable_difference(half.se * np.sqrt(len(log) / n_hold))
    significant = [r for r in rows if r.lo > 0]
    print(f"\nbest cross-fitted gain {best.gain:+.4f} [{best.lo:+.4f}, {best.hi:+.4f}] ({'+'.join(best.keys)}); "
          f"best in-sample {best_in.insample_gain:+.4f}; CIs above 0: {len(significant)} of {len(rows)}")
    print(f"MDE of a policy changing {half.share_changed:.0%} of {n_hold:,} held-out customers: {mde_half:.4f} "
          f"per customer (reference profit {arms.loc[reference, 'mean']:.4f}); "
          f"detecting the best cross-fitted gain ({best.gain:+.4f}) at 80 % power needs ~{best.n_needed:,.0f} "
          f"customers in the evaluation (this log: {len(log):,} in all)")
    print(f"{time.perf_counter() - t0:.1f} s")
    print(json.dumps({
        "bench": "effect_power", "customers": int(len(log)), "holdout_customers": n_hold, "margin": args.margin,
        "contact_cost": args.cost, "reference": reference,
        "reference_profit": round(float(arms.loc[reference, "mean"]), 4),
        "best_crossfit_gain": round(best.gain, 4), "best_crossfit_ci": [round(best.lo, 4), round(best.hi, 4)],
        "best_crossfit_keys": best.keys, "best_insample_gain": round(best_in.insample_gain, 4),
        "ci_above_zero": len(significant), "segmentations": len(rows),
        "mde_holdout_half_changed": round(mde_half, 4),
        "n_needed_for_best_crossfit_gain": round(best.n_needed),
    }))


if __name__ == "__main__":
    main()

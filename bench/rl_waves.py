"""Benchmark: fitted-Q over campaign waves vs the myopic policy, in the simulator (issue 26).

For each seed and with the simulator's dynamics on (fatigue + anticipation + carryover)
and off: a uniformly randomized exploring policy plays ``--logged-waves`` waves to every
customer, the Spark job builds the transitions (``--transitions local``: the numpy path),
fitted-Q (``--gamma``) and the myopic policy (fitted-Q with gamma 0) learn from them, and
every policy is rolled forward ``--eval-waves`` waves from the same state with the same
sampling stream. Every figure is the simulator's TRUE expected profit (docs/RL.md): the
cumulative profit of all customers, and its increment over never contacting anyone. CIs
are t-intervals over seeds (95 %). ``--ope`` adds, per seed, the per-decision importance
sampling and doubly robust estimates of fitted-Q, myopic and random from the logged waves
alone (bootstrap 95 % intervals over customers) against each policy's true profit over
those waves, and the share of seeds whose interval covers the truth. Ends with ONE JSON line.

Usage:
    .venv/bin/python bench/rl_waves.py --customers 20000 --seeds 5
    .venv/bin/python bench/rl_waves.py --shop real --seeds 5    # the vendored Online Retail customers
    .venv/bin/python bench/rl_waves.py --seeds 5 --transitions local --ope   # + off-policy estimates vs truth
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


def _ci(x) -> dict:
    import numpy as np
    from scipy import stats

    x = np.asarray(x, float)
    m = float(x.mean())
    h = float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")
    return {"mean": round(m, 2), "low": round(m - h, 2), "high": round(m + h, 2)}


def _real_lines():
    import pandas as pd

    from marketlab import constants as C

    df = pd.read_csv(ROOT / "data" / "online_retail" / "online_retail.csv.gz",
                     dtype={"InvoiceNo": str, "StockCode": str})
    df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"], format="%Y-%m-%d %H:%M:%S")
    return df.rename(columns={"CustomerID": C.CUSTOMER_ID, "InvoiceNo": C.INVOICE_NO, "InvoiceDate": C.INVOICE_TS,
                              "StockCode": C.STOCK_CODE, "Quantity": C.QUANTITY, "UnitPrice": C.UNIT_PRICE})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shop", choices=["synthetic", "real"], default="synthetic")
    ap.add_argument("--customers", type=int, default=20000, help="synthetic shop size")
    ap.add_argument("--seeds", type=int, default=5)
    # Unset flags take conf's jobs.rl (conf/base/params/rl.yaml).
    ap.add_argument("--logged-waves", type=int, default=None)
    ap.add_argument("--eval-waves", type=int, default=None)
    ap.add_argument("--gamma", type=float, default=None)
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--regressor", choices=["ridge", "hgb"], default=None)
    ap.add_argument("--ridge-effect", type=float, default=None, help="jobs.rl.regressor.ridge_effect")
    ap.add_argument("--transitions", choices=["spark", "local"], default="spark")
    ap.add_argument("--ope", action="store_true",
                    help="also estimate fqi, myopic and random off-policy (PDIS, DR) from the logged waves alone "
                         "and check each against its true value over those waves")
    args = ap.parse_args()

    import numpy as np
    import pandas as pd

    from marketlab.config import load_settings
    from marketlab.rl.evaluate import collect, evaluate, off_policy_check
    from marketlab.simulator import CampaignSimulator, Dynamics, SimulatorParams

    tmp = Path(tempfile.mkdtemp(prefix="bench-rl-"))
    st = load_settings(ROOT / "conf" / "test.yaml", [f"lake_root={tmp / 'lake'}",
                                                     f"mlflow.tracking_uri=sqlite:///{tmp / 'mlflow.db'}",
                                                     f"mlflow.artifact_root={tmp / 'art'}"])
    conf = st.jobs.rl
    reg = conf.regressor.model_copy(update={k: v for k, v in (("kind", args.regressor),
                                                               ("ridge_effect", args.ridge_effect)) if v is not None})
    base_p = conf.model_copy(update={"regressor": reg, **{k: v for k, v in (
        ("gamma", args.gamma), ("iterations", args.iterations), ("logged_waves", args.logged_waves),
        ("eval_waves", args.eval_waves)) if v is not None}})
    spark_fn, spark_s = None, []
    if args.transitions == "spark":
        from marketlab.rl.transitions import build_transitions
        from marketlab.spark import get_spark

        spark = get_spark(st)

        def spark_fn(waves, history, **kw):
            t0 = time.perf_counter()
            out = build_transitions(spark.createDataFrame(waves.drop(columns=["window_end"])),
                                    spark.createDataFrame(history), **kw).toPandas()
            spark_s.append(time.perf_counter() - t0)
            return out

    lines = _real_lines() if args.shop == "real" else None
    rows, ope_rows = [], []
    for dyn_on in (True, False):
        dyn = Dynamics(fatigue=dyn_on, anticipation=dyn_on, carryover=dyn_on)
        for seed in range(args.seeds):
            sp = SimulatorParams(seed=7 + seed, dynamics=dyn)
            sim = (CampaignSimulator.from_order_lines(lines, sp) if lines is not None
                   else CampaignSimulator.synthetic(args.customers, sp))
            p = base_p.model_copy(update={"seed": base_p.seed + seed})
            t0 = time.perf_counter()
            logged = collect(sim, p)
            ev = evaluate(sim, p, transitions_fn=spark_fn, logged=logged)
            if args.ope:
                chk = off_policy_check(sim, p, ev, logged).assign(dynamics=dyn_on, seed=seed)
                ope_rows.append(chk)
                print(chk.round(0).to_string(index=False), flush=True)
            tot = ev.totals()
            base = tot["static_no_contact"]
            for k, r in ev.results.items():
                rows.append({"dynamics": dyn_on, "seed": seed, "policy": k, "profit": r.total,
                             "incremental": r.total - base, "contacts": sum(r.contacts), "coupons": sum(r.coupons),
                             "best_static": ev.results["best_static"].name if k == "best_static" else ""})
            print(f"dynamics={dyn_on} seed={seed}: {len(sim.customer_ids)} customers, {ev.transitions} transitions, "
                  f"fit {ev.fit_seconds:.1f} s, run {time.perf_counter() - t0:.1f} s; fqi {tot['fqi'] - base:,.0f} "
                  f"myopic {tot['myopic'] - base:,.0f} best static {tot['best_static'] - base:,.0f} "
                  f"oracle_wave {tot['oracle_wave'] - base:,.0f} (incremental over no contact)", flush=True)
    df = pd.DataFrame(rows)
    out = {"bench": "rl_waves", "shop": args.shop, "customers": int(len(sim.customer_ids)), "seeds": args.seeds,
           "logged_waves": base_p.logged_waves, "eval_waves": base_p.eval_waves, "gamma": base_p.gamma,
           "iterations": base_p.iterations, "regressor": reg.kind, "ridge_effect": reg.ridge_effect,
           "transitions": args.transitions,
           "figures": "simulator truth (expected profit per wave at the sampled state)"}
    if spark_s:
        out["spark_transitions_s_mean"] = round(float(np.mean(spark_s)), 2)
    if ope_rows:
        o = pd.concat(ope_rows, ignore_index=True)
        o["rel_error"] = (o["estimate"] - o["truth"]) / o["truth"]
        out["ope"] = {("dynamics_on" if d else "dynamics_off"): {
            f"{pol}.{est}": {"covered_seeds": int(g2["covers"].sum()), "seeds": int(len(g2)),
                             "mean_rel_error": round(float(g2["rel_error"].mean()), 4),
                             "mean_rel_halfwidth": round(float(((g2["high"] - g2["low"]) / 2 / g2["truth"]).mean()), 4),
                             "ess_last_mean": round(float(g2["ess_last"].mean()), 1)}
            for (pol, est), g2 in g.groupby(["policy", "estimator"])} for d, g in o.groupby("dynamics", sort=False)}
    for dyn_on, g in df.groupby("dynamics", sort=False):
        key = "dynamics_on" if dyn_on else "dynamics_off"
        piv = g.pivot(index="seed", columns="policy", values="profit")
        inc = g.pivot(index="seed", columns="policy", values="incremental")
        con = g.pivot(index="seed", columns="policy", values="contacts")
        res = {"profit": {k: _ci(piv[k]) for k in piv.columns},
               "incremental_profit": {k: _ci(inc[k]) for k in inc.columns},
               "contacts_mean": {k: round(float(con[k].mean()), 1) for k in con.columns},
               # Paired over seeds: the same logged waves and sampling stream for both.
               "fqi_minus_myopic": _ci(piv["fqi"] - piv["myopic"]),
               "fqi_vs_myopic_pct_of_profit": _ci(100 * (piv["fqi"] - piv["myopic"]) / piv["myopic"]),
               # Scaled by the myopic policy's mean increment (a per-seed ratio explodes near 0).
               "fqi_vs_myopic_pct_of_incremental": _ci(100 * (piv["fqi"] - piv["myopic"]) / abs(inc["myopic"].mean())),
               "best_static_action": g.loc[g["policy"] == "best_static", "best_static"].value_counts().to_dict()}
        out[key] = res
        print(f"\n{key}: mean over {args.seeds} seeds (true profit, incremental over no contact, contacts)")
        print(pd.DataFrame({"profit": piv.mean(), "incremental": inc.mean(), "incr_sd": inc.std(),
                            "contacts": con.mean()}).sort_values("profit", ascending=False).round(0).to_string())
    print(json.dumps(out))


if __name__ == "__main__":
    main()

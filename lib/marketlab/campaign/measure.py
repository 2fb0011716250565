"""Measured effect of each wave x arm (A/B against the wave's control) beside its prediction."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from scipy import stats

from marketlab.evaluation.stats import welch_from_stats


def measure(responses: DataFrame, wave: int, arms: list[str], no_contact: str, alpha: float) -> pd.DataFrame:
    """Measured incremental profit and order rate per customer of each e-mail arm of one wave.

    A targeted wave compares the customers sent arm ``a`` with those planned ``a`` and held
    out; the randomized wave 0 compares arm ``a`` with the no-contact arm.

    Returns:
        One row per arm: ``n_treated``, ``n_control``, ``measured``, ``measured_low``,
        ``measured_high``, ``p_value``, ``order_lift``, ``status`` (``ok``, ``no_holdout``,
        ``too_few``).
    """
    r = responses.where(F.col("wave") == wave)
    design = r.select("design").first()
    design = design[0] if design else "targeted"
    if design == "randomized":
        grp = F.when(F.col("treatment") == no_contact, F.lit("control")).otherwise(F.lit("treated"))
        arm = F.when(F.col("treatment") == no_contact, F.lit(None)).otherwise(F.col("treatment"))
        g = r.select(arm.alias("_arm"), grp.alias("_g"), "profit", F.col("ordered").cast("double").alias("_o"))
        ctrl = g.where(F.col("_g") == "control").agg(F.count(F.lit(1)).alias("n"), F.mean("profit").alias("m"),
                                                     F.var_samp("profit").alias("v"), F.mean("_o").alias("o")).first()
        stats_ = {(row["_arm"], "treated"): row for row in g.where(F.col("_g") == "treated").groupBy("_arm").agg(
            F.count(F.lit(1)).alias("n"), F.mean("profit").alias("m"), F.var_samp("profit").alias("v"),
            F.mean("_o").alias("o")).collect()}
        stats_.update({(a, "control"): ctrl for a in arms})
    else:
        g = r.select(F.col("arm").alias("_arm"), F.when(F.col("holdout"), "control").otherwise("treated").alias("_g"),
                     "profit", F.col("ordered").cast("double").alias("_o"))
        stats_ = {(row["_arm"], row["_g"]): row for row in g.groupBy("_arm", "_g").agg(
            F.count(F.lit(1)).alias("n"), F.mean("profit").alias("m"), F.var_samp("profit").alias("v"),
            F.mean("_o").alias("o")).collect()}
    rows = []
    for a in arms:
        t, c = stats_.get((a, "treated")), stats_.get((a, "control"))
        nt, ncn = (int(t["n"]) if t else 0), (int(c["n"]) if c and c["n"] else 0)
        row = {"wave": wave, "arm": a, "design": design, "n_treated": nt, "n_control": ncn}
        if nt >= 2 and ncn >= 2:
            res = welch_from_stats(t["m"], t["v"] or 0.0, nt, c["m"], c["v"] or 0.0, ncn, alpha)
            row.update(measured=res.effect, measured_low=res.ci_low, measured_high=res.ci_high, p_value=res.p_value,
                       order_lift=float(t["o"] - c["o"]), status="ok")
        else:
            row.update(measured=math.nan, measured_low=math.nan, measured_high=math.nan, p_value=math.nan,
                       order_lift=math.nan, status="no_holdout" if nt >= 2 else "too_few")
        rows.append(row)
    return pd.DataFrame(rows)


def predicted_cells(cells: dict[str, np.ndarray], cell_n: dict[str, tuple[int, int]], profit_var: dict[str, float],
                    arms: list[str], no_contact: str, level: float) -> pd.DataFrame:
    """Predicted per-customer effect of each arm's cell with a prediction interval.

    The interval adds the model's spread over bags and the sampling noise the A/B of
    the cell will have (profit variances from the training responses, the cell's sizes),
    so it is an interval for the *measured* effect.
    """
    z = stats.norm.ppf(0.5 + level / 2)
    rows = []
    for a in arms:
        ns, nh = cell_n[a]
        n = ns + nh
        if n == 0:
            rows.append({"arm": a, "predicted": math.nan, "predicted_low": math.nan, "predicted_high": math.nan})
            continue
        per = cells[a] / n
        var_model = float(np.var(per, ddof=1))
        var_sample = (profit_var[a] / ns if ns else math.inf) + (profit_var[no_contact] / nh if nh else math.inf)
        half = z * math.sqrt(var_model + var_sample)
        mid = float(per.mean())
        rows.append({"arm": a, "predicted": mid, "predicted_low": mid - half, "predicted_high": mid + half})
    return pd.DataFrame(rows)

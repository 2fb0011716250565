"""Pure computations of the report on small, already aggregated pandas frames.

Every function here is exact for its (binned) input, so tests can check it by hand:

* score bins -> ROC / precision-recall / reliability curves and the confusion matrix;
* uplift buckets -> Qini and uplift curves;
* flat MLflow metric dicts -> tidy frames (recommender metrics@k, OPE estimates, ...).
"""

from __future__ import annotations

import math
import re
from typing import Mapping

import numpy as np
import pandas as pd


# --- classification ------------------------------------------------------------------


def roc_from_bins(bins: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """ROC curve and AUC from score bins.

    Args:
        bins: One row per score bin: ``bin`` (orderable; higher = higher score), ``n``
            (rows), ``n_pos`` (positives). Rows sharing a bin are tied scores.

    Returns:
        ``(curve, auc)``: curve with ``fpr, tpr`` from (0, 0) to (1, 1), one point per bin
        (thresholds descending); AUC by trapezoids, i.e. ties count one half (the
        Mann-Whitney AUC of the binned scores).
    """
    b = bins.groupby("bin", as_index=False)[["n", "n_pos"]].sum().sort_values("bin", ascending=False)
    pos = b["n_pos"].to_numpy(float)
    neg = (b["n"] - b["n_pos"]).to_numpy(float)
    P, N = pos.sum(), neg.sum()
    if P == 0 or N == 0:
        raise ValueError("ROC needs both classes")
    tpr = np.concatenate([[0.0], np.cumsum(pos) / P])
    fpr = np.concatenate([[0.0], np.cumsum(neg) / N])
    return pd.DataFrame({"fpr": fpr, "tpr": tpr}), float(np.trapezoid(tpr, fpr) if hasattr(np, "trapezoid")
                                                        else np.trapz(tpr, fpr))


def pr_from_bins(bins: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Precision-recall points (one per bin, thresholds descending) and average precision.

    Average precision = sum over bins of (recall step) x precision at that bin.
    """
    b = bins.groupby("bin", as_index=False)[["n", "n_pos"]].sum().sort_values("bin", ascending=False)
    tp = np.cumsum(b["n_pos"].to_numpy(float))
    pred = np.cumsum(b["n"].to_numpy(float))
    P = tp[-1] if len(tp) else 0.0
    if P == 0:
        raise ValueError("precision-recall needs positives")
    precision = tp / pred
    recall = tp / P
    ap = float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))
    return pd.DataFrame({"recall": recall, "precision": precision}), ap


def calibration_from_bins(bins: pd.DataFrame, groups: int = 10) -> pd.DataFrame:
    """Reliability table in ``groups`` equal-width probability bins.

    Args:
        bins: ``n``, ``n_pos``, ``sum_prob`` per fine bin, plus ``p_mid`` (the bin's mid
            probability, used to assign it to a group).
        groups: Number of equal-width groups over [0, 1].

    Returns:
        ``group, n, mean_predicted, observed_rate`` for non-empty groups.
    """
    g = np.minimum((bins["p_mid"].to_numpy(float) * groups).astype(int), groups - 1)
    agg = bins.assign(group=g).groupby("group", as_index=False)[["n", "n_pos", "sum_prob"]].sum()
    agg = agg[agg["n"] > 0]
    return pd.DataFrame({"group": agg["group"], "n": agg["n"].astype(int),
                         "mean_predicted": agg["sum_prob"] / agg["n"],
                         "observed_rate": agg["n_pos"] / agg["n"]}).reset_index(drop=True)


def confusion(counts: pd.DataFrame) -> tuple[np.ndarray, dict[str, float]]:
    """2x2 confusion matrix (rows: actual 0/1, columns: predicted 0/1) and its rates.

    Args:
        counts: ``label``, ``prediction``, ``n``.
    """
    cm = np.zeros((2, 2), dtype=np.int64)
    for r in counts.itertuples(index=False):
        cm[int(r.label), int(r.prediction)] += int(r.n)
    tn, fp, fn, tp = cm.ravel()
    total = cm.sum()

    def div(a, b):
        return float(a) / float(b) if b else float("nan")

    precision, recall = div(tp, tp + fp), div(tp, tp + fn)
    f1 = div(2 * precision * recall, precision + recall) if precision == precision and recall == recall else float("nan")
    return cm, {"accuracy": div(tp + tn, total), "precision": precision, "recall": recall, "f1": f1,
                "specificity": div(tn, tn + fp), "positives": float(tp + fn), "rows": float(total)}


# --- uplift --------------------------------------------------------------------------


def qini_from_buckets(buckets: pd.DataFrame) -> pd.DataFrame:
    """Qini and uplift curves from buckets of customers ordered by predicted uplift.

    Args:
        buckets: ``bucket`` (0 = highest predicted uplift), ``n_t``, ``n_c`` (treated /
            control customers), ``y_t``, ``y_c`` (outcome sums).

    Returns:
        ``n, share, qini, uplift, random`` starting at (0, 0): cumulative over the buckets,
        ``qini = Y_t - Y_c N_t / N_c`` (0 while N_c = 0), ``uplift = (Y_t/N_t - Y_c/N_c) N``,
        ``random`` the straight line to the final Qini value.
    """
    b = buckets.sort_values("bucket")
    nt, nc = np.cumsum(b["n_t"].to_numpy(float)), np.cumsum(b["n_c"].to_numpy(float))
    yt, yc = np.cumsum(b["y_t"].to_numpy(float)), np.cumsum(b["y_c"].to_numpy(float))
    with np.errstate(divide="ignore", invalid="ignore"):
        qini = np.where(nc > 0, yt - yc * nt / nc, 0.0)
        rate_t = np.where(nt > 0, yt / nt, 0.0)
        rate_c = np.where(nc > 0, yc / nc, 0.0)
    n = nt + nc
    uplift = (rate_t - rate_c) * n
    total = n[-1] if len(n) else 0.0
    out = pd.DataFrame({"n": np.concatenate([[0.0], n]), "qini": np.concatenate([[0.0], qini]),
                        "uplift": np.concatenate([[0.0], uplift])})
    out["share"] = out["n"] / total if total else 0.0
    out["random"] = out["share"] * (qini[-1] if len(qini) else 0.0)
    return out


# --- MLflow metric dicts -> frames -------------------------------------------------------

_AT_K = re.compile(r"^(?P<metric>.+?)_at_(?P<k>\d+)$")


def recommend_metrics(metrics: Mapping[str, float]) -> pd.DataFrame:
    """``<protocol>.<model>.<metric>[_at_<k>]`` -> ``protocol, model, metric, k, value``.

    Protocols are ``temporal`` (time split) and ``hide`` (per-user random hide); ``k`` is
    NaN for metrics without a cut-off (``auc``).
    """
    rows = []
    for key, value in metrics.items():
        parts = key.split(".")
        if len(parts) != 3 or parts[0] not in ("temporal", "hide"):
            continue
        protocol, model, name = parts
        m = _AT_K.match(name)
        metric, k = (m["metric"], int(m["k"])) if m else (name, float("nan"))
        rows.append({"protocol": protocol, "model": model, "metric": metric, "k": k, "value": float(value)})
    return pd.DataFrame(rows, columns=["protocol", "model", "metric", "k", "value"])


def ope_estimates(metrics: Mapping[str, float]) -> pd.DataFrame:
    """``ope.<policy>.<estimator>.<value|lo|hi|diff|diff_lo|diff_hi|mde>`` -> one row per policy x estimator."""
    rows: dict[tuple[str, str], dict[str, float]] = {}
    for key, value in metrics.items():
        if not key.startswith("ope."):
            continue
        parts = key[4:].rsplit(".", 2)
        if len(parts) != 3:
            continue
        policy, estimator, col = parts
        rows.setdefault((policy, estimator), {})[col] = float(value)
    cols = ["policy", "estimator", "value", "lo", "hi", "diff", "diff_lo", "diff_hi", "mde"]
    out = pd.DataFrame([{"policy": p, "estimator": e, **v} for (p, e), v in rows.items()])
    for c in cols:
        if c not in out:
            out[c] = np.nan
    return out[cols].sort_values(["estimator", "value"], ascending=[True, False]).reset_index(drop=True)


def prefixed_metrics(metrics: Mapping[str, float], prefix: str, depth: int) -> pd.DataFrame:
    """Metrics ``<prefix>.<a>.<b>...`` with exactly ``depth`` parts after the prefix, as columns ``part0..``."""
    rows = []
    for key, value in metrics.items():
        if not key.startswith(prefix + "."):
            continue
        parts = key[len(prefix) + 1:].split(".")
        if len(parts) == depth:
            rows.append({**{f"part{i}": p for i, p in enumerate(parts)}, "value": float(value)})
    return pd.DataFrame(rows, columns=[*(f"part{i}" for i in range(depth)), "value"])


def model_metric_table(metrics: Mapping[str, float], prefix: str, columns: list[str] | None = None) -> pd.DataFrame:
    """``<prefix>.<model>.<metric>`` -> wide table, one row per model (``columns`` first, if given)."""
    long = prefixed_metrics(metrics, prefix, 2)
    if long.empty:
        return pd.DataFrame()
    wide = long.pivot_table(index="part0", columns="part1", values="value", aggfunc="first")
    order = [c for c in (columns or []) if c in wide.columns] + [c for c in wide.columns if c not in (columns or [])]
    wide = wide[order].reset_index().rename(columns={"part0": "model"})
    wide.columns.name = None
    return wide


def effect_metrics(metrics: Mapping[str, float], outcomes: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """``<arm>.<outcome>.<learner>.<metric>`` (effect run) -> ``arm, outcome, learner`` + metric columns."""
    rows: dict[tuple[str, str, str], dict[str, float]] = {}
    for key, value in metrics.items():
        parts = key.split(".")
        if len(parts) != 4 or parts[1] not in outcomes:
            continue
        arm, outcome, learner, metric = parts
        rows.setdefault((arm, outcome, learner), {})[metric] = float(value)
    out = pd.DataFrame([{"arm": a, "outcome": o, "learner": learner, **v} for (a, o, learner), v in rows.items()])
    if out.empty:
        return out
    return out.sort_values(["arm", "outcome", "learner"]).reset_index(drop=True)


def row_accounting(clean_metrics: Mapping[str, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Row accounting of the clean run: per source and per rule.

    Metrics ``<src>.bronze_rows``, ``<src>.rows.<silver>``, ``<src>.excluded.<reason>``,
    ``<src>.altered.<reason>`` (see :class:`marketlab.clean.audit.Accounting`).

    Returns:
        ``(summary, detail)``: summary has ``source, bronze_rows, silver_rows, excluded,
        altered, balanced``; detail has ``source, kind, name, rows`` (kind: silver /
        excluded / altered).
    """
    detail = []
    bronze: dict[str, float] = {}
    for key, value in clean_metrics.items():
        parts = key.split(".")
        if len(parts) == 2 and parts[1] == "bronze_rows":
            bronze[parts[0]] = float(value)
        elif len(parts) == 3 and parts[1] in ("rows", "excluded", "altered"):
            kind = "silver" if parts[1] == "rows" else parts[1]
            detail.append({"source": parts[0], "kind": kind, "name": parts[2], "rows": int(value)})
    det = pd.DataFrame(detail, columns=["source", "kind", "name", "rows"])
    summary = []
    for src, n in sorted(bronze.items()):
        d = det[det["source"] == src]
        s = {k: int(d.loc[d["kind"] == k, "rows"].sum()) for k in ("silver", "excluded", "altered")}
        summary.append({"source": src, "bronze_rows": int(n), "silver_rows": s["silver"], "excluded": s["excluded"],
                        "altered": s["altered"], "balanced": int(n) == s["silver"] + s["excluded"]})
    cols = ["source", "bronze_rows", "silver_rows", "excluded", "altered", "balanced"]
    return (pd.DataFrame(summary, columns=cols),
            det.sort_values(["source", "kind", "rows"], ascending=[True, True, False]).reset_index(drop=True))


def finite(v) -> bool:
    """Whether ``v`` is a finite number."""
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


# --- customer lifetime value -----------------------------------------------------------------

_HOLDOUT = re.compile(r"^holdout\.h(\d+)\.(count|spend)\.(mae|rmse|aggregate_error)\.(\w+?)(_lo|_hi)?$")
_GAIN = re.compile(r"^holdout\.h(\d+)\.(count|spend)\.rmse_gain_vs_historical(_lo|_hi)?$")


def value_holdout(metrics: Mapping[str, float], columns: tuple[str, ...] = ("mae", "rmse", "aggregate_error")) -> pd.DataFrame:
    """The value run's ``holdout.h<days>.<target>.<metric>.<predictor>[_lo|_hi]`` metrics as one row per
    window x target x predictor (``rmse_lo``/``rmse_hi``: bootstrap CI), plus the model's RMSE gain
    over the historical rate with its CI (``gain``, ``gain_lo``, ``gain_hi``; on the model rows).
    """
    rows: dict[tuple[int, str, str], dict[str, float]] = {}
    gains: dict[tuple[int, str], dict[str, float]] = {}
    for key, value in metrics.items():
        m = _HOLDOUT.match(key)
        if m:
            h, target, metric, pred, ci = m.groups()
            rows.setdefault((int(h), target, pred), {})[metric + (ci or "")] = float(value)
            continue
        g = _GAIN.match(key)
        if g:
            h, target, ci = g.groups()
            gains.setdefault((int(h), target), {})["gain" + (ci or "")] = float(value)
    if not rows:
        return pd.DataFrame()
    order = {"model": 0, "historical": 1, "population": 2}
    out = pd.DataFrame([{"holdout_days": h, "target": t, "predictor": p, **v,
                         **(gains.get((h, t), {}) if p == "model" else {})} for (h, t, p), v in rows.items()])
    cols = ["holdout_days", "target", "predictor"]
    for c in columns:
        cols += [x for x in (c, f"{c}_lo", f"{c}_hi") if x in out]
    cols += [c for c in ("gain", "gain_lo", "gain_hi") if c in out]
    out = out.assign(_o=out["predictor"].map(order).fillna(9))
    return out.sort_values(["holdout_days", "target", "_o"])[cols].reset_index(drop=True)


def value_calibration(csvs: Mapping[str, pd.DataFrame]) -> dict[int, pd.DataFrame]:
    """``calibration_<days>d.csv`` artifacts of the value run -> ``{days: frame}``, shortest window first."""
    out = {}
    for name, df in csvs.items():
        m = re.match(r"^calibration_(\d+)d\.csv$", name)
        if m and {"frequency", "actual", "model"} <= set(df.columns):
            out[int(m.group(1))] = df.sort_values("frequency").reset_index(drop=True)
    if not out:
        raise ValueError(f"no calibration_<days>d.csv with frequency / actual / model columns in {sorted(csvs)}")
    return dict(sorted(out.items()))


def tier_mix(profiles: pd.DataFrame, order: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """Customers per value tier and segment from the profiles' ``value_tier_mix`` (tier -> customers) maps.

    One row per profile row (same order), one column per tier: ``order`` first (the conf's
    tiers, highest first), then any other tier by name; empty without the column or values.
    """
    if "value_tier_mix" not in profiles:
        return pd.DataFrame()
    maps = [dict(m) if isinstance(m, Mapping) else dict(m or []) for m in profiles["value_tier_mix"]]
    names = {k for m in maps for k in m}
    if not names:
        return pd.DataFrame()
    cols = [t for t in order if t in names] + sorted(names - set(order))
    return pd.DataFrame([{c: int(m.get(c, 0)) for c in cols} for m in maps], columns=cols)

"""Calibration/holdout evaluation of the purchase and spend predictions against naive baselines.

Per customer of the calibration window and per holdout window of h days:

- ``model``: BG/NBD expected purchases, times the Gamma-Gamma expected order value for spend;
- ``historical``: the customer's own repeat rate, frequency / T x h (times the customer's
  mean purchase value for spend);
- ``population``: one pooled rate for everybody, sum(frequency) / sum(T) x h (times the
  pooled mean purchase value).

Metrics: MAE and RMSE per customer, aggregate error (sum predicted / sum actual - 1), and the
RMSE gain of the model over the historical rate (1 - RMSE_model / RMSE_historical), each
with a 95 % percentile interval from a bootstrap over customers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from marketlab.value.summary import AGE, EXP_PURCHASES, EXP_SPEND, FREQUENCY, MEAN_VALUE

PREDICTORS = ("model", "historical", "population")


@dataclass
class Evaluation:
    """Holdout metrics of one calibration cutoff.

    Attributes:
        cutoff: First holdout day (calibration is everything before it).
        n_customers: Calibration customers evaluated.
        metrics: Flat ``{name: value}`` (e.g. ``h90.count.rmse.model``, ``..._lo``/``_hi``).
        calibration: Per holdout window, mean actual vs predicted purchases by calibration frequency.
    """

    cutoff: str
    n_customers: int
    metrics: dict[str, float] = field(default_factory=dict)
    calibration: dict[int, pd.DataFrame] = field(default_factory=dict)

    def gain(self, horizon: int) -> float:
        """Relative holdout purchase-count RMSE gain of the model over the historical rate."""
        return self.metrics[f"h{horizon}.count.rmse_gain_vs_historical"]


def baselines(pdf: pd.DataFrame, horizon: int) -> dict[str, dict[str, np.ndarray]]:
    """Predicted purchases and spend per customer, by predictor."""
    x, age, mv = (pdf[c].to_numpy(float) for c in (FREQUENCY, AGE, MEAN_VALUE))
    hist = x / age * horizon
    pooled_rate = x.sum() / age.sum()
    pooled_value = float(np.sum(mv * (x + 1)) / np.sum(x + 1))
    pop = np.full_like(x, pooled_rate * horizon)
    return {
        "count": {"model": pdf[f"{EXP_PURCHASES}_{horizon}"].to_numpy(float), "historical": hist, "population": pop},
        "spend": {"model": pdf[f"{EXP_SPEND}_{horizon}"].to_numpy(float), "historical": hist * mv,
                  "population": pop * pooled_value},
    }


def _point(pred: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    err = pred - actual
    tot = actual.sum()
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt(np.mean(err ** 2))),
            "aggregate_error": float(pred.sum() / tot - 1.0) if tot > 0 else float("nan")}


def evaluate(pdf: pd.DataFrame, cutoff: str, horizons: list[int], bootstrap: int, seed: int,
             max_frequency: int) -> Evaluation:
    """Metrics with bootstrap intervals and the calibration tables.

    Args:
        pdf: One row per calibration customer: the summary, ``expected_*_<h>`` and
            ``actual_*_<h>`` (0 for customers without holdout purchases).
        cutoff: The calibration cutoff (for the record).
        horizons: Holdout windows in days.
        bootstrap: Resamples over customers (0: no intervals).
        seed: Bootstrap seed.
        max_frequency: Calibration frequencies at or above it are pooled.
    """
    n = len(pdf)
    ev = Evaluation(cutoff=cutoff, n_customers=n)
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, n, n) for _ in range(bootstrap)]
    for h in horizons:
        preds = baselines(pdf, h)
        actual = {"count": pdf[f"actual_purchases_{h}"].to_numpy(float), "spend": pdf[f"actual_spend_{h}"].to_numpy(float)}
        for target, by in preds.items():
            a = actual[target]
            for name, p in by.items():
                for k, v in _point(p, a).items():
                    ev.metrics[f"h{h}.{target}.{k}.{name}"] = v
            gain = 1.0 - ev.metrics[f"h{h}.{target}.rmse.model"] / ev.metrics[f"h{h}.{target}.rmse.historical"]
            ev.metrics[f"h{h}.{target}.rmse_gain_vs_historical"] = gain
            if draws:
                boot: dict[str, list[float]] = {}
                for idx in draws:
                    pts = {name: _point(p[idx], a[idx]) for name, p in by.items()}
                    for name, pt in pts.items():
                        for k, v in pt.items():
                            boot.setdefault(f"{k}.{name}", []).append(v)
                    boot.setdefault("rmse_gain_vs_historical", []).append(1.0 - pts["model"]["rmse"] / pts["historical"]["rmse"])
                for k, vals in boot.items():
                    lo, hi = np.nanpercentile(vals, [2.5, 97.5])
                    ev.metrics[f"h{h}.{target}.{k}_lo"] = float(lo)
                    ev.metrics[f"h{h}.{target}.{k}_hi"] = float(hi)
        freq = np.minimum(pdf[FREQUENCY].to_numpy(int), max_frequency)
        ev.calibration[h] = (pd.DataFrame({"frequency": freq, "actual": actual["count"], "model": preds["count"]["model"],
                                           "historical": preds["count"]["historical"]})
                             .groupby("frequency").agg(customers=("actual", "size"), actual=("actual", "mean"),
                                                       model=("model", "mean"), historical=("historical", "mean"))
                             .reset_index())
    return ev


def calibration_figure(ev: Evaluation, max_frequency: int):
    """Mean holdout purchases vs calibration frequency: actual, model, historical rate (one panel per window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hs = sorted(ev.calibration)
    fig, axes = plt.subplots(1, len(hs), figsize=(5 * len(hs), 3.6), squeeze=False)
    for ax, h in zip(axes[0], hs):
        cal = ev.calibration[h]
        ax.plot(cal["frequency"], cal["actual"], marker="o", label="actual")
        ax.plot(cal["frequency"], cal["model"], marker="s", label="BG/NBD")
        ax.plot(cal["frequency"], cal["historical"], marker="^", ls="--", label="historical rate")
        ax.set_xlabel(f"repeat purchases before the cutoff ({max_frequency} = {max_frequency}+)")
        ax.set_ylabel(f"mean purchases in the next {h} days")
        ax.set_title(f"holdout {h} d (cutoff {ev.cutoff}, RMSE gain {ev.gain(h):+.1%})")
        ax.legend()
    fig.tight_layout()
    return fig

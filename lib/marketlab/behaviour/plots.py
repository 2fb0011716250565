"""Figures of a purchase-intent run (matplotlib Agg; sklearn's displays for ROC / PR / confusion)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay  # noqa: E402


def curves(test_scores: pd.DataFrame, label_col: str, score_col: str, name: str) -> plt.Figure:
    """ROC and precision-recall curves of the selected model on the test set."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.5))
    RocCurveDisplay.from_predictions(test_scores[label_col], test_scores[score_col], name=name, ax=a)
    a.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    PrecisionRecallDisplay.from_predictions(test_scores[label_col], test_scores[score_col], name=name, ax=b)
    b.axhline(test_scores[label_col].mean(), ls="--", color="grey", lw=1, label="base rate")
    fig.tight_layout()
    return fig


def calibration(table: pd.DataFrame, name: str) -> plt.Figure:
    """Reliability diagram from :func:`marketlab.behaviour.metrics.calibration_table`."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect")
    ax.plot(table["mean_predicted"], table["fraction_positive"], marker="o", label=name)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed purchase rate")
    ax.legend()
    fig.tight_layout()
    return fig


def confusion(m: dict[str, float], name: str) -> plt.Figure:
    """Confusion matrix (rows: actual 0/1, columns: predicted 0/1)."""
    cm = np.array([[m["tn"], m["fp"]], [m["fn"], m["tp"]]], dtype=int)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ConfusionMatrixDisplay(cm, display_labels=["no purchase", "purchase"]).plot(ax=ax, colorbar=False)
    ax.set_title(f"{name} @ {m['threshold']:.2f}")
    fig.tight_layout()
    return fig


def importance(table: pd.DataFrame, name: str, top: int = 20) -> plt.Figure:
    """Horizontal bar chart of the top features."""
    sub = table.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(sub) + 1))
    ax.barh(sub["feature"], sub["importance"])
    ax.set_title(f"feature importance ({name})")
    fig.tight_layout()
    return fig


def threshold_cost(costs: pd.DataFrame, chosen: float) -> plt.Figure:
    """Expected cost per session against the threshold, with the chosen one marked."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(costs["threshold"], costs["cost"])
    ax.axvline(chosen, color="tab:red", ls="--", label=f"chosen {chosen:.2f}")
    ax.set_xlabel("threshold")
    ax.set_ylabel("expected cost per session (valid)")
    ax.legend()
    fig.tight_layout()
    return fig

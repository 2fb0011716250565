"""Figures of a campaign evaluation (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def forest_plot(rows: pd.DataFrame, metrics: list[str], segment: str = "all", title: str = "") -> plt.Figure:
    """Effect and (1 - alpha) interval per arm and metric, one panel per metric.

    Args:
        rows: Evaluation rows (``effect, ci_low, ci_high, arm, metric, segment``).
        metrics: Metrics to draw (one panel each).
        segment: Segment to draw (``'all'`` = overall).
        title: Figure title.

    Returns:
        The figure (the caller logs and closes it).
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 0.6 + 0.5 * max(1, rows["arm"].nunique())),
                             squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        sub = rows[(rows["metric"] == metric) & (rows["segment"] == segment)].sort_values("arm")
        y = range(len(sub))
        ax.errorbar(sub["effect"], list(y), xerr=[(sub["effect"] - sub["ci_low"]).clip(lower=0), (sub["ci_high"] - sub["effect"]).clip(lower=0)],
                    fmt="o", capsize=4)
        ax.axvline(0.0, color="grey", lw=1, ls="--")
        ax.set_yticks(list(y), sub["arm"].tolist())
        ax.set_title(metric)
    fig.suptitle(title or f"effect vs control ({segment})")
    fig.tight_layout()
    return fig


def segment_plot(rows: pd.DataFrame, metric: str, arm: str) -> plt.Figure:
    """Per-segment effects of one arm and metric, with intervals, against the overall effect."""
    sub = rows[(rows["metric"] == metric) & (rows["arm"] == arm)].sort_values("segment")
    fig, ax = plt.subplots(figsize=(7, 0.8 + 0.3 * len(sub)))
    y = list(range(len(sub)))
    ax.errorbar(sub["effect"], y, xerr=[(sub["effect"] - sub["ci_low"]).clip(lower=0), (sub["ci_high"] - sub["effect"]).clip(lower=0)], fmt="o", capsize=3)
    overall = sub[sub["segment"] == "all"]["effect"]
    if len(overall):
        ax.axvline(float(overall.iloc[0]), color="tab:red", lw=1, label="overall")
        ax.legend(loc="lower right")
    ax.axvline(0.0, color="grey", lw=1, ls="--")
    ax.set_yticks(y, sub["segment"].tolist())
    ax.set_title(f"{arm}: {metric} by segment")
    fig.tight_layout()
    return fig


def log_evaluation(res) -> None:
    """Log an evaluation's rows and figures to the active MLflow run (under ``evaluation/``).

    Args:
        res: A :class:`~marketlab.evaluation.ab.CampaignEvaluation`.
    """
    import mlflow

    from marketlab.evaluation.ab import TESTED_METRICS

    mlflow.log_text(res.rows.to_csv(index=False), "evaluation/campaign_evaluations.csv")
    mlflow.log_figure(forest_plot(res.rows, list(TESTED_METRICS) + ["roi"]), "evaluation/forest.png")
    for arm in sorted(res.rows["arm"].unique()):
        mlflow.log_figure(segment_plot(res.rows, "conversion_rate", arm), f"evaluation/segments_{arm.replace(' ', '_')}.png")
    plt.close("all")

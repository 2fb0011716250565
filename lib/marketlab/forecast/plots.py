"""Backtest figures for MLflow (matplotlib, headless)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def metrics_figure(summary: pd.DataFrame):
    """Bars of MASE, WAPE and pinball loss per model (all cutoffs) and MASE per cutoff."""
    overall = summary[summary["cutoff"].isna()].set_index("model")
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for ax, m in zip(axes[:3], ["mase", "wape", "pinball"]):
        overall[m].plot.bar(ax=ax, color=["C1" if i == "lstm" else "C0" for i in overall.index])
        ax.set_title(m.upper() if m != "pinball" else "pinball (P50+P90)/2")
        ax.tick_params(axis="x", rotation=30)
    per = summary[summary["cutoff"].notna()].pivot(index="cutoff", columns="model", values="mase")
    per.plot(ax=axes[3], marker="o")
    axes[3].set_title("MASE per cutoff")
    fig.tight_layout()
    return fig



def loss_figure(losses: dict[str, list[float]]):
    """Training loss per epoch for each trained model."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, loss in losses.items():
        ax.plot(range(1, len(loss) + 1), loss, marker="o", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("pinball loss (scaled)")
    ax.legend()
    fig.tight_layout()
    return fig

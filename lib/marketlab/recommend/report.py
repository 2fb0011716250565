"""Plots and MLflow logging of a recommender run (figures returned, never written here)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

_METRICS = ("precision", "recall", "map", "ndcg")


def metric_curves(results: dict[str, dict[str, float]], ks: list[int], title: str) -> plt.Figure:
    """metric@k curves, one panel per metric, one line per model."""
    fig, axes = plt.subplots(1, len(_METRICS), figsize=(4 * len(_METRICS), 3.5))
    for ax, metric in zip(axes, _METRICS):
        for model, res in results.items():
            ys = [res.get(f"{metric}_at_{k}", float("nan")) for k in ks]
            ax.plot(ks, ys, marker="o", label=model)
        ax.set_xscale("log")
        ax.set_xlabel("k")
        ax.set_title(f"{metric}@k")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig

"""MLflow logging of a segments run: silhouette metrics and the silhouette-per-k figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402

from marketlab.segments.run import SegmentsResult  # noqa: E402


def silhouette_figure(res: SegmentsResult) -> plt.Figure:
    """Silhouette per k tried, the chosen k marked."""
    fig, ax = plt.subplots(figsize=(5, 3))
    ks = sorted(res.silhouettes)
    ax.plot(ks, [res.silhouettes[k] for k in ks], marker="o")
    ax.axvline(res.k, ls="--", c="grey")
    ax.set_xlabel("k")
    ax.set_ylabel("silhouette")
    ax.set_title(f"k-means on scaled RFM (as of {res.as_of})")
    fig.tight_layout()
    return fig


def log_result(res: SegmentsResult) -> None:
    """Log the metrics and ``segments/silhouette.png`` to the active run."""
    mlflow.log_metrics(res.metrics())
    fig = silhouette_figure(res)
    mlflow.log_figure(fig, "segments/silhouette.png")
    plt.close(fig)

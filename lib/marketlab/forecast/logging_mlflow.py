"""What the forecast job logs to its MLflow run: metrics, figures, the model, the gate."""

from __future__ import annotations

import logging
import math

import mlflow
import numpy as np
import pandas as pd

from marketlab.forecast.backtest import METRICS
from marketlab.forecast.plots import loss_figure, metrics_figure
from marketlab.forecast.run import BacktestResult, TrainedModel
from marketlab.tracking import KERAS_MODEL_REQUIREMENTS, pinned_requirements, promote_if_better

log = logging.getLogger(__name__)


def log_backtest(bt: BacktestResult) -> dict[str, float]:
    """Log backtest metrics (``bt.<model>.<metric>``, per cutoff as steps), gains and figures.

    Returns:
        The flat metric dict logged (overall rows only).
    """
    flat: dict[str, float] = {}
    cut_index = {c: i for i, c in enumerate(bt.cutoffs)}
    for row in bt.summary.itertuples(index=False):
        for m in METRICS:
            v = float(getattr(row, m))
            if not math.isfinite(v):
                continue
            if pd.isna(row.cutoff):
                flat[f"bt.{row.model}.{m}"] = v
            else:
                mlflow.log_metric(f"bt.{row.model}.{m}.by_cutoff", v, step=cut_index.get(row.cutoff, 0))
    for base, (gain, lo, hi) in bt.gains.items():
        if math.isfinite(gain):
            flat.update({f"bt.mase_gain_vs_{base}": gain, f"bt.mase_gain_vs_{base}.ci_low": lo,
                         f"bt.mase_gain_vs_{base}.ci_high": hi})
    if bt.fallback is not None:
        for row in bt.fallback.itertuples(index=False):
            flat.update({f"bt.not_selected.{row.model}.{m}": float(getattr(row, m)) for m in METRICS
                         if math.isfinite(float(getattr(row, m)))})
            flat[f"bt.not_selected.{row.model}.n_series"] = float(row.n_series)
    mlflow.log_metrics(flat)
    mlflow.log_figure(metrics_figure(bt.summary), "backtest/metrics.png")
    mlflow.log_text(bt.summary.to_csv(index=False), "backtest/summary.csv")
    return flat


def log_training(models: dict[str, TrainedModel]) -> None:
    """Loss curves, throughput and replica consistency of each training."""
    for name, m in models.items():
        mlflow.log_metrics({f"train.{name}.samples_per_s": m.samples_per_second, f"train.{name}.seconds": m.seconds,
                            f"train.{name}.launch_seconds": m.launch_seconds,
                            f"train.{name}.final_loss": m.loss[-1], f"train.{name}.replica_max_divergence": m.max_divergence,
                            f"train.{name}.n_series": m.n_series})
    mlflow.log_figure(loss_figure({k: m.loss for k, m in models.items()}), "training/loss.png")


def register_model(model: TrainedModel, model_name: str):
    """Log the Keras model (built from rank 0's weights) and register a new version.

    Returns:
        The registered ModelVersion.
    """
    from mlflow.models import infer_signature

    from marketlab.forecast.model import build_model

    keras_model = build_model(**model.config)
    keras_model.set_weights(model.weights)
    example = np.zeros((2, model.config["window"], model.config["n_features"]), np.float32)
    sig = infer_signature(example, keras_model.predict(example, verbose=0))
    info = mlflow.tensorflow.log_model(keras_model, name="model", signature=sig, registered_model_name=model_name,
                                       pip_requirements=pinned_requirements(*KERAS_MODEL_REQUIREMENTS))
    client = mlflow.MlflowClient()
    versions = client.search_model_versions(f"name='{model_name}' and run_id='{mlflow.active_run().info.run_id}'")
    mv = max(versions, key=lambda v: int(v.version))
    log.info("registered %s version %s (%s)", model_name, mv.version, info.model_uri)
    return mv


def gate(model_name: str, version: str, bt: BacktestResult, metric: str, margin: float, require_beats_baseline: bool) -> str:
    """Move the ``champion`` alias to ``version`` only through the metric gate.

    The candidate must (optionally) beat seasonal naive on MASE in this run's backtest and
    beat the current champion's backtest ``metric`` by ``margin``.

    Returns:
        ``promoted``, ``rejected`` (champion better) or ``rejected_baseline``.
    """
    client = mlflow.MlflowClient()
    value = bt.metric("lstm", metric)
    if require_beats_baseline and not bt.metric("lstm", "mase") < bt.metric("seasonal_naive", "mase"):
        client.set_model_version_tag(model_name, version, "gate.result", "rejected_baseline")
        return "rejected_baseline"
    moved = promote_if_better(model_name, version, metric, value, higher_is_better=False, margin=margin)
    return "promoted" if moved else "rejected"



def log_and_register(out, p) -> dict:
    """Log a trained run (backtest, training), register its model and pass it through the gate.

    Args:
        out: The :class:`~marketlab.forecast.run.ForecastRun`.
        p: :class:`~marketlab.forecast.params.ForecastParams`.

    Returns:
        ``version`` (registered), ``metrics`` (backtest) and ``gate`` (its outcome).
    """
    bt, final = out.backtest, out.final
    metrics = log_backtest(bt)
    log_training({"backtest": bt.model, **({"final": final} if final else {})})
    mv = register_model(final or bt.model, p.model_name)
    gate_result = gate(p.model_name, mv.version, bt, p.gate_metric, p.gate_margin, p.require_beats_baseline)
    return {"version": mv.version, "metrics": metrics, "gate": gate_result}

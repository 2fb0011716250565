"""What the sequence job logs to its MLflow run: metrics with CIs, tables, the models, the gate."""

from __future__ import annotations

import logging

import mlflow

from marketlab.sequence.run import SequenceResult
from marketlab.tracking import KERAS_MODEL_REQUIREMENTS, pinned_requirements, promote_if_better

log = logging.getLogger(__name__)


def log_result(res: SequenceResult) -> dict[str, float]:
    """Flat metrics (validation and test per model with CIs, gains, propensity, training) and the tables."""
    flat = res.flat_metrics()
    mlflow.log_metrics(flat)
    mlflow.log_params({"split." + k: v for k, v in res.split.describe().items()} | {"served": res.served,
                                                                                  "best_baseline": res.best_baseline})
    mlflow.log_text(res.validation.to_csv(index=False), "evaluation/validation.csv")
    mlflow.log_text(res.test.to_csv(index=False), "evaluation/test.csv")
    return flat


def register(res: SequenceResult, kind: str, model_name: str):
    """Log one trained model (rank 0's best weights) as a Keras model and register a version."""
    from marketlab.sequence.models import build

    m = res.models[kind]
    keras_model = build(m.kind, m.config)
    keras_model.set_weights(m.weights)
    mlflow.tensorflow.log_model(keras_model, name=kind, registered_model_name=model_name,
                                pip_requirements=pinned_requirements(*KERAS_MODEL_REQUIREMENTS))
    client = mlflow.MlflowClient()
    versions = client.search_model_versions(f"name='{model_name}' and run_id='{mlflow.active_run().info.run_id}'")
    return max(versions, key=lambda v: int(v.version))


def gate(res: SequenceResult, kind: str, model_name: str, version: str, metric: str, margin: float) -> str:
    """Move ``champion`` to ``version`` only if it beats this run's best baseline on validation
    and the current champion's validation ``metric`` by ``margin``.

    Returns:
        ``promoted``, ``rejected`` (champion better) or ``rejected_baseline``.
    """
    value = res.metric("val", kind, metric)
    if not value > res.metric("val", res.best_baseline, metric):
        mlflow.MlflowClient().set_model_version_tag(model_name, version, "gate.result", "rejected_baseline")
        log.info("%s v%s not promoted: validation %s %.4f does not beat %s %.4f", model_name, version, metric, value,
                 res.best_baseline, res.metric("val", res.best_baseline, metric))
        return "rejected_baseline"
    return "promoted" if promote_if_better(model_name, version, f"val_{metric}", value, margin=margin) else "rejected"

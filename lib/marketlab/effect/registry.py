"""Log a fitted uplift learner to MLflow as a pyfunc model and register it behind a metric gate."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow
import pandas as pd

from marketlab.effect.learners import FittedLearner
from marketlab.tracking import pinned_requirements


class SparkUpliftModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: loads the learner's Spark PipelineModels, returns predicted uplift.

    ``predict`` takes a pandas frame of customer features and needs an active Spark
    session (the models are Spark ML pipelines; scoring at scale goes through the job).
    """

    def load_context(self, context):  # noqa: D102
        from pyspark.ml import PipelineModel

        root = Path(context.artifacts["learner"])
        meta = json.loads((root / "learner.json").read_text())
        self.learner = FittedLearner(name=meta["name"], binary=meta["binary"], propensity=meta["propensity"],
                                     models={r: PipelineModel.load(str(root / r)) for r in meta["roles"]})

    def predict(self, context, model_input: pd.DataFrame, params=None):  # noqa: D102
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
        if spark is None:
            raise RuntimeError("SparkUpliftModel needs an active Spark session")
        out = self.learner.predict(spark.createDataFrame(model_input), "uplift").toPandas()
        return out["uplift"].to_numpy()


def save_learner(fl: FittedLearner, path: Path) -> Path:
    """Write the learner's pipelines and metadata to a local folder."""
    path.mkdir(parents=True, exist_ok=True)
    for role, pm in fl.models.items():
        pm.write().overwrite().save(str(path / role))
    (path / "learner.json").write_text(json.dumps(
        {"name": fl.name, "binary": fl.binary, "propensity": fl.propensity, "roles": sorted(fl.models)}))
    return path


def log_and_register(fl: FittedLearner, artifact_path: str, model_name: str) -> str:
    """Log ``fl`` under the active run and register a new version of ``model_name``.

    Returns:
        The new model version (string).
    """
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_learner(fl, Path(tmp) / "learner")
        info = mlflow.pyfunc.log_model(name=artifact_path, python_model=SparkUpliftModel(),
                                       artifacts={"learner": str(folder)}, registered_model_name=model_name,
                                       pip_requirements=pinned_requirements("pyspark", "pandas"))
    return str(info.registered_model_version)

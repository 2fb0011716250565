"""The fitted value model as an MLflow pyfunc (seven numbers in a JSON artifact), registered behind a gate."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow
import pandas as pd

from marketlab.tracking import pinned_requirements, promote_if_better
from marketlab.value import models as M
from marketlab.value.summary import AGE, CLV, EXP_ORDER_VALUE, EXP_PURCHASES, EXP_SPEND, FREQUENCY, MONETARY, P_ALIVE, RECENCY


class CustomerValueModel(mlflow.pyfunc.PythonModel):
    """pyfunc: (frequency, recency, T, monetary) per row -> P(alive), expected purchases/spend, CLV.

    The horizon and CLV settings are the ones the model was logged with; at scale the stage
    scores in Spark with the same functions (:func:`marketlab.value.summary.score`).
    """

    def load_context(self, context):  # noqa: D102
        meta = json.loads(Path(context.artifacts["params"]).read_text())
        self.bg = M.BGNBD(**meta["bgnbd"])
        self.gg = M.GammaGamma(**meta["gamma_gamma"])
        self.clv = meta["clv"]

    def predict(self, context, model_input: pd.DataFrame, params=None):  # noqa: D102
        x, t_x, age, mx = (model_input[c].to_numpy(float) for c in (FREQUENCY, RECENCY, AGE, MONETARY))
        h = float(self.clv["horizon_days"])
        n = M.expected_purchases(self.bg, h, x, t_x, age)
        aov = M.expected_spend(self.gg, x, mx)
        clv = M.discounted_clv(self.bg, self.gg, x, t_x, age, mx, h, float(self.clv["period_days"]),
                               self.clv["discount_per_period"], self.clv["margin"])
        return pd.DataFrame({P_ALIVE: M.p_alive(self.bg, x, t_x, age), EXP_PURCHASES: n, EXP_ORDER_VALUE: aov,
                             EXP_SPEND: n * aov, CLV: clv})


def log_and_register(bg: M.BGNBD, gg: M.GammaGamma, clv: dict, model_name: str) -> str:
    """Log the model under the active run and register a new version; returns the version."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "value_model.json"
        path.write_text(json.dumps({"bgnbd": bg.as_dict(), "gamma_gamma": gg.as_dict(), "clv": clv}, indent=2))
        info = mlflow.pyfunc.log_model(name="value_model", python_model=CustomerValueModel(),
                                       artifacts={"params": str(path)}, registered_model_name=model_name,
                                       pip_requirements=pinned_requirements("numpy", "pandas", "scipy"))
    return str(info.registered_model_version)


def gate(model_name: str, version: str, holdout_rmse: float, beats_historical: bool, margin: float) -> str:
    """Move ``champion`` to ``version`` if it beats the historical-rate baseline and the champion's RMSE.

    Returns:
        ``promoted``, ``rejected`` (champion better) or ``rejected_baseline``.
    """
    if not beats_historical:
        mlflow.MlflowClient().set_model_version_tag(model_name, version, "gate.result", "rejected_baseline")
        return "rejected_baseline"
    moved = promote_if_better(model_name, version, "holdout_count_rmse", holdout_rmse, higher_is_better=False, margin=margin)
    return "promoted" if moved else "rejected"

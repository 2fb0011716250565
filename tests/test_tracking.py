"""MLflow helpers of marketlab.tracking that need no job around them."""

from importlib.metadata import version

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from marketlab.tracking import SPARK_MODEL_REQUIREMENTS, pinned_requirements, promote_if_better


def test_pins_are_the_installed_versions_in_order_and_skip_what_is_missing():
    assert pinned_requirements("pyspark", "no-such-dist-marketlab", "numpy") == [
        f"pyspark=={version('pyspark')}", f"numpy=={version('numpy')}"]
    assert [p.split("==")[0] for p in pinned_requirements(*SPARK_MODEL_REQUIREMENTS)] == list(SPARK_MODEL_REQUIREMENTS)


@pytest.fixture()
def registry(tmp_path):
    """A real MLflow store (SQLite) with one registered model and no versions yet."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    old = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient()
    client.create_registered_model("m")
    (tmp_path / "model").mkdir()

    def new_version() -> str:
        return client.create_model_version("m", source=str(tmp_path / "model")).version

    yield client, new_version
    mlflow.set_tracking_uri(old)
    mlflow.set_registry_uri(old)


def test_the_gate_never_promotes_a_missing_value_and_replaces_a_champion_without_one(registry):
    client, new_version = registry
    v1 = new_version()
    # No champion yet, but no value either: nothing moves.
    assert promote_if_better("m", v1, "auc", float("nan")) is False
    assert client.get_model_version("m", v1).tags["gate.result"] == "rejected_no_value"
    assert client.get_registered_model("m").aliases == {}
    v2 = new_version()
    assert promote_if_better("m", v2, "auc", 0.70) is True
    v3 = new_version()
    assert promote_if_better("m", v3, "auc", 0.69) is False  # worse
    assert promote_if_better("m", new_version(), "auc", float("nan")) is False
    assert client.get_model_version_by_alias("m", "champion").version == v2
    # a champion whose value was NaN (tagged before this gate existed) loses to any value
    client.set_model_version_tag("m", v2, "gate.auc", "nan")
    v5 = new_version()
    assert promote_if_better("m", v5, "auc", 0.10) is True
    assert client.get_model_version_by_alias("m", "champion").version == v5
    assert client.get_model_version("m", v5).tags == {"gate.auc": "0.1", "gate.result": "promoted"}

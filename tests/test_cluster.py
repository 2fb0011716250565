"""The loopback cluster's secret files and the MLflow credentials read from them (no cluster)."""

from __future__ import annotations

import configparser
import stat

from marketlab.cluster import ensure_secrets, mlflow_credentials


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secrets_are_private_made_once_and_reused(tmp_path):
    first = ensure_secrets(tmp_path, env={})
    assert _mode(tmp_path / "secrets") == 0o700
    assert {name: _mode(p) for name, p in first.items()} == {"spark": 0o600, "mlflow": 0o600, "flask_key": 0o600}
    texts = {name: p.read_text() for name, p in first.items()}
    assert "spark.authenticate        true" in texts["spark"] and "spark.acls.enable         true" in texts["spark"]
    first["mlflow"].chmod(0o644)  # loosened by hand: set back, content kept
    again = ensure_secrets(tmp_path, env={})
    assert {name: p.read_text() for name, p in again.items()} == texts
    assert _mode(again["mlflow"]) == 0o600
    other = ensure_secrets(tmp_path / "other", env={})
    assert other["spark"].read_text() != texts["spark"]  # a new root gets a new secret


def test_mlflow_credentials_come_from_the_environment_or_the_generated_file(tmp_path):
    assert mlflow_credentials(tmp_path, env={}) == {}
    paths = ensure_secrets(tmp_path, env={})
    ini = configparser.ConfigParser()
    ini.read(paths["mlflow"])
    assert ini["mlflow"]["database_uri"] == f"sqlite:///{tmp_path.resolve() / 'mlflow-auth.db'}"
    assert mlflow_credentials(tmp_path, env={}) == {"MLFLOW_TRACKING_USERNAME": "admin",
                                                    "MLFLOW_TRACKING_PASSWORD": ini["mlflow"]["admin_password"]}
    given = {"MARKETLAB_MLFLOW_ADMIN_USER": "ops", "MARKETLAB_MLFLOW_ADMIN_PASSWORD": "a-long-given-password"}
    assert mlflow_credentials(tmp_path, env=given) == {"MLFLOW_TRACKING_USERNAME": "ops",
                                                       "MLFLOW_TRACKING_PASSWORD": "a-long-given-password"}
    # given in the environment: the server gets them from there, the file holds none
    ensure_secrets(tmp_path / "given", env=given)
    assert "admin_password" not in (tmp_path / "given" / "secrets" / "mlflow-auth.ini").read_text()
    assert mlflow_credentials(tmp_path / "given", env={}) == {}

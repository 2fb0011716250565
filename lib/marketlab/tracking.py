"""MLflow helpers: one run per job, lineage of Delta versions, metric-gated aliases."""

from __future__ import annotations

import logging
import math
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import mlflow
from mlflow.tracking import MlflowClient

from marketlab.config import Settings
from marketlab.logs import json_enabled, update_job_context
from marketlab.tables import Lake

log = logging.getLogger(__name__)


def check_tracking(settings: Settings) -> None:
    """Fail fast, with one line, when the MLflow store cannot be reached.

    A server URI (http/https) must accept a connection within ``mlflow.connect_timeout_s``
    (MLflow itself retries for minutes before it gives up); a SQLite store's folder must be
    creatable.

    Raises:
        ConfError: The server does not answer, or the SQLite folder cannot be created.
    """
    from urllib.error import HTTPError, URLError
    from urllib.parse import urlparse
    from urllib.request import urlopen

    from marketlab.errors import ConfError

    uri = settings.tracking_uri()
    if uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///"):]).parent
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfError(f"mlflow.tracking_uri {uri}: cannot create {folder}: {exc.strerror or exc}") from None
        return
    if urlparse(uri).scheme not in ("http", "https"):
        return
    timeout = settings.mlflow.connect_timeout_s
    health = uri.rstrip("/") + "/health"  # the MLflow server answers "OK"
    try:
        with urlopen(health, timeout=timeout) as resp:  # noqa: S310 - the configured server
            ok = resp.status == 200
    except HTTPError as exc:
        ok, reason = False, f"{health} answered HTTP {exc.code}: not an MLflow server"
    except (URLError, OSError) as exc:
        ok = False
        inner = getattr(exc, "reason", exc)
        reason = "no answer" if isinstance(inner, TimeoutError) else (getattr(inner, "strerror", None) or str(inner))
    else:
        reason = "" if ok else f"{health} answered HTTP {resp.status}"
    if not ok:
        raise ConfError(f"MLflow tracking server {uri} unreachable within {timeout:g} s ({reason}): start it or "
                        "set mlflow.tracking_uri")


def configure_mlflow(settings: Settings) -> str:
    """Point MLflow at the configured store and make sure the experiment exists.

    Returns:
        The experiment id.
    """
    # Artifact uploads draw progress bars, which only clutter job logs.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = settings.tracking_uri()
    # The store and the artifacts hold run data about customers: owner-only (docs/CONTRACTS.md).
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    artifacts = settings.artifact_root()
    if artifacts.startswith("file:"):
        from urllib.parse import unquote, urlparse

        Path(unquote(urlparse(artifacts).path)).mkdir(parents=True, exist_ok=True, mode=0o700)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    name = settings.mlflow.experiment
    client = MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            exp_id = client.create_experiment(name, artifact_location=settings.artifact_root())
            # Without this, the first run in a new store lands in "Default" (artifacts in ./mlruns).
            mlflow.set_experiment(experiment_id=exp_id)
            return exp_id
        except mlflow.exceptions.MlflowException:
            exp = client.get_experiment_by_name(name)  # created concurrently
            if exp is None:
                raise
    mlflow.set_experiment(name)
    return exp.experiment_id


def _git_sha(root: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = value


def flatten_params(params: dict[str, Any]) -> dict[str, str]:
    """Nested dict -> ``{"a.b": "value"}`` with values cut to MLflow's 6000-char limit."""
    flat: dict[str, Any] = {}
    _flatten("", params, flat)
    return {k: str(v)[:6000] for k, v in flat.items()}


def log_lineage(lake: Lake) -> None:
    """Log the Delta version of every table the job read and wrote (params + tags)."""
    params = {f"read.{name}": version for name, version in lake.reads.items()}
    params.update({f"wrote.{name}": version for name, version in lake.writes.items()})
    if params:
        mlflow.log_params({k: str(v) for k, v in params.items()})


@contextmanager
def job_run(settings: Settings, job: str, lake: Lake, params: dict[str, Any] | None = None) -> Iterator[mlflow.ActiveRun]:
    """Open the MLflow run of one job execution.

    Logs the job's parameters on entry and, on exit (also on failure), the Delta version
    of each table read and written. Each Delta commit made through ``lake`` meanwhile records
    the job and the run id in its user metadata (:meth:`marketlab.tables.Lake.history`). Nested use (a job inside the pipeline run) becomes a
    child run.

    Args:
        settings: Loaded settings.
        job: Job name (run name and ``marketlab.job`` tag).
        lake: The job's lake; its read/write versions are logged on exit.
        params: Parameters to log (nested dicts are flattened with dots).

    Yields:
        The active MLflow run.
    """
    configure_mlflow(settings)
    tags = {"marketlab.job": job, "marketlab.env": settings.env}
    sha = _git_sha(settings.project_root)
    if sha:
        tags["marketlab.git_sha"] = sha
    nested = mlflow.active_run() is not None
    with mlflow.start_run(run_name=job, tags=tags, nested=nested) as run:
        if params:
            mlflow.log_params(flatten_params(params))
        before = lake.commit_info
        # Every commit of the job names it and this run (Delta user metadata: `marketlab history`).
        lake.commit_info = {**before, "job": job, "mlflow_run_id": run.info.run_id}
        update_job_context(mlflow_run_id=run.info.run_id)
        try:
            yield run
        finally:
            lake.commit_info = before
            log_lineage(lake)
            if json_enabled():  # the figures of the job's JSON summary line
                update_job_context(figures=MlflowClient().get_run(run.info.run_id).data.metrics)


def promote_if_better(
    model_name: str,
    version: str | int,
    metric: str,
    value: float,
    higher_is_better: bool = True,
    margin: float = 0.0,
    alias: str = "champion",
) -> bool:
    """Move ``alias`` to ``version`` only if it beats the current holder by ``margin``.

    The candidate's metric value is stored as a model-version tag, so the gate compares
    like with like across runs without re-evaluating the champion.

    Args:
        model_name: Registered model name.
        version: Candidate model version.
        metric: Name of the gating metric (e.g. ``val_map_at_10``).
        value: Candidate's value of the metric.
        higher_is_better: Direction of the metric.
        margin: Required improvement (absolute) over the champion.
        alias: Alias to move.

    Returns:
        True if the alias moved (also when there was no champion yet). A candidate whose
        value is NaN (the metric was not computed) never moves it: its ``gate.result`` tag
        says ``rejected_no_value``. A champion whose own value is NaN is beaten by any
        candidate with a value.
    """
    client = MlflowClient()
    client.set_model_version_tag(model_name, str(version), f"gate.{metric}", str(value))
    if math.isnan(value):
        log.warning("%s v%s not promoted: its %s is NaN (not computed in this run)", model_name, version, metric)
        client.set_model_version_tag(model_name, str(version), "gate.result", "rejected_no_value")
        return False
    try:
        champ = client.get_model_version_by_alias(model_name, alias)
    except mlflow.exceptions.MlflowException:
        champ = None
    if champ is not None and champ.version != str(version):
        champ_value = champ.tags.get(f"gate.{metric}")
        if champ_value is not None and not math.isnan(float(champ_value)):
            delta = (value - float(champ_value)) if higher_is_better else (float(champ_value) - value)
            if delta < margin:
                log.info("%s v%s not promoted: %s=%.5f vs champion v%s %.5f (margin %.4f)",
                         model_name, version, metric, value, champ.version, float(champ_value), margin)
                client.set_model_version_tag(model_name, str(version), "gate.result", "rejected")
                return False
    client.set_registered_model_alias(model_name, alias, str(version))
    client.set_model_version_tag(model_name, str(version), "gate.result", "promoted")
    return True


# What a logged model needs to be loaded again, by flavour. TensorFlow is whichever of its
# two distributions is installed (this project's lock has tensorflow-cpu; a GPU image has
# tensorflow).
SPARK_MODEL_REQUIREMENTS = ("pyspark", "numpy", "pandas", "scipy")
KERAS_MODEL_REQUIREMENTS = ("tensorflow", "tensorflow-cpu", "cloudpickle", "numpy")


def pinned_requirements(*dists: str) -> list[str]:
    """``name==version`` of each installed distribution, for ``log_model(pip_requirements=...)``.

    Without them MLflow infers the requirements by loading the saved model again in a
    subprocess, which took 10-11 s per model on the 2-core machine. MLflow adds its own
    pin to the list.

    Args:
        *dists: Distribution names; those not installed are left out.

    Returns:
        The pins, in the order given.
    """
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for name in dists:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return pins

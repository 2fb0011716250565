"""Deployment descriptors generated from the stage graph.

* Spark Operator ``SparkApplication`` manifests (``infra/k8s/<stage>.yaml``), one per
  stage, running ``local:///opt/marketlab/jobs/<job>.py --conf /opt/marketlab/conf/cluster.yaml``
  in the image of ``infra/docker/Dockerfile``;
* the Airflow DAG ``infra/airflow/marketlab_dag.py`` (one SparkSubmitOperator per stage,
  dependencies from :func:`marketlab.pipeline.dependencies`).

Their static checks (and the Dockerfile's), which only the tests use, live in
``tests/infra/descriptor_checks.py``.

``marketlab k8s-manifests`` (re)writes the manifests and the DAG; ``--check`` fails when
the committed files differ from what the stage graph gives.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

import yaml

from marketlab.pipeline import STAGES, Stage, dependencies
from marketlab.spark import SESSION_CONF

API_VERSION = "sparkoperator.k8s.io/v1beta2"
KIND = "SparkApplication"
IMAGE_HOME = PurePosixPath("/opt/marketlab")  # project root inside the image
DEFAULT_IMAGE = "marketlab:0.1.0"
DEFAULT_NAMESPACE = "marketlab"
SPARK_VERSION = "4.2.0"
# Shared storage of the lake and MLflow artifacts (a ReadWriteMany claim mounted on the
# driver and every executor) and the in-cluster MLflow service.
K8S_OVERRIDES = ("lake_root=file:///mnt/marketlab/lake",
                 "mlflow.tracking_uri=http://mlflow.marketlab.svc.cluster.local:5000",
                 "mlflow.artifact_root=file:///mnt/marketlab/mlartifacts")
# Kubernetes secrets the manifests read (created by the operator of the cluster, never a
# literal in a manifest): Spark's shared secret, mounted as a file on the driver and the
# executors, and the MLflow server's credentials, given to the driver as environment
# variables. On Kubernetes Spark's driver takes the secret from
# spark.authenticate.secret.file or makes a new one, never from an environment variable.
SPARK_AUTH_SECRET = "marketlab-spark-auth"  # key `secret`
SPARK_AUTH_DIR = "/etc/marketlab/spark-auth"
MLFLOW_AUTH_SECRET = "marketlab-mlflow-auth"  # keys `username`, `password`
AUTH_CONF = {"spark.authenticate": "true", "spark.authenticate.secret.file": f"{SPARK_AUTH_DIR}/secret"}
# Stages that train with the data-parallel launcher (training/launch.py): their GPU
# variants (infra/k8s/gpu/) run the GPU image with one GPU per executor, as conf's "gpu"
# profile (conf/profiles/gpu.yaml) says.
GPU_STAGES = ("forecast", "sequence")
GPU_RESOURCE = "nvidia.com/gpu"
GPU_DIR = "gpu"
SPARK_CONF_PREFIX = "spark.conf."


# --- stage graph -------------------------------------------------------------------


def reduced_dependencies(stages: Sequence[Stage] = STAGES) -> dict[str, list[str]]:
    """:func:`marketlab.pipeline.dependencies` without edges implied by others (transitive
    reduction), each stage's upstream stages in graph order."""
    order = {st.name: i for i, st in enumerate(stages)}
    deps = {name: sorted(ups, key=order.get) for name, ups in dependencies(stages).items()}

    def reachable(src: str, skip_direct: str) -> set[str]:
        seen: set[str] = set()
        todo = [u for u in deps[src] if u != skip_direct]
        while todo:
            u = todo.pop()
            if u not in seen:
                seen.add(u)
                todo.extend(deps[u])
        return seen

    return {name: [u for u in ups if u not in reachable(name, u)] for name, ups in deps.items()}


# --- Spark Operator manifests ---------------------------------------------------------


def spark_application(st: Stage, image: str = DEFAULT_IMAGE, namespace: str = DEFAULT_NAMESPACE,
                      conf_file: str = "conf/cluster.yaml", overrides: Sequence[str] = K8S_OVERRIDES) -> dict:
    """The ``SparkApplication`` of one stage."""
    args = ["--conf", str(IMAGE_HOME / conf_file)]
    for item in overrides:
        args += ["--set", item]
    labels = {"app.kubernetes.io/part-of": "marketlab", "marketlab/stage": st.name}
    volume_mounts = [{"name": "marketlab-data", "mountPath": "/mnt/marketlab"}]
    auth_mount = [{"name": SPARK_AUTH_SECRET, "path": SPARK_AUTH_DIR, "secretType": "Generic"}]
    mlflow_env = [{"name": f"MLFLOW_TRACKING_{key.upper()}",
                   "valueFrom": {"secretKeyRef": {"name": MLFLOW_AUTH_SECRET, "key": key}}}
                  for key in ("username", "password")]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": f"marketlab-{st.name}", "namespace": namespace, "labels": labels,
                     "annotations": {"marketlab/description": st.description,
                                     "marketlab/inputs": ",".join(st.inputs),
                                     "marketlab/outputs": ",".join(st.outputs)}},
        "spec": {
            "type": "Python",
            "pythonVersion": "3",
            "mode": "cluster",
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "mainApplicationFile": f"local://{IMAGE_HOME / 'jobs' / (st.job_name + '.py')}",
            "arguments": args,
            "sparkVersion": SPARK_VERSION,
            "sparkConf": {**SESSION_CONF, **AUTH_CONF, "spark.kubernetes.submission.waitAppCompletion": "true"},
            "restartPolicy": {"type": "Never"},
            "volumes": [{"name": "marketlab-data", "persistentVolumeClaim": {"claimName": "marketlab-data"}}],
            "driver": {"cores": 1, "memory": "2g", "serviceAccount": "spark", "labels": labels,
                       "volumeMounts": volume_mounts, "secrets": auth_mount, "env": mlflow_env},
            "executor": {"instances": 2, "cores": 1, "memory": "2g", "labels": labels,
                         "volumeMounts": volume_mounts, "secrets": auth_mount},
        },
    }


def gpu_application(st: Stage, profile: Sequence[str], image: str = DEFAULT_IMAGE,
                    namespace: str = DEFAULT_NAMESPACE) -> dict:
    """The ``SparkApplication`` of a training stage on GPU executors.

    Args:
        st: The stage (one of :data:`GPU_STAGES`).
        profile: The "gpu" profile as overrides (:func:`marketlab.profiles.profile_overrides`):
            its ``spark.conf.*`` keys go to ``sparkConf`` (an executor's resources are fixed
            before the driver's code runs), the others to the job's ``--set`` arguments.
        image: The CPU image's name; the GPU image is ``<image>-gpu`` (infra/docker/Dockerfile.gpu).
        namespace: Kubernetes namespace.
    """
    spark_conf, rest = {}, []
    for item in profile:
        key, value = item.split("=", 1)
        if key.startswith(SPARK_CONF_PREFIX):
            spark_conf[key[len(SPARK_CONF_PREFIX):]] = str(yaml.safe_load(value))
        else:
            rest.append(item)
    doc = spark_application(st, f"{image}-gpu", namespace, overrides=(*K8S_OVERRIDES, *rest))
    doc["metadata"]["name"] += "-gpu"
    doc["spec"]["sparkConf"].update(spark_conf)
    doc["spec"]["executor"]["gpu"] = {"name": GPU_RESOURCE, "quantity": 1}
    return doc


def render_manifest(doc: dict) -> str:
    header = ("# Generated by `marketlab k8s-manifests` from lib/marketlab/pipeline.py STAGES; do not edit.\n"
              "# Image: infra/docker/Dockerfile. Apply: kubectl apply -f infra/k8s/<stage>.yaml\n")
    return header + yaml.dump(doc, Dumper=_NoAliases, sort_keys=False, default_flow_style=False, width=120)


class _NoAliases(yaml.SafeDumper):
    """Repeated blocks (labels, mounts) written out in full, not as &id001 anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def manifests(image: str = DEFAULT_IMAGE, namespace: str = DEFAULT_NAMESPACE,
              gpu_profile: Sequence[str] = ()) -> dict[str, str]:
    """File name (relative to the manifests folder) -> text: every stage's manifest, and with
    ``gpu_profile`` the GPU variant of each of :data:`GPU_STAGES` under ``gpu/``."""
    out = {f"{st.name}.yaml": render_manifest(spark_application(st, image, namespace)) for st in STAGES}
    if gpu_profile:
        out.update({f"{GPU_DIR}/{st.name}.yaml": render_manifest(gpu_application(st, gpu_profile, image, namespace))
                    for st in STAGES if st.name in GPU_STAGES})
    return out


def write_manifests(out_dir: str | Path, image: str = DEFAULT_IMAGE, namespace: str = DEFAULT_NAMESPACE,
                    check: bool = False, gpu_profile: Sequence[str] = ()) -> list[str]:
    """Write (or with ``check`` compare) ``<out_dir>/<stage>.yaml`` (and ``gpu/<stage>.yaml``
    with ``gpu_profile``); stale manifests are removed.

    Returns:
        With ``check``: the files that differ or are missing/extra; else the files written.
    """
    out = Path(out_dir)
    wanted = manifests(image, namespace, gpu_profile)
    present = ({p.relative_to(out).as_posix() for p in [*out.glob("*.yaml"), *out.glob(f"{GPU_DIR}/*.yaml")]}
               if out.is_dir() else set())
    if check:
        diff = [n for n, text in wanted.items() if not (out / n).is_file() or (out / n).read_text() != text]
        return diff + sorted(present - set(wanted))
    out.mkdir(parents=True, exist_ok=True)
    for n, text in wanted.items():
        (out / n).parent.mkdir(exist_ok=True)
        (out / n).write_text(text)
    for stale in sorted(present - set(wanted)):
        (out / stale).unlink()
    return sorted(wanted)


# --- Airflow DAG -------------------------------------------------------------------------


def _var(name: str) -> str:
    return re.sub(r"\W", "_", name)


def render_airflow_dag(conf_file: str = "conf/cluster.yaml") -> str:
    """Text of infra/airflow/marketlab_dag.py: one SparkSubmitOperator per stage."""
    deps = reduced_dependencies()
    lines = [
        '"""MarketLab pipeline as an Airflow DAG: one spark-submit per stage (generated; do not edit).',
        "",
        "Generated by `marketlab k8s-manifests` from lib/marketlab/pipeline.py STAGES. A task",
        "depends on the stages that write the tables it reads (edges implied by others left",
        "out). Runs the jobs of the image of infra/docker/Dockerfile (MARKETLAB_HOME=/opt/marketlab)",
        "through the Airflow connection `spark_marketlab` (its host is the master URL:",
        "spark://..., k8s://..., yarn).",
        "Needs apache-airflow-providers-apache-spark on the Airflow side; marketlab does not",
        "depend on Airflow.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "import os",
        "from datetime import datetime, timedelta",
        "",
        "from airflow import DAG",
        "from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator",
        "",
        'MARKETLAB_HOME = os.environ.get("MARKETLAB_HOME", "/opt/marketlab")',
        f'CONF = f"{{MARKETLAB_HOME}}/{conf_file}"',
        'WHEEL = os.environ.get("MARKETLAB_WHEEL", f"{MARKETLAB_HOME}/dist/marketlab-0.1.0-py3-none-any.whl")',
        "SPARK_CONF = {",
        *[f'    "{k}": "{v}",' for k, v in SESSION_CONF.items()],
        '    "spark.executorEnv.PYTHONPATH": os.path.basename(WHEEL),',
        "}",
        "",
        "with DAG(",
        '    dag_id="marketlab_pipeline",',
        '    description="raw files -> Delta lake -> models -> marketing strategy (MarketLab)",',
        "    start_date=datetime(2024, 1, 1),",
        "    schedule=None,",
        "    catchup=False,",
        "    max_active_runs=1,",
        '    default_args={"retries": 1, "retry_delay": timedelta(minutes=5), "conn_id": "spark_marketlab"},',
        '    tags=["marketlab", "spark"],',
        ") as dag:",
    ]
    for st in STAGES:
        lines += [
            f"    {_var(st.name)} = SparkSubmitOperator(",
            f'        task_id="{st.name}",',
            f'        name="marketlab-{st.name}",',
            f'        application=f"{{MARKETLAB_HOME}}/jobs/{st.job_name}.py",',
            '        application_args=["--conf", CONF],',
            "        py_files=WHEEL,",
            "        conf=SPARK_CONF,",
            f'        doc_md="{st.description}",',
            "    )",
        ]
    lines.append("")
    for st in STAGES:
        for up in deps[st.name]:
            lines.append(f"    {_var(up)} >> {_var(st.name)}")
    return "\n".join(lines) + "\n"


def write_airflow_dag(path: str | Path, check: bool = False) -> bool:
    """Write the DAG file (or with ``check`` return whether it is up to date)."""
    path = Path(path)
    text = render_airflow_dag()
    if check:
        return path.is_file() and path.read_text() == text
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return True

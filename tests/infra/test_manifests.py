"""Deploy descriptors that cannot run here (no Kubernetes, Airflow or Docker engine):
checked statically against the stage graph and the repository."""

from __future__ import annotations

import ast
import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from descriptor_checks import dockerfile_problems, manifest_job, parse_dockerfile, read_airflow_dag, validate_manifest
from marketlab import deploy
from marketlab.pipeline import STAGES

K8S = ROOT / "infra" / "k8s"
DAG = ROOT / "infra" / "airflow" / "marketlab_dag.py"
DOCKERFILE = ROOT / "infra" / "docker" / "Dockerfile"


def _manifests() -> dict[str, dict]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(K8S.glob("*.yaml"))}


# --- Spark Operator manifests ----------------------------------------------------------------


def test_every_manifest_is_a_valid_spark_application():
    docs = _manifests()
    assert docs, "no manifests in infra/k8s"
    for name, doc in docs.items():
        assert doc["apiVersion"] == "sparkoperator.k8s.io/v1beta2", name
        assert doc["kind"] == "SparkApplication", name
        assert validate_manifest(doc, ROOT) == [], name
        job = manifest_job(doc)
        assert (ROOT / "jobs" / f"{job}.py").is_file()
        args = doc["spec"]["arguments"]
        assert args[:2] == ["--conf", "/opt/marketlab/conf/cluster.yaml"]
        assert (ROOT / "conf" / "cluster.yaml").is_file()


def test_manifests_authenticate_with_kubernetes_secrets_never_a_literal():
    for name, doc in _manifests().items():
        spec = doc["spec"]
        conf = spec["sparkConf"]
        assert conf["spark.authenticate"] == "true", name
        assert "spark.authenticate.secret" not in conf, name  # a literal secret in the manifest
        mount = {"name": deploy.SPARK_AUTH_SECRET, "path": deploy.SPARK_AUTH_DIR, "secretType": "Generic"}
        assert conf["spark.authenticate.secret.file"].startswith(deploy.SPARK_AUTH_DIR + "/"), name
        for role in ("driver", "executor"):
            assert mount in spec[role]["secrets"], (name, role)
        env = {e["name"]: e for e in spec["driver"]["env"]}
        for var, key in (("MLFLOW_TRACKING_USERNAME", "username"), ("MLFLOW_TRACKING_PASSWORD", "password")):
            assert "value" not in env[var], (name, var)
            assert env[var]["valueFrom"]["secretKeyRef"] == {"name": deploy.MLFLOW_AUTH_SECRET, "key": key}, name


def test_one_manifest_per_stage_and_no_other():
    jobs_in_manifests = sorted(manifest_job(d) for d in _manifests().values())
    assert jobs_in_manifests == sorted(st.job_name for st in STAGES)
    assert sorted(p.stem for p in K8S.glob("*.yaml")) == sorted(st.name for st in STAGES)


def _gpu_profile() -> list[str]:
    from marketlab.profiles import profile_overrides

    return profile_overrides("gpu", ROOT / "conf" / "cluster.yaml")


def test_committed_manifests_and_dag_match_the_stage_graph():
    assert deploy.write_manifests(K8S, check=True, gpu_profile=_gpu_profile()) == [], "run `marketlab k8s-manifests`"
    assert deploy.write_airflow_dag(DAG, check=True), "run `marketlab k8s-manifests`"


def test_validator_rejects_a_missing_job_a_missing_conf_and_a_wrong_kind():
    good = yaml.safe_load((K8S / "ingest.yaml").read_text())
    assert validate_manifest(good, ROOT) == []

    no_job = copy.deepcopy(good)
    no_job["spec"]["mainApplicationFile"] = "local:///opt/marketlab/jobs/nope.py"
    errs = validate_manifest(no_job, ROOT)
    assert len(errs) == 1 and "jobs/nope.py" in errs[0]

    no_conf = copy.deepcopy(good)
    no_conf["spec"]["arguments"][1] = "/opt/marketlab/conf/nope.yaml"
    errs = validate_manifest(no_conf, ROOT)
    assert len(errs) == 1 and "conf/nope.yaml" in errs[0]

    outside = copy.deepcopy(good)
    outside["spec"]["mainApplicationFile"] = "local:///somewhere/jobs/ingest.py"
    assert validate_manifest(outside, ROOT)

    wrong = copy.deepcopy(good)
    wrong["apiVersion"] = "sparkoperator.k8s.io/v1beta1"
    wrong["kind"] = "ScheduledSparkApplication"
    errs = validate_manifest(wrong, ROOT)
    assert any("apiVersion" in e for e in errs) and any("kind" in e for e in errs)
    assert validate_manifest(["not", "a", "mapping"], ROOT)


def test_check_mode_reports_a_stale_or_extra_manifest(tmp_path):
    out = tmp_path / "k8s"
    written = deploy.write_manifests(out)
    assert len(written) == len(STAGES) and deploy.write_manifests(out, check=True) == []
    (out / "clean.yaml").write_text((out / "clean.yaml").read_text().replace("cores: 1", "cores: 3"))
    (out / "old-stage.yaml").write_text("kind: SparkApplication\n")
    assert deploy.write_manifests(out, check=True) == ["clean.yaml", "old-stage.yaml"]


def test_cli_check_passes_on_the_committed_files():
    out = subprocess.run([sys.executable, "-m", "marketlab.cli", "k8s-manifests", "--check"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


# --- Airflow DAG (parsed, Airflow is not installed) ---------------------------------------------


def test_dag_has_one_task_per_stage_running_its_job():
    ast.parse(DAG.read_text())  # valid Python
    dag = read_airflow_dag(DAG)
    assert dag["dag_id"] == "marketlab_pipeline"
    assert list(dag["tasks"]) == [st.name for st in STAGES]
    for st in STAGES:
        task = dag["tasks"][st.name]
        assert task["operator"] == "SparkSubmitOperator"
        app = task["application"]
        assert app == f"{{MARKETLAB_HOME}}/jobs/{st.job_name}.py"
        assert (ROOT / app.replace("{MARKETLAB_HOME}/", "")).is_file()


def test_dag_dependencies_follow_the_tables_and_the_stage_order():
    dag = read_airflow_dag(DAG)
    edges = set(dag["edges"])
    order = {st.name: i for i, st in enumerate(STAGES)}
    assert all(order[a] < order[b] for a, b in edges), "an edge goes against the stage order"
    expected = {(u, s) for s, ups in deploy.reduced_dependencies().items() for u in ups}
    assert edges == expected
    # every table dependency is honoured, directly or through other tasks
    closure = {s: set() for s in order}
    for s in sorted(order, key=order.get):
        for a, b in edges:
            if b == s:
                closure[s] |= {a} | closure[a]
    for st in STAGES:
        for prev in STAGES[: order[st.name]]:
            if set(prev.outputs) & set(st.inputs):
                assert prev.name in closure[st.name], (prev.name, st.name)
    # the start of the pipeline is one chain
    assert ("ingest", "clean") in edges and ("clean", "features") in edges


def test_dag_parser_reads_chains_and_lists(tmp_path):
    path = tmp_path / "dag.py"
    path.write_text(
        "a = BashOperator(task_id='A', bash_command='spark-submit jobs/ingest.py')\n"
        "b = BashOperator(task_id='B', bash_command='x')\n"
        "c = BashOperator(task_id='C', bash_command='y')\n"
        "d = BashOperator(task_id='D', bash_command='z')\n"
        "a >> [b, c] >> d\n"
        "a << d\n")
    dag = read_airflow_dag(path)
    assert sorted(dag["edges"]) == [("A", "B"), ("A", "C"), ("B", "D"), ("C", "D"), ("D", "A")]
    assert dag["tasks"]["A"]["application"] == "spark-submit jobs/ingest.py"


# --- Dockerfile (parsed; no Docker engine here) ---------------------------------------------


def test_dockerfile_is_consistent_with_the_repository():
    instrs = parse_dockerfile(DOCKERFILE)
    assert any(i == "FROM" for i, _ in instrs)
    assert dockerfile_problems(DOCKERFILE, ROOT) == []
    text = DOCKERFILE.read_text()
    assert "requirements/constraints.txt" in text and (ROOT / "requirements" / "constraints.txt").is_file()
    assert "openjdk-17" in text
    entry = [a for i, a in instrs if i == "ENTRYPOINT"]
    assert entry == ['["/opt/entrypoint.sh"]']
    assert os.access(ROOT / "infra" / "docker" / "entrypoint.sh", os.X_OK)
    # the image holds what the manifests and the DAG point at
    for src in ("jobs/", "conf/"):
        assert f"COPY {src}" in text


def test_dockerfile_checker_catches_missing_sources(tmp_path):
    bad = tmp_path / "Dockerfile"
    text = DOCKERFILE.read_text()
    bad.write_text(text.replace("COPY jobs/ jobs/", "COPY jobz/ jobs/")
                   .replace("requirements/constraints.txt -r", "requirements/lock.txt -r")
                   .replace("infra/docker/entrypoint.sh /opt/entrypoint.sh", "infra/docker/start.sh /opt/entrypoint.sh"))
    problems = dockerfile_problems(bad, ROOT)
    assert any("jobz/" in p for p in problems)
    assert any("requirements/lock.txt" in p for p in problems)
    assert any("start.sh" in p for p in problems)
    assert any("ENTRYPOINT" in p or "entrypoint" in p for p in problems)
    nofrom = tmp_path / "Dockerfile.nofrom"
    nofrom.write_text("RUN echo hi\nCMD [\"/bin/true\"]\n")
    assert any("FROM" in p for p in dockerfile_problems(nofrom, ROOT))


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_entrypoint_and_cluster_scripts_are_valid_bash():
    for script in ("infra/docker/entrypoint.sh", "infra/cluster/up.sh", "infra/cluster/down.sh", "infra/ensure_apt.sh",
                   "infra/ensure_browser.sh", "infra/ensure_blas.sh", "infra/gpu/install_gpu.sh",
                   "infra/gpu/discover_gpus.sh"):
        out = subprocess.run(["bash", "-n", str(ROOT / script)], capture_output=True, text=True)
        assert out.returncode == 0, (script, out.stderr)


# --- GPU path (issue 23; no GPU here: static checks and the scripts' own logic) ------------


GPU_DOCKERFILE = ROOT / "infra" / "docker" / "Dockerfile.gpu"
DISCOVER = ROOT / "infra" / "gpu" / "discover_gpus.sh"


def test_gpu_manifests_request_one_gpu_per_executor_of_each_training_stage():
    docs = {p.stem: yaml.safe_load(p.read_text()) for p in sorted((K8S / deploy.GPU_DIR).glob("*.yaml"))}
    assert sorted(docs) == sorted(deploy.GPU_STAGES)
    text = GPU_DOCKERFILE.read_text()
    for name, doc in docs.items():
        assert validate_manifest(doc, ROOT) == [], name
        spec = doc["spec"]
        assert manifest_job(doc) == name and spec["image"].endswith("-gpu")
        assert spec["executor"]["gpu"] == {"name": "nvidia.com/gpu", "quantity": 1}
        conf = spec["sparkConf"]
        assert conf["spark.executor.resource.gpu.amount"] == "1" and conf["spark.task.resource.gpu.amount"] == "1"
        script = conf["spark.executor.resource.gpu.discoveryScript"]
        assert f"COPY infra/gpu/discover_gpus.sh {script}" in text  # the image has the script there
        assert f"jobs.{name}.train.use_gpu=true" in spec["arguments"]
        cpu = yaml.safe_load((K8S / f"{name}.yaml").read_text())["spec"]
        assert {k: v for k, v in conf.items() if "resource.gpu" not in k} == cpu["sparkConf"]  # nothing else differs


def test_gpu_profile_validates_and_asks_the_training_stages_for_gpus():
    from marketlab.config import load_settings

    st = load_settings(ROOT / "conf" / "cluster.yaml", _gpu_profile())
    assert st.jobs.sequence.train.use_gpu and st.jobs.forecast.train.use_gpu
    assert st.spark.conf["spark.executor.resource.gpu.discoveryScript"] == "/opt/marketlab/infra/gpu/discover_gpus.sh"


def _discover(tmp_path, smi_lines: str | None, visible: str | None = None) -> dict:
    import json

    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["NVIDIA_SMI"] = str(tmp_path / "no-such-nvidia-smi")
    if smi_lines is not None:
        smi = tmp_path / "nvidia-smi"
        smi.write_text(f"#!/bin/sh\nprintf '{smi_lines}'\n")
        smi.chmod(0o755)
        env["NVIDIA_SMI"] = str(smi)
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    out = subprocess.run(["bash", str(DISCOVER)], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    return json.loads(out.stdout)


def test_gpu_discovery_script_prints_sparks_resource_json(tmp_path):
    assert _discover(tmp_path, "0\\n1\\n 2\\n") == {"name": "gpu", "addresses": ["0", "1", "2"]}
    assert _discover(tmp_path, "0\\n1\\n2\\n", visible="2,0") == {"name": "gpu", "addresses": ["0", "2"]}
    assert _discover(tmp_path, "No devices were found\\n") == {"name": "gpu", "addresses": []}
    assert _discover(tmp_path, None) == {"name": "gpu", "addresses": []}


def test_gpu_install_script_refuses_a_machine_without_a_driver_in_one_line(tmp_path):
    env = {**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"}  # no nvidia-smi on it
    out = subprocess.run(["bash", str(ROOT / "infra" / "gpu" / "install_gpu.sh"), sys.executable], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.strip() == "install_gpu: no nvidia-smi: this machine has no NVIDIA driver"


def test_gpu_dockerfile_builds_on_the_cpu_image_and_copies_what_exists():
    instrs = parse_dockerfile(GPU_DOCKERFILE)
    froms = [a for i, a in instrs if i == "FROM"]
    assert froms == ["${CUDA_DEVEL} AS cuda", "${BASE} AS build", "${BASE}"]
    problems = [p for p in dockerfile_problems(GPU_DOCKERFILE, ROOT) if "ENTRYPOINT" not in p and "CMD" not in p]
    assert problems == []  # the entrypoint is the base image's
    text = GPU_DOCKERFILE.read_text()
    assert "install_gpu.sh /opt/venv/bin/python --build-only" in text
    assert "COPY --from=build /opt/venv /opt/venv" in text

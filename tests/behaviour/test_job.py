"""The behaviour job end to end on a small sessions table (real Spark, Delta, MLflow)."""

import importlib.util
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from conftest import ROOT, make_settings, pass_gate
from marketlab.behaviour.metrics import DegenerateDataError
from marketlab.runtime import JobContext
from marketlab.tables import Lake
from marketlab.tracking import SPARK_MODEL_REQUIREMENTS, pinned_requirements


def _load_job():
    spec = importlib.util.spec_from_file_location("behaviour_job", ROOT / "jobs" / "behaviour.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


job = _load_job()

SMALL = ["jobs.behaviour.num_folds=2", "jobs.behaviour.parallelism=2", "jobs.behaviour.grid.lr_reg_param=[0.01]",
         "jobs.behaviour.grid.lr_elastic_net=[0.0]", "jobs.behaviour.grid.gbt_max_depth=[2]",
         "jobs.behaviour.grid.gbt_max_iter=[8]", "jobs.behaviour.threshold_grid=19"]


@pytest.fixture(scope="module")
def ran(spark, sessions, tmp_path_factory):
    st = make_settings(tmp_path_factory.mktemp("behaviour"), SMALL)
    lake = Lake(spark, st)
    lake.write(sessions, "silver.sessions")
    pass_gate(lake, "silver.sessions")
    job.main(JobContext("behaviour", st, spark, lake, None))
    return lake, st


def test_job_writes_scored_sessions_and_logs_suite(ran, sessions_pd, capsys):
    lake, st = ran
    out = lake.read("gold.purchase_intent")
    pdf = out.toPandas()
    assert len(pdf) == len(sessions_pd) and pdf.session_id.is_unique
    assert set(pdf.split) == {"train", "valid", "test"}
    assert pdf.probability.between(0, 1).all()
    thr = pdf.threshold.iloc[0]
    assert ((pdf.probability >= thr).astype(int) == pdf.prediction).all()
    assert set(pdf.model) <= {"lr", "gbt"} and pdf.run_id.notna().all()

    mlflow.set_tracking_uri(st.tracking_uri())
    run = mlflow.search_runs(experiment_names=[st.mlflow.experiment], filter_string="tags.`marketlab.job` = 'behaviour'",
                             output_format="list")[0]
    m = run.data.metrics
    for name in ("lr", "gbt", "majority", "page_values_rule"):
        for k in ("accuracy", "recall", "npv", "roc_auc", "pr_auc", "tp", "fn", "expected_cost"):
            assert f"test.{name}.{k}" in m, f"test.{name}.{k}"
    assert m["test.majority.roc_auc"] == pytest.approx(0.5)
    assert m["test.majority.recall"] == 0.0
    # The tuned model beats both baselines on ROC AUC and on the stated business cost.
    best = run.data.tags["selected_model"]
    assert m[f"test.{best}.roc_auc"] > m["test.page_values_rule.roc_auc"] - 0.02
    assert m[f"test.{best}.expected_cost"] < m["test.majority.expected_cost"]
    arts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id, "behaviour")}
    for png in ("roc_pr.png", "calibration.png", "confusion.png", "feature_importance.png", "threshold_cost.png"):
        assert f"behaviour/{png}" in arts
    assert run.data.params["read.silver.sessions"] == "0"
    # The label is driven by page_values and exit_rates: both rank at the top.
    imp = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/behaviour/feature_importance.csv").splitlines()
    top = {line.split(",")[0] for line in imp[1:4]}
    assert "page_values" in top
    mv = MlflowClient().get_model_version_by_alias(st.jobs.behaviour.model_name, "champion")
    assert mv.run_id == run.info.run_id
    # The model's environment: the job's pins (no inference subprocess), plus MLflow's own.
    reqs = Path(mlflow.pyfunc.get_model_dependencies(f"models:/{st.jobs.behaviour.model_name}@champion")).read_text()
    assert set(reqs.split()) == {*pinned_requirements(*SPARK_MODEL_REQUIREMENTS), f"mlflow=={mlflow.__version__}"}


def test_one_class_sessions_give_a_job_error(spark, sessions, tmp_path):
    st = make_settings(tmp_path, SMALL)
    lake = Lake(spark, st)
    lake.write(sessions.where("label = 0"), "silver.sessions")
    pass_gate(lake, "silver.sessions")
    with pytest.raises(DegenerateDataError, match="only one class"):
        job.main(JobContext("behaviour", st, spark, lake, None))


def test_real_online_shoppers(spark, silver, tmp_path):
    """Real sessions: every session scored, baselines cross-checked with sklearn, model beats them."""
    from sklearn import metrics as skm

    silver_lake, _ = silver
    st = make_settings(tmp_path, SMALL + ["jobs.behaviour.register_model=false"])
    lake = Lake(spark, st)
    sessions = silver_lake.read("silver.sessions")
    lake.write(sessions, "silver.sessions")
    pass_gate(lake, "silver.sessions")
    job.main(JobContext("behaviour", st, spark, lake, None))
    out = Lake(spark, st).read("gold.purchase_intent")
    n = sessions.count()
    assert out.count() == n and 12_300 <= n <= 12_330
    assert out.where("label = 1").count() == sessions.where("label = 1").count()
    test = out.where("split = 'test'").join(sessions.select("session_id", "page_values"), "session_id").toPandas()
    mlflow.set_tracking_uri(st.tracking_uri())
    run = mlflow.search_runs(experiment_names=[st.mlflow.experiment], output_format="list")[0]
    m = run.data.metrics
    y, rule = test.label.to_numpy(), (test.page_values.fillna(0) > 0).astype(int).to_numpy()
    assert m["test.page_values_rule.recall"] == pytest.approx(skm.recall_score(y, rule), abs=1e-12)
    assert m["test.page_values_rule.precision"] == pytest.approx(skm.precision_score(y, rule), abs=1e-12)
    assert m["test.page_values_rule.roc_auc"] == pytest.approx(skm.roc_auc_score(y, test.page_values.fillna(0)), abs=1e-9)
    best = run.data.tags["selected_model"]
    assert m[f"test.{best}.roc_auc"] == pytest.approx(skm.roc_auc_score(y, test.probability), abs=1e-9)
    assert m[f"test.{best}.roc_auc"] > 0.88
    assert m[f"test.{best}.expected_cost"] < min(m["test.majority.expected_cost"], m["test.page_values_rule.expected_cost"])
    print({k: round(v, 4) for k, v in sorted(m.items()) if k.startswith("test.")})

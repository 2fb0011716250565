"""The quality gate guards every reader: ``Lake.read`` of a gated table refuses a version the
gate failed or never saw, whichever stage reads it, run on its own (issue 24).

One lake is copied from the shared ``gold`` lake (real data through clean + gate, features
and segments), every gated silver table gets a new version that fails a blocking expectation
(the real gate records the failure), and then every stage that reads a gated table runs on
its own through the harness: each exits with code 2 and the gate's message as one line.
"""

from __future__ import annotations

import logging
import shutil

import pytest

from conftest import ROOT, make_settings
from marketlab.errors import GateFailedError
from marketlab.pipeline import STAGES
from marketlab.quality.run import require_passed, run as gate
from marketlab.runtime import call_job, job_argv
from marketlab.tables import GATE_OVERRIDE, Lake, gated_tables

CONF = ROOT / "conf" / "test.yaml"


def _overrides(tmp) -> list[str]:
    return [f"lake_root={tmp / 'lake'}", f"mlflow.tracking_uri=sqlite:///{tmp / 'mlflow.db'}",
            f"mlflow.artifact_root={tmp / 'artifacts'}"]


@pytest.fixture(scope="module")
def corrupted(spark, gold, tmp_path_factory):
    """A copy of the gold lake whose gated silver tables each hold a version that failed the gate."""
    src, _ = gold
    tmp = tmp_path_factory.mktemp("gate_guard")
    shutil.copytree(src.settings.resolve(src.settings.lake_root), tmp / "lake", symlinks=True)
    st = make_settings(tmp)
    lake = Lake(spark, st)
    gated = sorted(gated_tables(st))
    passed = {t: lake.version(t) for t in gated}
    for t in gated:
        require_passed(lake, [t])  # the copy starts clean: every current version passed
        # 5 rows of a table of thousands: row_count_drift (blocking) fails, returns' foreign key too.
        lake.write(lake.read(t).limit(5), t)
    # The strategy stage reads its scores before the campaign log; any scores table will do.
    lake.write(spark.createDataFrame([("k", "Womens E-Mail", 0.1)], "customer_key string, action string, uplift double"),
               "gold.uplift_scores")
    res = gate(Lake(spark, st), gated, st.jobs.quality)
    failed = {t: [r for r in res.failures if r.table == t] for t in gated}
    assert all(failed.values()), failed
    return st, tmp, gated, passed, failed


def test_the_gated_tables_are_the_ones_with_expectations(settings):
    assert gated_tables(settings) == {"silver.order_lines", "silver.returns", "silver.campaign_log", "silver.sessions"}
    assert gated_tables(settings) == set(settings.jobs.quality.expectations)


def test_a_failed_version_is_refused_with_the_gates_message(spark, corrupted):
    st, _, gated, passed, failed = corrupted
    lake = Lake(spark, st)
    for t in gated:
        version = lake.version(t)
        with pytest.raises(GateFailedError) as exc:
            lake.read(t)
        msg = str(exc.value)
        assert msg.startswith(f"{t} version {version} failed the data-quality gate: ")
        for r in failed[t]:  # every failed blocking expectation, with the count the gate recorded
            assert f"{r.expectation} ({r.offending} offending rows) - {r.detail}" in msg
        assert GATE_OVERRIDE in msg and "\n" not in msg
        assert t not in lake.reads  # nothing was read
        # the version that passed stays readable by time travel
        assert lake.read(t, version=passed[t]).count() > 5
        assert lake.reads[t] == passed[t]


def test_a_version_without_a_gate_result_is_refused(spark, corrupted, tmp_path):
    st, _, _, _, _ = corrupted
    own = make_settings(tmp_path)
    lake = Lake(spark, own)
    lake.write(Lake(spark, st).read_ungated("silver.sessions"), "silver.sessions")
    with pytest.raises(GateFailedError, match=r"silver.sessions version 0 has no data-quality result \(quality.results "
                                              r"does not exist\)"):
        lake.read("silver.sessions")
    gate(lake, ["silver.sessions"], own.jobs.quality).raise_if_failed()
    assert lake.read("silver.sessions").count() > 0  # the gate passed it
    lake.write(lake.read("silver.sessions"), "silver.sessions")  # v1: the gate has not seen it
    with pytest.raises(GateFailedError, match="silver.sessions version 1 has no data-quality result: run the clean job"):
        Lake(spark, own).read("silver.sessions")
    # tables without expectations are not gated
    lake.write(lake.read("silver.sessions", version=0).limit(1), "silver.adjustments")
    assert Lake(spark, own).read("silver.adjustments").count() == 1


def test_the_override_reads_a_failed_version_with_a_warning(spark, corrupted, caplog):
    st, tmp, gated, _, _ = corrupted
    forensic = Lake(spark, make_settings(tmp, ["jobs.quality.guard_reads=false"]))
    with caplog.at_level(logging.WARNING, logger="marketlab.tables"):
        assert forensic.read("silver.sessions").count() == 5
    assert "jobs.quality.guard_reads is false: reading silver.sessions" in caplog.text
    assert "failed the data-quality gate" in caplog.text


READERS = [s for s in STAGES if set(s.inputs) & {"silver.order_lines", "silver.returns", "silver.campaign_log",
                                                  "silver.sessions"} and s.name != "clean"]


def test_every_reader_stage_is_listed():
    assert {s.name for s in READERS} >= {"features", "behaviour", "recommend", "effect", "evaluation", "strategy",
                                         "export", "value", "report"}


@pytest.mark.parametrize("stage", [s for s in READERS if s.name != "report"], ids=lambda s: s.name)
def test_every_reader_run_on_its_own_refuses_the_failed_version(spark, corrupted, stage, capsys):
    st, tmp, gated, _, _ = corrupted
    lake = Lake(spark, st)
    before = {t: lake.version(t) for t in stage.outputs}
    capsys.readouterr()
    code = call_job(ROOT / "jobs" / f"{stage.job_name}.py", job_argv(CONF, _overrides(tmp)))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    expected = {f"marketlab {stage.job_name}: {lake.gate_problem(t)}" for t in set(stage.inputs) & set(gated)}
    assert err.splitlines()[-1] in expected, err
    assert "Traceback" not in err
    assert {t: lake.version(t) for t in stage.outputs} == before  # nothing written from a failed version


def test_the_report_shows_the_refusal_instead_of_the_failed_data(spark, corrupted, caplog):
    """The report renders what it can, section by section (lib/marketlab/report): a section
    over a refused version is left out with the gate's message, never drawn from it."""
    st, tmp, _, _, _ = corrupted
    with caplog.at_level(logging.WARNING):
        code = call_job(ROOT / "jobs" / "report.py", job_argv(CONF, _overrides(tmp)))
    assert code == 0
    lake = Lake(spark, st)
    for t in ("silver.order_lines", "silver.campaign_log"):
        assert f"GateFailedError: {lake.gate_problem(t)}" in caplog.text

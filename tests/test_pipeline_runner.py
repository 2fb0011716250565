"""The stage graph and the runner's pure parts: selection, profiles, fingerprints."""

from __future__ import annotations

import pytest

from conftest import ROOT, make_settings
from marketlab.config import ConfigError, load_settings
from marketlab.pipeline import STAGES, stage
from marketlab.pipeline_runner import select_stages, stage_fingerprint
from marketlab.profiles import flatten_overrides, profile_overrides


def test_stage_graph_is_ordered_by_its_tables():
    """Every input of a stage is written by an earlier stage (or is optional history)."""
    written: set[str] = set()
    names = [s.name for s in STAGES]
    assert len(names) == len(set(names))
    for st in STAGES:
        missing = set(st.inputs) - written
        assert not missing, (st.name, missing)
        written |= set(st.outputs)
    settings = load_settings(ROOT / "conf" / "local.yaml")
    assert written <= set(settings.catalog), written - set(settings.catalog)
    for st in STAGES:
        assert (ROOT / "jobs" / f"{st.job_name}.py").is_file(), st.name


def test_value_comes_before_what_reads_it_and_is_optional_for_segments():
    from marketlab.pipeline import Stage, dependencies

    names = [s.name for s in STAGES]
    assert names.index("value") < names.index("segments") < names.index("report")
    deps = dependencies(STAGES)
    assert deps["value"] == {"clean"} and "value" in deps["segments"] and "value" in deps["report"]
    assert stage("segments").optional == ("gold.customer_value",)
    assert all(set(s.optional) <= set(s.inputs) for s in STAGES)
    with pytest.raises(ValueError, match="optional inputs"):
        Stage("x", ("a",), ("b",), optional=("c",))


def test_sequence_runs_before_recommend_which_reads_its_scores_when_they_exist():
    names = [s.name for s in STAGES]
    assert names.index("features") < names.index("sequence") < names.index("recommend") < names.index("report")
    assert stage("recommend").optional == ("gold.sequence_scores",)
    assert "gold.sequence_scores" in stage("recommend").inputs


def test_select_stages():
    assert [s.name for s in select_stages()] == [s.name for s in STAGES]
    assert [s.name for s in select_stages(from_stage="strategy")][:3] == ["strategy", "drift", "export"]
    assert [s.name for s in select_stages(only=("segments", "clean"))] == ["clean", "segments"]
    with pytest.raises(ValueError, match=r"unknown stage\(s\) \['nope'\]"):
        select_stages(only=("nope",))
    with pytest.raises(ValueError, match="unknown stage"):
        select_stages(from_stage="later")


def test_profiles_flatten_to_overrides_that_validate():
    assert flatten_overrides({"a": {"b": 1, "c": [1, 2], "d": {}}, "e": "x y"}) == \
        ["a.b=1", 'a.c=[1, 2]', "a.d={}", 'e="x y"']
    ovr = profile_overrides("fast", ROOT / "conf" / "test.yaml")
    st = load_settings(ROOT / "conf" / "test.yaml", ovr)
    assert st.jobs.effect.base_model == "logreg" and st.jobs.recommend.tuning.enabled is False
    tune = load_settings(ROOT / "conf" / "test.yaml", profile_overrides("tune", ROOT / "conf" / "test.yaml"))
    # The tune profile searches what the default conf fixes to that search's winners.
    base = load_settings(ROOT / "conf" / "test.yaml")
    assert tune.jobs.recommend.tuning.enabled and not base.jobs.recommend.tuning.enabled
    assert (len(tune.jobs.behaviour.grid.lr_reg_param) * len(tune.jobs.behaviour.grid.lr_elastic_net),
            len(tune.jobs.behaviour.grid.gbt_max_depth)) == (6, 2)
    assert base.jobs.behaviour.grid.lr_reg_param[0] in tune.jobs.behaviour.grid.lr_reg_param
    assert profile_overrides(None, ROOT / "conf" / "test.yaml") == []
    with pytest.raises(ConfigError, match="profile 'nope' not found.*known profiles: \\['fast'"):
        profile_overrides("nope", ROOT / "conf" / "test.yaml")


def test_fingerprint_moves_with_params_and_input_versions(tmp_path):
    st = next(s for s in STAGES if s.name == "segments")
    job = ROOT / "jobs" / "segments.py"
    base = make_settings(tmp_path)
    fp = stage_fingerprint(st, base, job, {"gold.customer_features": 3})
    assert fp == stage_fingerprint(st, make_settings(tmp_path), job, {"gold.customer_features": 3})
    assert fp != stage_fingerprint(st, base, job, {"gold.customer_features": 4})
    assert fp != stage_fingerprint(st, make_settings(tmp_path, ["jobs.segments.k_max=4"]), job,
                                   {"gold.customer_features": 3})
    # A parameter of another job does not touch this stage.
    assert fp == stage_fingerprint(st, make_settings(tmp_path, ["jobs.forecast.horizon=7"]), job,
                                   {"gold.customer_features": 3})
    # The value tiers it attaches are the value stage's conf.
    assert fp != stage_fingerprint(st, make_settings(tmp_path, ["jobs.value.tier_quantiles=[0.9, 0.7, 0.4]"]), job,
                                   {"gold.customer_features": 3})


def test_a_dead_driver_jvm_is_detected(tmp_path):
    # The runner must not touch Spark after a job took the driver down (out of heap kills
    # the JVM): probe it on a throwaway session whose JVM really exits.
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT / 'lib')!r})
        from marketlab.config import load_settings
        from marketlab.pipeline_runner import _session_alive
        from marketlab.spark import get_spark
        spark = get_spark(load_settings({str(ROOT / 'conf' / 'test.yaml')!r},
                                        ["lake_root={tmp_path / 'lake'}", "spark.master=local[1]",
                                         "spark.conf.spark.driver.memory=1g"]))
        alive = _session_alive(spark)
        try:
            spark.sparkContext._gateway.jvm.java.lang.Runtime.getRuntime().halt(1)
        except Exception:
            pass
        print(alive, _session_alive(spark))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert out.stdout.strip().splitlines()[-1] == "True False", out.stderr[-2000:]


# --- scheduling --------------------------------------------------------------------------


def test_dependencies_and_remaining_path_of_the_stage_graph():
    from marketlab.pipeline import dependencies, remaining_path

    deps = dependencies(STAGES)
    assert deps["ingest"] == set()
    assert deps["strategy"] == {"effect", "evaluation", "clean"}
    assert deps["recommend"] == {"features", "segments", "clean", "sequence"}
    assert deps["effect"] == {"clean"}
    secs = {"features": 48.0, "segments": 22.0, "recommend": 96.0, "forecast": 183.0, "inventory": 42.0, "report": 22.0}
    path = remaining_path(STAGES, secs)
    assert path["report"] == 22.0
    campaign = stage("campaign").expected_s
    assert path["forecast"] == 183.0 + 42.0 + campaign + 22.0
    # features -> forecast -> inventory -> campaign -> report is slower than features -> segments -> recommend -> report
    assert path["features"] == 48.0 + 183.0 + 42.0 + campaign + 22.0
    # stages without a measured time count their reference seconds
    assert path["effect"] == stage("effect").expected_s + stage("strategy").expected_s + 22.0  # the export is a leaf
    # only the stages passed count: without the report, forecast's chain ends at inventory
    sub = [s for s in STAGES if s.name in {"forecast", "inventory"}]
    assert remaining_path(sub, secs) == {"forecast": 225.0, "inventory": 42.0}


def _recorder(seconds: float = 0.2, fail: frozenset = frozenset(), durations: dict | None = None):
    import threading
    import time

    spans: dict[str, tuple[float, float]] = {}
    lock = threading.Lock()

    def run(name: str) -> bool:
        t0 = time.perf_counter()
        time.sleep((durations or {}).get(name, seconds))
        with lock:
            spans[name] = (t0, time.perf_counter())
        return name not in fail

    return spans, run


def test_run_graph_runs_independent_names_at_once_and_waits_for_dependencies():
    from marketlab.pipeline_runner import run_graph

    deps = {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"b", "c"}, "e": {"a"}}
    spans, run = _recorder()
    started = run_graph(list("abcde"), deps, run, max_parallel=2, priority={"c": 5.0, "b": 4.0, "e": 1.0})
    assert started[0] == "a" and set(started) == set("abcde")
    # priority among the ready: c and b before e
    assert started[1:3] == ["c", "b"]
    assert spans["b"][0] < spans["c"][1] and spans["c"][0] < spans["b"][1]  # b and c overlapped
    for name, before in deps.items():
        assert all(spans[p][1] <= spans[name][0] for p in before), name
    # never more than two at once
    events = sorted([(s, 1) for s, _ in spans.values()] + [(e, -1) for _, e in spans.values()], key=lambda x: (x[0], x[1]))
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    assert peak == 2


def test_run_graph_one_at_a_time_keeps_the_given_order():
    from marketlab.pipeline_runner import run_graph

    spans, run = _recorder(0.01)
    deps = {"a": set(), "b": {"a"}, "c": {"a"}}
    assert run_graph(["a", "b", "c"], deps, run, max_parallel=1, priority={"c": 9.0}) == ["a", "b", "c"]
    ends = [spans[n] for n in "abc"]
    assert all(x[1] <= y[0] for x, y in zip(ends, ends[1:]))


@pytest.mark.parametrize("parallel", [1, 2])
def test_run_graph_starts_nothing_after_a_failure(parallel):
    from marketlab.pipeline_runner import run_graph

    # b fails while c still runs: c's dependent e must not start either
    spans, run = _recorder(0.05, fail=frozenset({"b"}), durations={"c": 0.4})
    deps = {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"b"}, "e": {"c"}}
    started = run_graph(list("abcde"), deps, run, max_parallel=parallel)
    assert "d" not in started and "e" not in started
    # with two at once, c was already running beside b and finishes; one at a time it never starts
    assert started == (["a", "b", "c"] if parallel == 2 else ["a", "b"])
    assert set(spans) == set(started)


def test_max_parallel_stages_is_validated():
    st = load_settings(ROOT / "conf" / "test.yaml", ["pipeline.max_parallel_stages=3"])
    assert st.pipeline.max_parallel_stages == 3
    assert load_settings(ROOT / "conf" / "test.yaml").pipeline.max_parallel_stages == 2
    with pytest.raises(ConfigError, match="max_parallel_stages"):
        load_settings(ROOT / "conf" / "test.yaml", ["pipeline.max_parallel_stages=0"])


# --- params sections, fingerprints of a settings change ---------------------------------------


def test_every_stage_declares_conf_sections_that_exist():
    from marketlab.config import JobsSettings

    sections = set(JobsSettings.model_fields)
    for st in STAGES:
        assert st.params and set(st.params) <= sections, (st.name, st.params)
    # the gate holds silver's dates to the ingest section's timestamp_bounds
    assert stage("clean").params == ("clean", "quality", "ingest")
    # segments tiers its customers with the value stage's tier names and quantiles
    assert stage("segments").params == ("segments", "value")
    assert stage("report").params == ("report", "effect", "recommend", "value")
    # export has a section of its own; the arm names it uses are the evaluated campaign's
    assert stage("export").params == ("export", "evaluation")


def _fingerprints(settings) -> dict[str, str]:
    """Every stage's fingerprint at fixed input versions: what differs is what its params moved."""
    return {st.name: stage_fingerprint(st, settings, ROOT / "jobs" / f"{st.job_name}.py", {t: 1 for t in st.inputs})
            for st in STAGES}


def _downstream(names: set[str]) -> set[str]:
    """``names`` and every stage that reads, directly or not, what they write."""
    from marketlab.pipeline import dependencies

    deps, out = dependencies(STAGES), set(names)
    for st in STAGES:  # graph order: a stage's writers come first
        if deps[st.name] & out:
            out.add(st.name)
    return out


def test_an_export_setting_reruns_exactly_export_and_its_downstream(tmp_path):
    base = _fingerprints(make_settings(tmp_path))
    assert base == _fingerprints(make_settings(tmp_path))
    changed = _fingerprints(make_settings(tmp_path, ["jobs.export.holdout_fraction=0.2"]))
    moved = {n for n in base if base[n] != changed[n]}
    # Before export had its own section, this moved evaluation's fingerprint and not export's:
    # the pipeline re-ran evaluation and strategy, and `--only export` skipped the change.
    assert moved == {"export"} == _downstream({"export"})
    quality = _fingerprints(make_settings(tmp_path, ["jobs.quality.results_table=quality.results"]))
    assert quality == base  # the same value: no change
    gate = _fingerprints(make_settings(tmp_path, ["jobs.quality.results_table=quality.gate_results"]))
    assert {n for n in base if base[n] != gate[n]} == {"clean", "features"}


def test_timestamp_bounds_rerun_ingest_and_the_gate(tmp_path):
    base = _fingerprints(make_settings(tmp_path))
    changed = _fingerprints(make_settings(tmp_path, ["jobs.ingest.timestamp_bounds.min=2005-01-01"]))
    # ingest skips files it already loaded, so only clean's own fingerprint re-runs the gate
    assert {n for n in base if base[n] != changed[n]} == {"ingest", "clean"}


def test_the_source_specs_are_part_of_the_ingest_fingerprint(tmp_path):
    base = _fingerprints(make_settings(tmp_path))
    changed = _fingerprints(make_settings(tmp_path, ["sources.hillstrom.max_reject_fraction=0.5"]))
    assert {n for n in base if base[n] != changed[n]} == {"ingest"}


# --- the closing summary -----------------------------------------------------------------------


def test_the_summary_shows_wall_time_and_cpu_share_not_a_summed_total():
    import psutil
    from rich.console import Console

    from marketlab.pipeline_runner import PipelineResult, StageOutcome, _print_summary, summary_line

    res = PipelineResult("abc", 0, [StageOutcome("features", "ok", 6.0), StageOutcome("effect", "ok", 9.5),
                                    StageOutcome("segments", "skipped", message="up to date")],
                         wall_s=10.25, cpu_busy=0.874)
    line = summary_line(res, 2)
    assert line == (f"wall 10.2 s; stage times sum to 15.5 s (up to 2 stages at once); "
                    f"CPU busy 87% of {psutil.cpu_count()} cores")
    console = Console(record=True, width=120)
    _print_summary(console, res, 2)
    text = console.export_text()
    assert "total" not in text and line in text
    for name, secs in (("features", "6.0"), ("effect", "9.5")):
        assert any(name in row and secs in row for row in text.splitlines())
    assert "n/a" in summary_line(PipelineResult("x", 0, [], wall_s=1.0, cpu_busy=None), 1)


def test_the_run_clock_measures_the_busy_share_of_the_machine():
    import time

    import psutil

    from marketlab.pipeline_runner import _RunClock

    clock = _RunClock()
    end = time.perf_counter() + 1.0
    while time.perf_counter() < end:  # one core busy for a second
        pass
    wall, busy = clock.stop()
    assert 1.0 <= wall < 5.0
    # at least the one spinning core of all of them (others' load on a shared machine only adds)
    assert 0.8 / psutil.cpu_count() <= busy <= 1.0


def test_latest_report_is_the_report_stages_latest_file(tmp_path):
    from marketlab.pipeline_runner import _latest_report

    settings = make_settings(tmp_path, [f"jobs.report.reports_dir={tmp_path / 'reports'}"])
    assert _latest_report(settings) is None
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "latest.html").write_text("<html></html>")
    assert _latest_report(settings) == str(tmp_path / "reports" / "latest.html")
    # default folder: next to the lake
    default = make_settings(tmp_path)
    (tmp_path / "reports").rename(tmp_path / "elsewhere")
    assert _latest_report(default) is None
    (tmp_path / "elsewhere").rename(tmp_path / "reports")
    assert _latest_report(default) == str(tmp_path / "reports" / "latest.html")
    assert _latest_report(make_settings(tmp_path, ["lake_root=s3a://bucket/lake"])) is None


def test_a_second_pipeline_on_the_same_lake_refuses_and_a_killed_holder_leaves_no_lock(tmp_path):
    """Issue 24: two pipelines on one lake at once race their writes; the second refuses
    before any stage (or Spark) starts, and a SIGKILLed holder does not wedge the lake."""
    import io
    import signal
    import subprocess
    import sys

    from rich.console import Console

    from marketlab.errors import LakeBusyError
    from marketlab.pipeline_runner import run_pipeline
    from marketlab.tables import LOCK_FILE, lock_lake

    overrides = (f"lake_root={tmp_path / 'lake'}", f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}")
    settings = load_settings(ROOT / "conf" / "test.yaml", list(overrides))
    with lock_lake(settings):
        with pytest.raises(LakeBusyError, match=r"another pipeline run \(pid \d+\) holds the lake"):
            lock_lake(settings)
        out = io.StringIO()
        res = run_pipeline(str(ROOT / "conf" / "test.yaml"), overrides, only=("ingest",),
                           console=Console(file=out, width=200))
        assert res.exit_code == 2 and res.stages == []
        assert "another pipeline run" in out.getvalue() and not (tmp_path / "lake" / "bronze").exists()
    lock_lake(settings).release()  # released: the next run takes it
    assert (tmp_path / "lake" / LOCK_FILE).stat().st_mode & 0o077 == 0
    code = ("import sys, time; from marketlab.config import load_settings; from marketlab.tables import lock_lake; "
            f"held = lock_lake(load_settings({str(ROOT / 'conf' / 'test.yaml')!r}, {list(overrides)!r})); "
            "print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LakeBusyError):
            lock_lake(settings)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    lock_lake(settings).release()

"""The job harness: jobs are imported and called (CLI, pipeline) or run as a main file
(spark-submit), parse their own options either way, and turn user errors into one line."""

from __future__ import annotations

import runpy
import sys
import threading
import textwrap

import pytest

from conftest import ROOT
from marketlab import errors
from marketlab.config import ConfigError
from marketlab.runtime import JobError, call_job, job_argv, run_job
from marketlab.tables import TableNotFoundError

TEST_CONF = ROOT / "conf" / "test.yaml"

# A job with an option of its own, written the way jobs/<stage>.py are.
ARG_JOB = textwrap.dedent('''
    """Prints its --rows option (a job with an argument parser of its own)."""
    from marketlab.errors import BadInputError
    from marketlab.runtime import job_parser, main_guard

    PARSER = job_parser("argjob")
    PARSER.add_argument("--rows", type=int, required=True)


    def main(ctx):
        if ctx.args.rows < 0:
            raise BadInputError(f"--rows must be >= 0, got {ctx.args.rows}")
        print(f"argjob rows={ctx.args.rows} lake={ctx.settings.lake_root}")


    if __name__ == "__main__":
        main_guard("argjob", main, parser=PARSER)
''')


@pytest.fixture()
def arg_job(tmp_path):
    """``(project root, job file)``: a copy of conf/ and a jobs/argjob.py next to it."""
    import shutil

    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    (tmp_path / "jobs").mkdir()
    path = tmp_path / "jobs" / "argjob.py"
    path.write_text(ARG_JOB)
    return tmp_path, path


def _argv(tmp_path, *extra: str) -> list[str]:
    # The copied project has no .jars of its own: point at the checkout's.
    return job_argv(tmp_path / "conf" / "test.yaml",
                    [f"lake_root={tmp_path / 'lake'}", f"spark.jars_dir={ROOT / '.jars'}"], extra)


def test_jobs_in_two_threads_get_their_own_arguments(spark, tmp_path):
    barrier = threading.Barrier(2, timeout=60)
    seen: dict[str, tuple] = {}
    codes: dict[str, int] = {}
    argv_before = list(sys.argv)

    def body(ctx):
        barrier.wait()  # both jobs are inside run_job at once
        seen[ctx.name] = (ctx.settings.lake_root, ctx.args.overrides)

    def start(name: str) -> None:
        codes[name] = run_job(name, body, job_argv(TEST_CONF, [f"lake_root={tmp_path / name}"]))

    threads = [threading.Thread(target=start, args=(n,)) for n in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert codes == {"one": 0, "two": 0}
    assert seen == {n: (str(tmp_path / n), [f"lake_root={tmp_path / n}"]) for n in ("one", "two")}
    assert sys.argv == argv_before


def test_a_job_with_its_own_parser_is_called_with_its_options(spark, arg_job, capsys):
    root, path = arg_job
    assert call_job(path, _argv(root, "--rows", "3")) == 0
    assert capsys.readouterr().out.strip() == f"argjob rows=3 lake={root / 'lake'}"
    # a missing required option is argparse's usage error, exit code 2, and no exit of this process
    assert call_job(path, _argv(root)) == 2
    assert "--rows" in capsys.readouterr().err


def test_the_same_job_runs_as_a_main_file_as_spark_submit_runs_it(spark, arg_job, capsys, monkeypatch):
    root, path = arg_job
    monkeypatch.setattr(sys, "argv", [str(path), *_argv(root, "--rows", "4")])
    runpy.run_path(str(path), run_name="__main__")  # what spark-submit does with the main file
    assert capsys.readouterr().out.strip() == f"argjob rows=4 lake={root / 'lake'}"
    monkeypatch.setattr(sys, "argv", [str(path), *_argv(root, "--rows", "-1")])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(path), run_name="__main__")
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == "marketlab argjob: --rows must be >= 0, got -1"


def test_cli_run_passes_the_arguments_after_the_job_to_it(spark, arg_job):
    from click.testing import CliRunner

    from marketlab.cli import main

    root, _ = arg_job
    argv = _argv(root, "--rows", "5")
    res = CliRunner().invoke(main, ["run", "argjob", *argv])
    assert res.exit_code == 0, res.output
    assert f"argjob rows=5 lake={root / 'lake'}" in res.output
    res = CliRunner().invoke(main, ["run", "nope", *argv])
    assert res.exit_code == 2
    assert "marketlab nope: no job 'nope'" in res.output and "Traceback" not in res.output


def test_user_errors_are_one_line_and_an_exit_code(spark, tmp_path, capsys):
    argv = job_argv(TEST_CONF, [f"lake_root={tmp_path / 'lake'}"])

    def missing(ctx):
        ctx.lake.read("gold.segments")

    assert run_job("seg", missing, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("marketlab seg: table 'gold.segments' does not exist")

    class Refused(errors.GateFailedError):
        exit_code = 3

    def gate(ctx):
        raise Refused("silver.order_lines version 4 failed the data-quality gate")

    assert run_job("features", gate, argv) == 3
    assert capsys.readouterr().err.strip() == "marketlab features: silver.order_lines version 4 failed the data-quality gate"
    # a bad conf is a user error as well; a bug is not
    assert run_job("x", lambda ctx: None, job_argv(TEST_CONF, ["jobs.nope.k=1"])) == 2
    assert "jobs.nope: unknown key" in capsys.readouterr().err
    with pytest.raises(ZeroDivisionError):
        run_job("bug", lambda ctx: 1 / 0, argv)


def test_an_exit_inside_a_job_is_a_failure_not_exit_code_0(spark, tmp_path):
    """pyspark.sql.connect exits with 0 when it takes the process for a doctest run: a stage
    stopped so must not count as done (the pipeline runner records call_job's code)."""
    import sys

    def quits(ctx):
        sys.exit(0)

    argv = job_argv(TEST_CONF, [f"lake_root={tmp_path / 'lake'}"])
    with pytest.raises(RuntimeError, match=r"quits: sys.exit\(0\) called inside the job"):
        run_job("quits", quits, argv)


def test_the_error_names_of_older_code_are_user_errors():
    assert JobError is errors.UserError
    assert issubclass(ConfigError, errors.ConfError) and issubclass(ConfigError, ValueError)
    assert issubclass(TableNotFoundError, errors.MissingTableError) and issubclass(TableNotFoundError, LookupError)

"""The job harness: arguments per thread (the pipeline runs stages in threads of one process)."""

from __future__ import annotations

import sys
import threading

from conftest import ROOT
from marketlab.runtime import job_arguments, run_job


def test_jobs_in_two_threads_parse_their_own_arguments(spark, tmp_path):
    barrier = threading.Barrier(2, timeout=60)
    seen: dict[str, tuple] = {}
    argv_before = list(sys.argv)

    def body(ctx):
        barrier.wait()  # both jobs are inside run_job at once
        seen[ctx.name] = (ctx.settings.lake_root, ctx.args.overrides)

    def start(name: str) -> None:
        args = ["--conf", str(ROOT / "conf" / "test.yaml"), "--set", f"lake_root={tmp_path / name}"]
        with job_arguments(args):
            assert run_job(name, body) == 0

    threads = [threading.Thread(target=start, args=(n,)) for n in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert seen == {n: (str(tmp_path / n), [f"lake_root={tmp_path / n}"]) for n in ("one", "two")}
    assert sys.argv == argv_before


def test_without_job_arguments_the_process_arguments_are_parsed(spark, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["job.py", "--conf", str(ROOT / "conf" / "test.yaml"),
                                      "--set", f"lake_root={tmp_path / 'p'}"])
    seen = []
    assert run_job("p", lambda ctx: seen.append(ctx.settings.lake_root)) == 0
    assert seen == [str(tmp_path / "p")]

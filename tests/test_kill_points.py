"""A run killed (SIGKILL) at a point inside a stage is finished by the next run, which publishes
exactly what an uninterrupted run publishes. The killed run is the flow's own stage functions in a
child process (no Prefect, to stay quick); the next run is the Prefect flow. Kill points in ingest
are in tests/test_ingest_crash.py, in the metrics stage and with several runs at once in
tests/test_ops_processes.py, in delivery in tests/test_delivery_exactly_once.py."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys

import duckdb
import pytest

from flows import metrics
from tests.conftest import FIXTURES

KILLED_RUN = """
import os, signal, sys
from flows import checks, pipeline, snapshot
from flows.settings import load_settings

point = sys.argv[1]

def kill(where):
    print(f"killed {where}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

if point == "checks":  # while the staging suites run, after ingest committed every file
    real_gate = checks.gate
    checks.gate = lambda *args, **kwargs: kill("in the checks")
if point == "snapshot":  # the marts published, the readers' snapshot written but not yet swapped in
    real_replace = os.replace
    def replace(source, target):
        if str(target).endswith(".published.duckdb"):
            kill("before the snapshot was swapped in")
        return real_replace(source, target)
    snapshot.os.replace = replace
if point == "report":  # everything published and alerted, the report half-written
    from flows import report
    real_write = report.write
    def write(con, settings, **options):
        (settings.report_dir).mkdir(parents=True, exist_ok=True)
        (settings.report_dir / "index.html").write_text("<html><body>half a rep")
        kill("while writing the report")
    report.write = write

settings = load_settings()
run = "killed-run"
pipeline.ingest_stage.fn(settings, run)
pipeline.check_staging_stage.fn(settings, run)
pipeline.build_stage.fn(settings)
pipeline.check_marts_stage.fn(settings, run)
pipeline.publish_stage.fn(settings)
pipeline.alerts_stage.fn(settings, run)
pipeline.report_stage.fn(settings)
print("not reached", flush=True)
"""


def published(home) -> dict:
    con = duckdb.connect(str(home / "jkn.published.duckdb"), read_only=True)
    try:
        state = {
            name: con.execute(f"select * from mart.{name} order by all").fetchall() for name in metrics.mart_names()
        }
        state["load_log"] = con.execute("select file_name, status, rows_loaded from ops.load_log order by 1").fetchall()
        state["alerts"] = con.execute("select alert_key, state, severity from ops.alerts order by 1").fetchall()
        return state
    finally:
        con.close()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, prefect_server) -> dict:
    """What one run that nobody killed publishes from the small landing folder."""
    import os

    home = tmp_path_factory.mktemp("uninterrupted") / "home"
    shutil.copytree(FIXTURES / "landing_small", home / "landing")
    saved = os.environ.get("JKN_HOME")
    os.environ["JKN_HOME"] = str(home)
    try:
        from flows.pipeline import pipeline

        assert pipeline()["status"] == "completed"
    finally:
        if saved is None:
            os.environ.pop("JKN_HOME")
        else:
            os.environ["JKN_HOME"] = saved
    return published(home)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["checks", "snapshot", "report"])
def test_a_run_killed_inside_a_stage_is_finished_by_the_next_run(jkn_env, prefect_server, uninterrupted, point):
    shutil.copytree(FIXTURES / "landing_small", jkn_env / "landing")
    child = subprocess.run([sys.executable, "-c", KILLED_RUN, point], capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    assert "killed" in child.stdout and "not reached" not in child.stdout
    if point == "snapshot":
        # the writer's marts were published, the readers' snapshot not swapped in: readers see nothing new
        assert not (jkn_env / "jkn.published.duckdb").exists()
    from flows.pipeline import pipeline

    result = pipeline()
    assert result["status"] == "completed", result
    assert published(jkn_env) == uninterrupted
    assert "half a rep" not in (jkn_env / "report" / "index.html").read_text()  # the next run wrote it whole
    leftovers = [path.name for path in jkn_env.glob(".jkn.published.duckdb.*")]
    assert len(leftovers) <= 1  # at most the killed run's unfinished snapshot, never read

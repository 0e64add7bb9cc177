"""Honest check reports: a check over nothing says so and counts as no pass; the report's data-quality
section shows the checks of the run that published the marts, not a later `jkn check`."""

from __future__ import annotations

import shutil
import subprocess
import sys

import duckdb
import pytest

from tests.conftest import FIXTURES

OVERPAID = FIXTURES / "checks" / "overpaid_employer" / "employers_2022-09.csv"  # fails a critical check


def _jkn(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True)


def _query(settings, sql: str):
    con = duckdb.connect(str(settings.db_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_check_with_nothing_staged_says_so_and_records_nothing(settings):
    done = _jkn("check")
    assert done.returncode == 0, done.stderr
    assert "Nothing staged: no check ran" in done.stdout
    assert "0 critical failure" not in done.stdout  # no "N checks passed" for checks over no rows
    assert _query(settings, "select count(*) from ops.dq_results") == [(0,)]


@pytest.mark.slow
def test_the_report_shows_the_checks_of_the_publishing_run(settings, prefect_server):
    from flows import database, report
    from flows.pipeline import pipeline

    shutil.copytree(FIXTURES / "landing_small", settings.landing_dir)
    pipeline()
    # Nothing new: the staging suites have nothing to check and do not run; the marts' suites do.
    published = pipeline()
    suites = _query(settings, f"select distinct suite from ops.dq_results where run_id = '{published['run_id']}'")
    assert suites and all(suite.startswith("build.") for (suite,) in suites)
    # Since then: a new file checked by hand (it fails a critical check), not published.
    shutil.copy(OVERPAID, settings.landing_dir)
    assert _jkn("ingest").returncode == 0
    assert _jkn("check").returncode == 3

    con = database.connect(settings, read_only=True)
    try:
        shown = report.collect(con)["dq"]
    finally:
        con.close()
    assert {row["run_id"] for row in shown} == {published["run_id"]}
    assert all(row["success"] for row in shown if row["severity"] == "critical")

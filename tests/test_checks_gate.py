"""The data-quality gate: warnings publish, a critical failure quarantines the batch and
publishes nothing, results land in ops.dq_results and Data Docs; `jkn check`; and the
real Prefect flow leaving every mart table exactly as it was after a failed batch."""

from __future__ import annotations

import datetime
import json
import shutil
import sys

import duckdb
import pytest

from flows import checks, database, snapshot
from flows.errors import DataQualityError
from tests import rows
from tests.conftest import FIXTURES
from tests.fixtures.checks import batches

CHECK_FIXTURES = FIXTURES / "checks"
UNKNOWN_REGION = "region_code is a kab/kota code listed in seeds/regions.csv"
MONTH_ON_MONTH = "a region's participants change by at most 10% from the month before"


def query(settings, sql: str) -> list[tuple]:
    con = duckdb.connect(str(settings.db_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_warning_is_returned_and_the_batch_stays_staged_for_publishing(settings):
    # Kab. Batang grows from 800 to 920 participants in a month (+15%): plausible enough to publish
    batches.prepare(
        settings,
        [
            "update raw.region_counts set participants = participants + 110 "
            "where period = '2022-08' and region_code = '3325' and segment = 'PBPU' "
            "and status = 'ACTIVE'"
        ],
    )
    outcome = checks.gate(settings, checks.suite_files("staging."), "run-warn")
    assert [(w["suite"], w["expectation"], w["severity"]) for w in outcome["warnings"]] == [
        ("staging.region_counts", MONTH_ON_MONTH, "warning")
    ]
    assert "change_pct=15.0" in outcome["warnings"][0]["observed"]
    assert query(settings, "select distinct status from ops.load_log where period like '2022-08'") == [("staged",)]
    recorded = query(
        settings, "select count(*), count(*) filter (where not success) from ops.dq_results where run_id = 'run-warn'"
    )
    assert recorded == [(outcome["checked"], 1)]
    assert outcome["checked"] == sum(
        len(json.loads(path.read_text())["expectations"]) for path in checks.suite_files("staging.")
    )


def test_a_critical_failure_quarantines_the_batch_and_says_what_failed(settings):
    batches.prepare(
        settings,
        [
            "update raw.region_counts set region_code = '9999' "
            "where period = '2022-08' and region_code = '3326' and segment = 'PBPU'"
        ],
    )
    with pytest.raises(DataQualityError) as failure:
        checks.gate(settings, checks.suite_files("staging."), "run-bad")
    message = str(failure.value)
    assert f"staging.region_counts: {UNKNOWN_REGION}: observed 1 row: region_code=9999 row_count=2" in message
    assert "5 staged file(s) quarantined" in message
    assert "Data Docs:" in message
    assert {f["expectation"] for f in failure.value.failures} >= {UNKNOWN_REGION}
    assert all(f["severity"] == "critical" for f in failure.value.failures)
    statuses = dict(query(settings, "select period || ' ' || kind, status from ops.load_log"))
    assert {key: value for key, value in statuses.items() if key.startswith("2022-08")} == {
        "2022-08 region_counts": "quarantined",
        "2022-08 participants": "quarantined",
        "2022-08 employers": "quarantined",
        "2022-08 workforce": "quarantined",
    }
    assert statuses["2022-S1 population"] == "quarantined"
    assert statuses["2022-07 region_counts"] == "published"
    failed = query(
        settings,
        "select suite, expectation, severity, observed from ops.dq_results where run_id = 'run-bad' and not success",
    )
    assert ("staging.region_counts", UNKNOWN_REGION, "critical", "1 row: region_code=9999 row_count=2") in failed


def test_data_docs_are_built_from_the_validation_results(settings):
    batches.prepare(settings)
    outcome = checks.gate(settings, checks.suite_files("staging."), "run-docs")
    index = settings.data_docs_dir / "index.html"
    assert outcome["data_docs"] == str(index)
    html = index.read_text(encoding="utf-8")
    for path in checks.suite_files():
        assert path.stem in html  # every suite is listed, not only this stage's
    pages = list((settings.data_docs_dir / "validations").rglob("*.html"))
    assert {page.parent.parent.parent.name for page in pages} == {
        "region_counts",
        "population",
        "participants",
        "employers",
        "workforce",
    }
    assert all("run-docs" in str(page) for page in pages)
    page = (settings.data_docs_dir / "validations" / "staging" / "region_counts").rglob("*.html")
    assert "every region that reported last month" in next(page).read_text(encoding="utf-8")
    stored = list(checks.validations_dir(settings).rglob("*.json"))
    assert len(stored) == 5
    # A later run adds its pages; the index lists both runs.
    checks.gate(settings, checks.suite_files("build."), "run-docs-2")
    html = index.read_text(encoding="utf-8")
    assert "run-docs" in html and "run-docs-2" in html
    # Old runs are pruned per suite, from the stored results and from the pages alike.
    checks.gate(settings, checks.suite_files("staging."), "run-docs-3")
    assert checks.prune_validations(settings, keep=1) == 2 * 5
    for root in (checks.validations_dir(settings), settings.data_docs_dir / "validations"):
        runs = {(path.parent.name, path.name) for path in root.glob("*/*/*")}
        assert runs == {
            (name, "run-docs-3") for name in ("region_counts", "population", "participants", "employers", "workforce")
        } | {(path.stem.split(".")[1], "run-docs-2") for path in checks.suite_files("build.")}


def test_the_flows_staging_check_leaves_its_pages_to_the_marts_check_unless_it_fails(settings):
    """In the flow, check-staging's Data Docs are built by check-marts, once for both: every stored
    validation without a page gets one, offline like the rest. A critical failure builds them at once."""
    batches.prepare(settings)
    staging = checks.suite_files("staging.")
    outcome = checks.gate(settings, staging, "run-deferred", defer_docs=True)
    assert outcome["data_docs"] is None and not (settings.data_docs_dir / "validations").exists()
    assert len(list(checks.validations_dir(settings).rglob("*.json"))) == len(staging)  # kept for the build

    outcome = checks.gate(settings, checks.suite_files("build."), "run-deferred")
    pages = list((settings.data_docs_dir / "validations").rglob("*.html"))
    assert sorted(page.parent.parent.parent.name for page in pages) == sorted(
        path.stem.split(".")[1] for path in checks.suite_files()
    )
    assert all("run-deferred" in str(page) for page in pages)
    for page in [settings.data_docs_dir / "index.html", *pages]:
        assert "code.jquery.com" not in page.read_text(encoding="utf-8")  # the vendored copy instead

    con = database.connect(settings)
    rows.spoil(con, ["update raw.workforce set workers = -4 where period = '2022-08' and name = 'CV TIGA'"])
    con.close()
    with pytest.raises(DataQualityError) as failure:
        checks.gate(settings, staging, "run-failed", defer_docs=True)
    assert f"Data Docs: {settings.data_docs_dir / 'index.html'}" in failure.value.details
    failed_pages = list((settings.data_docs_dir / "validations").rglob("run-failed/*/*.html"))
    assert len(failed_pages) == len(staging)


def test_jkn_check_prints_a_table_and_exits_3_on_a_critical_failure(settings):
    from typer.testing import CliRunner

    from flows.cli import app

    batches.prepare(settings)
    runner = CliRunner()
    good = runner.invoke(app, ["check"])
    assert good.exit_code == 0, good.output
    assert "Checks on 5 staged file(s)" in good.output
    assert "staging.participants" in good.output and "pass" in good.output and "FAIL" not in good.output
    assert "0 critical failure(s), 0 warning(s)" in good.output
    assert f"Data Docs: {settings.data_docs_dir / 'index.html'}" in good.output

    con = database.connect(settings)
    rows.spoil(con, ["update raw.workforce set workers = -4 where period = '2022-08' and name = 'CV TIGA'"])
    con.close()
    bad = runner.invoke(app, ["check", "--failed"])
    assert bad.exit_code == 3, bad.output
    assert "staging.workforce" in bad.output and "FAIL" in bad.output and "critical" in bad.output
    assert "worker counts are never negative" in bad.output and "1 of 2 rows, e.g. -4" in bad.output
    assert "pass" not in bad.output.replace("passes", "")
    # `jkn check` only looks: nothing is quarantined.
    assert query(settings, "select count(*) from ops.load_log where status = 'quarantined'") == [(0,)]


def _mart_contents(settings) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(settings.db_path), read_only=True)
    try:
        tables = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables where table_schema = 'mart' "
                f"and not ends_with(table_name, '{snapshot.BUILT_SUFFIX}') order by table_name"  # built, not published
            ).fetchall()
        ]
        return {table: con.execute(f"select * from mart.{table} order by all").fetchall() for table in tables}
    finally:
        con.close()


def _jkn_run(monkeypatch) -> int:
    from flows.cli import main

    monkeypatch.setattr(sys, "argv", ["jkn", "run"])
    with pytest.raises(SystemExit) as exit_:
        main()
    return exit_.value.code


@pytest.mark.slow
def test_a_failed_batch_leaves_every_mart_exactly_as_it_was(settings, prefect_server, monkeypatch, capsys):
    from flows.pipeline import pipeline

    landing = settings.landing_dir
    shutil.copytree(FIXTURES / "landing_small", landing)
    first = pipeline()
    assert {f["status"] for f in first["files"]} == {"staged"}

    # September without Kab. Pemalang is not a failed batch (issue 14): the completeness check warns,
    # the other regions publish, and the missing one is shown as not reported (tests/test_region_reporting*.py).
    shutil.copy(CHECK_FIXTURES / "missing_region" / "region_counts_2022-09.csv", landing)
    assert _jkn_run(monkeypatch) == 0
    assert "missing_region_code=3327" in capsys.readouterr().out
    published = _mart_contents(settings)
    september = sorted(row[2] for row in published["coverage"] if str(row[0]) == "2022-09-01" and row[1] == "region")
    assert september == ["3325", "3326", "3375"]
    assert [row[1:6] for row in published["region_reporting"] if str(row[0]) == "2022-09-01" and not row[4]] == [
        ("3327", "Kab. Pemalang", "33", False, datetime.date(2022, 8, 1))
    ]

    before = _mart_contents(settings)
    assert set(before) == {
        "coverage",
        "coverage_by_segment",
        "trajectory",
        "employer_compliance",
        "compliance_by_region",
        "enforcement_worklist",
        "region_reporting",
    }
    assert before["coverage"] and before["trajectory"]

    # September's employer registry has an employer paying more than it owes: stopped by the staging
    # checks, before anything is built. (A region missing from a batch no longer stops it: issue 14.)
    shutil.copy(CHECK_FIXTURES / "overpaid_employer" / "employers_2022-09.csv", landing)
    assert _jkn_run(monkeypatch) == 3
    printed = capsys.readouterr().err
    assert "critical data-quality checks failed" in printed
    assert "employer_id=E002" in printed
    assert _mart_contents(settings) == before

    # A corrected population puts Kota Pekalongan at 118%: stopped by the mart checks, after
    # the build tables were rebuilt from it.
    shutil.copy(CHECK_FIXTURES / "population_correction" / "population_2022-S1.csv", landing)
    assert _jkn_run(monkeypatch) == 3
    printed = capsys.readouterr().err
    assert "build.coverage: coverage is at most 110%" in printed
    con = duckdb.connect(str(settings.db_path), read_only=True)
    try:
        rebuilt = con.execute("select max(coverage_pct) from build.coverage where code = '3375'").fetchone()[0]
        statuses = con.execute("select file_name, status from ops.load_log").fetchall()
    finally:
        con.close()
    assert rebuilt > 110
    assert _mart_contents(settings) == before
    assert sorted(statuses) == [
        ("employers_2022-09.csv", "quarantined"),
        ("population_2022-S1.csv", "published"),  # the first file stays; its correction was stopped
        ("population_2022-S1.csv", "quarantined"),
        ("region_counts_2022-07.csv", "published"),
        ("region_counts_2022-08.csv", "published"),
        ("region_counts_2022-09.csv", "published"),
    ]

    # The ops recipients were told each time (outbox: no channel is configured).
    notices = [path.read_text(encoding="utf-8") for path in settings.outbox_dir.rglob("*") if path.is_file()]
    assert any("staging.employers" in text for text in notices)
    assert any("build.coverage" in text for text in notices)

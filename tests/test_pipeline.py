"""End to end through the real Prefect flow (one session-wide test server)."""

import email
import email.policy
import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import FIXTURES

PUBLISHED = {"3375": 86.18, "3325": 85.73, "3327": 85.16, "3326": 83.70}


@pytest.mark.slow
def test_run_on_fixture_landing_folder(jkn_env, prefect_server):
    from flows.pipeline import pipeline

    landing = jkn_env / "landing"
    shutil.copytree(FIXTURES / "landing_small", landing)
    result = pipeline()
    assert sorted(f["status"] for f in result["files"]) == ["staged"] * 3
    con = duckdb.connect(str(jkn_env / "jkn.duckdb"), read_only=True)
    try:
        coverage = dict(
            con.execute(
                "select code, coverage_pct from mart.coverage where level = 'region' and month = '2022-08-01'"
            ).fetchall()
        )
        statuses = {row[0] for row in con.execute("select status from ops.load_log").fetchall()}
        trajectory_rows = con.execute("select count(*) from mart.trajectory").fetchone()[0]
        dq_rows = con.execute("select count(*), count(*) filter (where not success) from ops.dq_results").fetchone()
        emails_charts = _email_charts(jkn_env / "outbox", con)
    finally:
        con.close()
    # the flow has the emails' charts drawn from the built marts while it checks them: each email's chart is
    # the chart of the published marts, byte for byte
    assert len(emails_charts) >= 3
    for chart, expected in emails_charts:
        assert chart == expected
    for code, published in PUBLISHED.items():
        assert coverage[code] == pytest.approx(published, abs=0.01)
    assert statuses == {"published"}
    assert trajectory_rows > 0
    assert dq_rows[0] > 0 and dq_rows[1] == 0
    assert Path(result["report"]).exists()
    messages = list((jkn_env / "outbox").glob("*.json"))
    assert messages, "regions behind trajectory should raise alerts"
    body = json.loads(messages[0].read_text())
    assert body["source"] == "jkn" and body["alerts"] and len(body["text"]) <= 3000

    # A second run finds nothing new and sends nothing again.
    again = pipeline()
    assert {f["status"] for f in again["files"]} == {"skipped"}
    assert again["alerts"]["messages"] == 0
    assert len(list((jkn_env / "outbox").glob("*.json"))) == len(messages)


def _email_charts(outbox: Path, con) -> list[tuple[bytes, bytes]]:
    """(the chart PNG of each email in the outbox, the PNG `charts.trajectory_png` draws for it from `con`)."""
    from flows import charts
    from flows.alerts.delivery import _chart_scope

    languages = dict(con.execute("select message_id, language from ops.outgoing").fetchall())
    pairs = []
    for eml in sorted(outbox.glob("*.eml")):
        payload = json.loads(eml.with_suffix(".json").read_text())
        (language,) = {
            language for message_id, language in languages.items() if eml.stem.endswith("_" + message_id.split("-")[0])
        }
        mail = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        (chart,) = [part.get_content() for part in mail.walk() if part.get_content_type() == "image/png"]
        level, code = _chart_scope(payload["recipient"], payload["alerts"])
        pairs.append((chart, charts.trajectory_png(con, level, code, locale=language)))
    return pairs


@pytest.mark.slow
def test_demo_twice_loads_once_and_alerts_once(jkn_env, prefect_server):
    from typer.testing import CliRunner

    from flows.cli import app

    runner = CliRunner()
    first = runner.invoke(app, ["demo"])
    assert first.exit_code == 0, first.output
    assert "Files: 31 loaded" in first.output
    assert "Kab. Pekalongan" in first.output
    outbox = sorted((jkn_env / "outbox").iterdir())
    assert outbox
    assert "JKN_LANDING" not in os.environ, "the demo's settings must not outlive the command"
    second = runner.invoke(app, ["demo"])
    assert second.exit_code == 0, second.output
    assert "Files: 0 loaded, 31 already loaded" in second.output
    assert sorted((jkn_env / "outbox").iterdir()) == outbox

    con = duckdb.connect(str(jkn_env / "jkn.duckdb"), read_only=True)
    try:
        august = dict(
            con.execute(
                "select code, coverage_pct from mart.coverage where level = 'region' and month = '2022-08-01'"
            ).fetchall()
        )
        june_banten = con.execute(
            "select coverage_pct from mart.coverage where level = 'province' and code = '36' and month = '2022-06-01'"
        ).fetchone()[0]
        uhc_june = {
            row[0]
            for row in con.execute(
                "select code from mart.coverage where level = 'region' and code like '36%' "
                "and month = '2022-06-01' and is_uhc"
            ).fetchall()
        }
        tangsel = con.execute(
            "select strftime(month, '%Y-%m'), is_uhc from mart.coverage where code = '3674' "
            "and month between '2022-01-01' and '2022-04-01' order by month"
        ).fetchall()
    finally:
        con.close()
    for code, published in PUBLISHED.items():
        assert august[code] == pytest.approx(published, abs=0.01)
    assert june_banten == pytest.approx(90.28, abs=0.01)
    assert uhc_june == {"3671", "3674"}
    assert tangsel == [("2022-01", False), ("2022-02", False), ("2022-03", True), ("2022-04", True)]


@pytest.mark.slow
def test_a_report_that_fails_beside_the_alerts_fails_the_run_once_the_alerts_are_sent(jkn_env, prefect_server):
    """The report is made beside the alerts (flows/pipeline.py): its failure is still the run's."""
    from flows.pipeline import pipeline

    shutil.copytree(FIXTURES / "landing_small", jkn_env / "landing")
    (jkn_env / "report").write_text("a file where the report's folder should be\n")
    with pytest.raises(FileExistsError, match="report"):
        pipeline()
    assert list((jkn_env / "outbox").glob("*.json")), "the alerts beside the report were delivered"
    con = duckdb.connect(str(jkn_env / "jkn.duckdb"), read_only=True)
    try:
        assert con.execute("select status from ops.runs order by started_at desc limit 1").fetchone() == ("failed",)
    finally:
        con.close()

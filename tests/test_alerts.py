"""Alert rules, lifecycle, routing, wording and dry run, on mart tables given row by row.

The marts have the columns the real models in sql/marts build (create_marts); their rows are
given here, so each rule is tested on exactly the figures it fires on.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from flows import alerts, metrics
from flows.errors import DataQualityError
from flows.settings import load_settings

T0 = datetime(2022, 9, 5, 8, 0, tzinfo=UTC)
RUN = "run-{}".format


# --- marts with the real models' columns, rows given here -----------------------------------


def create_marts(con, compliance: bool = True) -> None:
    """Empty marts shaped as sql/marts builds them (built over no data), so a renamed or dropped
    mart column fails these tests; the rows are then given here, row by row."""
    metrics.build(con)
    marts = ["trajectory", "coverage", "region_reporting"] + (["compliance_by_region"] if compliance else [])
    for name in marts:
        con.execute(f"create or replace table mart.{name} as select * from build.{name} where false")


def put_trajectory(con, month: str, rows: dict, level: str = "region") -> None:
    """rows: code -> (actual_pct, expected_pct, status[, projected_target_month[, people_needed]])."""
    con.execute("delete from mart.trajectory where month = ? and level = ?", [f"{month}-01", level])
    for code, row in rows.items():
        actual, expected, status, *rest = row
        projected = rest[0] if rest else "2026-05"
        people = rest[1] if len(rest) > 1 else 10_000
        name = con.execute("select region_name from ref.regions where region_code = ?", [code]).fetchone()
        con.execute(
            "insert into mart.trajectory by name select ? as month, ? as level, ? as code, ? as name, "
            "98.0 as target_pct, '2024-12-31'::date as target_date, '2022-01' as baseline_month, "
            "80.0 as baseline_pct, ? as expected_pct, ? as actual_pct, ? as gap_pp, ? as people_needed, "
            "1000.0 as monthly_pace_needed, 500.0 as recent_pace, ? as projected_target_month, ? as status",
            [
                f"{month}-01",
                level,
                code,
                name[0] if name else code,
                expected,
                actual,
                expected - actual,
                people,
                projected,
                status,
            ],
        )


def put_coverage(con, month: str, rows: dict) -> None:
    """rows: code -> (participants, population, active_participants, is_uhc)."""
    con.execute("delete from mart.coverage where month = ?", [f"{month}-01"])
    for code, (participants, population, active, is_uhc) in rows.items():
        con.execute(
            # the UHC rule in force as sql/marts/coverage.sql gives it: the latest not after the month
            "insert into mart.coverage by name select ?::date as month, 'region' as level, ? as code, ? as name, "
            "? as population, '2022-S1' as population_period, ? as participants, ? as active_participants, "
            "? as coverage_pct, ? as active_rate_pct, ? as is_uhc, 'test rule' as uhc_rule, "
            "rules.min_coverage_pct as uhc_min_coverage_pct, rules.min_active_rate_pct as uhc_min_active_rate_pct, "
            "0 as regions_not_reported, false as is_partial "
            "from ref.uhc_rules as rules where rules.effective_from <= ?::date "
            "order by rules.effective_from desc limit 1",
            [
                f"{month}-01",
                code,
                code,
                population,
                participants,
                active,
                participants * 100.0 / population,
                active * 100.0 / participants,
                is_uhc,
                f"{month}-01",
            ],
        )


def put_compliance(con, month: str, rows: dict) -> None:
    """rows: code -> (workers_reported, worker_registration_pct, unpaid_contributions_idr, arrears_employers)."""
    con.execute("delete from mart.compliance_by_region where month = ?", [f"{month}-01"])
    for code, (reported, pct, unpaid, arrears) in rows.items():
        con.execute(
            "insert into mart.compliance_by_region by name select ?::date as month, 'region' as level, ? as code, "
            "10 as employers_reported, 8 as employers_registered, 2 as employers_not_registered, "
            "? as workers_reported, ? as workers_registered, ? as worker_registration_pct, "
            "1 as underreporting_employers, ? as arrears_employers, ? as unpaid_contributions_idr",
            [f"{month}-01", code, reported, round(reported * pct / 100), pct, arrears, unpaid],
        )


def recipients_file(path: Path, rows: list[tuple]) -> Path:
    """rows: (scope_code, channel, address, language, digest)."""
    lines = ["scope_code,channel,address,language,digest"] + [",".join(map(str, row)) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def outbox_settings(jkn_env, tmp_path):
    """Settings whose recipients all use the outbox channel (plain files, fast)."""
    routing = recipients_file(
        tmp_path / "recipients.csv",
        [
            ("ID", "outbox", "", "id", "true"),
            ("3325", "outbox", "batang", "id", "true"),
            ("ops", "outbox", "", "en", "true"),
        ],
    )
    return load_settings(recipients=routing)


def ops_snapshot(con) -> dict:
    tables = ["ops.alerts", "ops.alert_events", "ops.deliveries", "ops.outgoing", "ops.dq_results"]
    return {table: sorted(map(repr, con.execute(f"select * from {table}").fetchall())) for table in tables}


def sent(summary: dict) -> dict[str, str]:
    """alert_key -> state over every message of a dry-run summary."""
    return {alert["alert_key"]: alert["state"] for payload in summary["payloads"] for alert in payload["alerts"]}


# --- rules ---------------------------------------------------------------------------------------


def test_each_rule_fires_from_the_marts_in_one_evaluation(con, outbox_settings):
    create_marts(con)
    put_trajectory(
        con,
        "2022-08",
        {
            "3325": (85.73, 89.35, "BEHIND"),
            "3326": (83.70, 90.12, "CRITICAL"),
            "3327": (85.16, 85.50, "AT_RISK", "2025-11"),
            "3375": (86.18, 86.00, "ON_TRACK", "2024-10"),
        },
    )
    put_coverage(
        con,
        "2022-07",
        {
            "3325": (702_109, 818_977, 600_000, False),
            "3327": (1_313_212, 1_542_053, 1_000_000, False),
            "3671": (2_110_000, 2_215_000, 1_800_000, True),  # 95.26%
        },
    )
    put_coverage(
        con,
        "2022-08",
        {
            "3325": (702_109, 818_977, 600_000, False),
            "3327": (1_300_000, 1_542_053, 1_000_000, False),  # -0.99%: over the 0.5% threshold
            "3671": (2_100_000, 2_215_000, 1_700_000, False),  # lost UHC: 94.81% < 95%; fell only 0.47%
        },
    )
    put_compliance(
        con,
        "2022-08",
        {
            "3325": (50_000, 74.2, 250_000_000, 12),
            "3326": (40_000, 95.0, 90_000_000, 3),
        },
    )
    summary = alerts.send(con, outbox_settings, RUN(1), dry_run=True, now=T0)
    states = sent(summary)
    assert states == {
        "coverage_behind_trajectory:region:3325": "new",
        "coverage_behind_trajectory:region:3326": "new",
        "target_at_risk:region:3327": "new",
        "participants_decreased:region:3327": "new",
        "uhc_lost:region:3671": "new",
        "worker_registration_low:region:3325": "new",
        "employer_arrears:region:3325": "new",
    }
    findings = {
        row[0]: row[1:]
        for row in con.execute(
            "select alert_key, severity, measure, value, threshold, count from alert_findings where fires"
        ).fetchall()
    }
    assert findings["coverage_behind_trajectory:region:3326"][0] == "critical"
    assert findings["coverage_behind_trajectory:region:3325"][0] == "warning"
    assert findings["target_at_risk:region:3327"][1:3] == ("months_late", 11)
    assert findings["uhc_lost:region:3671"][0:2] == ("critical", "coverage_pct")
    assert findings["uhc_lost:region:3671"][2:4] == (pytest.approx(2_100_000 * 100 / 2_215_000), 95.0)
    assert findings["worker_registration_low:region:3325"][2:] == (74.2, 90.0, round(50_000 * 25.8 / 100))
    assert findings["employer_arrears:region:3325"][2:] == (250_000_000, 100_000_000, 12)
    assert findings["participants_decreased:region:3327"][1:] == ("participants", 1_300_000, 0.5, 13_212)
    # The whole evaluation is one statement per rule over every region, not a loop per region.
    assert summary["rules"] == list(alerts.RULE_NAMES)


def test_a_region_behind_its_trajectory_gets_one_trajectory_alert_not_two(con, outbox_settings):
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-08", {"3325": (85.0, 89.0, "CRITICAL", "2027-02")})
    states = sent(alerts.send(con, outbox_settings, RUN(1), dry_run=True, now=T0))
    assert states == {"coverage_behind_trajectory:region:3325": "new"}


def test_without_the_compliance_mart_its_rules_find_nothing(con, outbox_settings):
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-08", {"3325": (85.73, 89.35, "BEHIND")})
    summary = alerts.send(con, outbox_settings, RUN(1), now=T0)
    assert "worker_registration_low" not in summary["rules"] and "employer_arrears" not in summary["rules"]
    assert summary["alerts_open"] == 1 and summary["delivered"] == 2


def test_a_disabled_rule_is_not_evaluated(con, outbox_settings):
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-08", {"3325": (85.73, 89.35, "BEHIND")})
    con.execute("update ref.alert_rules set enabled = false where rule = 'coverage_behind_trajectory'")
    assert sent(alerts.send(con, outbox_settings, RUN(1), dry_run=True, now=T0)) == {}


def test_uhc_lost_stays_open_until_uhc_again_then_resolves_once(con, outbox_settings):
    create_marts(con, compliance=False)
    put_coverage(con, "2022-06", {"3671": (2_110_000, 2_215_000, 1_800_000, True)})
    put_coverage(con, "2022-07", {"3671": (2_100_000, 2_215_000, 1_700_000, False)})
    first = alerts.send(con, outbox_settings, RUN(1), now=T0)
    assert {item["scope"]: item["states"] for item in first["plan"]} == {"ID": {"new": 1}}
    # A month later it is still not UHC: not "lost" again, still open, not re-sent.
    put_coverage(con, "2022-08", {"3671": (2_101_000, 2_215_000, 1_700_000, False)})
    second = alerts.send(con, outbox_settings, RUN(2), now=T0 + timedelta(days=1))
    assert second["alerts_open"] == 1 and second["messages"] == 0
    put_coverage(con, "2022-09", {"3671": (2_120_000, 2_215_000, 1_800_000, True)})
    third = alerts.send(con, outbox_settings, RUN(3), now=T0 + timedelta(days=2))
    assert {item["scope"]: item["states"] for item in third["plan"]} == {"ID": {"resolved": 1}}
    assert con.execute("select state from ops.alerts where rule = 'uhc_lost'").fetchone()[0] == "resolved"


# --- lifecycle ---------------------------------------------------------------------------------


def test_lifecycle_new_unchanged_worsened_reminder_resolved(con, outbox_settings):
    create_marts(con, compliance=False)

    def run(number: int, day: float, row) -> dict[str, str]:
        put_trajectory(con, "2022-08", {"3325": row})
        alerts.send(con, outbox_settings, RUN(number), now=T0 + timedelta(days=day))
        return {alert["alert_key"]: alert["state"] for alert in _delivered_alerts(con, RUN(number))}

    key = "coverage_behind_trajectory:region:3325"
    assert run(1, 0, (85.0, 87.0, "BEHIND")) == {key: "new"}
    assert run(2, 1, (85.0, 87.0, "BEHIND")) == {}  # unchanged: not sent again
    assert run(3, 2, (85.0, 87.9, "BEHIND")) == {}  # gap grew 0.9 pp < the 1.0 step
    assert run(4, 3, (85.0, 88.1, "BEHIND")) == {key: "worsened"}  # 3.1 vs the 2.0 last sent
    assert run(5, 4, (85.0, 88.2, "CRITICAL")) == {key: "worsened"}  # severity rose
    assert run(6, 5, (85.0, 88.0, "CRITICAL")) == {}
    assert run(7, 4 + 7, (85.0, 88.0, "CRITICAL")) == {key: "reminder"}  # reminder_days (7) after the last send
    assert run(8, 12, (85.0, 88.0, "CRITICAL")) == {}
    assert run(9, 13, (88.0, 88.5, "ON_TRACK")) == {key: "resolved"}
    assert run(10, 14, (88.0, 88.5, "ON_TRACK")) == {}  # resolved is sent once
    assert run(11, 15, (85.0, 88.0, "BEHIND")) == {key: "new"}  # back again: new
    history = con.execute('select state from ops.alert_events where alert_key = ? order by "at"', [key]).fetchall()
    assert [row[0] for row in history] == ["new", "worsened", "worsened", "reminder", "resolved", "new"]
    first_month, state = con.execute("select first_month, state from ops.alerts where alert_key = ?", [key]).fetchone()
    assert state == "open" and first_month == date(2022, 8, 1)


def test_worsened_step_is_configurable_per_rule(con, outbox_settings):
    create_marts(con, compliance=False)
    con.execute("update ref.alert_rules set worsened_step = 0.3 where rule = 'coverage_behind_trajectory'")
    put_trajectory(con, "2022-08", {"3325": (85.0, 87.0, "BEHIND")})
    alerts.send(con, outbox_settings, RUN(1), now=T0)
    put_trajectory(con, "2022-08", {"3325": (85.0, 87.4, "BEHIND")})
    states = sent(alerts.send(con, outbox_settings, RUN(2), dry_run=True, now=T0 + timedelta(days=1)))
    assert states == {"coverage_behind_trajectory:region:3325": "worsened"}


def test_reminder_interval_is_the_setting(con, jkn_env, tmp_path):
    routing = recipients_file(tmp_path / "r.csv", [("ID", "outbox", "", "id", "true")])
    settings = load_settings(recipients=routing, reminder_days=2)
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-08", {"3325": (85.0, 87.0, "BEHIND")})
    alerts.send(con, settings, RUN(1), now=T0)
    assert sent(alerts.send(con, settings, RUN(2), dry_run=True, now=T0 + timedelta(days=1, hours=23))) == {}
    assert set(sent(alerts.send(con, settings, RUN(3), dry_run=True, now=T0 + timedelta(days=2))).values()) == {
        "reminder"
    }


def _delivered_alerts(con, run_id: str) -> list[dict]:
    import json

    rows = con.execute("select payload from ops.outgoing where run_id = ? and scope_code = 'ID'", [run_id]).fetchall()
    return [alert for (payload,) in rows for alert in json.loads(payload)["alerts"]]


# --- routing -------------------------------------------------------------------------------------


def test_batang_alert_reaches_batang_branch_province_and_nation_and_no_banten_recipient(con, settings):
    """The project's own routing file: seeds/recipients.csv."""
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-08", {"3325": (85.73, 89.35, "BEHIND"), "3375": (86.18, 86.5, "ON_TRACK")})
    summary = alerts.send(con, settings, RUN(1), dry_run=True, now=T0)
    reached = {item["recipient"]: item["scope"] for item in summary["plan"]}
    assert reached == {
        "dinkes@batangkab.example": "3325",
        "kc.pekalongan@bpjs-kesehatan.example": "PEKALONGAN",
        "kedeputian.jateng@bpjs-kesehatan.example": "33",
        "deputi.kepesertaan@bpjs-kesehatan.example": "ID",
    }
    assert not any(scope.startswith("36") for scope in reached.values())
    # and a Banten alert stays in Banten (and the nation)
    put_trajectory(con, "2022-08", {"3674": (90.0, 95.0, "CRITICAL")})
    summary = alerts.send(con, settings, RUN(2), dry_run=True, now=T0)
    assert {item["scope"] for item in summary["plan"]} == {"3674", "36", "ID"}
    english = [p for item, p in zip(summary["plan"], summary["payloads"], strict=True) if item["scope"] == "3674"][0]
    assert english["recipient"] == "3674" and "coverage 90.00% is behind" in english["alerts"][0]["message"]


def test_ops_gets_data_quality_alerts_only_and_managers_do_not(con, outbox_settings):
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-08", {"3325": (85.73, 89.35, "BEHIND")})
    failure = DataQualityError(
        "failed",
        failures=[
            {
                "suite": "staging.region_counts",
                "expectation": "expect_column_values_to_not_be_null(region_code)",
                "severity": "critical",
                "observed": "3 unexpected",
            },
        ],
    )
    alerts.notify_data_quality(con, outbox_settings, RUN(1), failure, now=T0)
    scopes = {
        row[0]: row[1] for row in con.execute("select scope_code, list_sort(alert_keys) from ops.outgoing").fetchall()
    }
    assert scopes == {"ops": ["data_quality_failed:suite:staging.region_counts"]}
    summary = alerts.send(con, outbox_settings, RUN(2), now=T0)
    assert {item["scope"] for item in summary["plan"]} == {"ID", "3325"}


def test_digest_false_sends_one_message_per_alert(con, jkn_env, tmp_path):
    routing = recipients_file(tmp_path / "r.csv", [("33", "outbox", "", "en", "false")])
    settings = load_settings(recipients=routing)
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-08", {"3325": (85.0, 87.0, "BEHIND"), "3326": (83.7, 90.1, "CRITICAL")})
    summary = alerts.send(con, settings, RUN(1), dry_run=True, now=T0)
    assert [item["alerts"] for item in summary["plan"]] == [1, 1]
    assert len({payload["alerts"][0]["alert_key"] for payload in summary["payloads"]}) == 2


def test_webhook_url_setting_adds_a_national_recipient_in_the_locale(con, jkn_env, tmp_path):
    routing = recipients_file(tmp_path / "r.csv", [("3325", "outbox", "", "id", "true")])
    settings = load_settings(recipients=routing, webhook_url="http://127.0.0.1:9/hook/s3cret", locale="en")
    recipients = alerts.read_recipients(settings)
    webhook = [r for r in recipients if r.channel == "webhook"]
    assert len(webhook) == 1 and webhook[0].scope_code == "ID" and webhook[0].language == "en"
    assert "s3cret" not in webhook[0].label and "s3cret" not in repr(webhook[0])


def test_routing_file_errors_name_the_line_and_column_and_refuse_only_that_row(con, jkn_env, tmp_path):
    good = ("3325", "outbox", "", "id", "true")
    bad_scope = recipients_file(tmp_path / "a.csv", [good, ("9999", "email", "x@example.org", "id", "true")])
    summary = alerts.send(con, load_settings(recipients=bad_scope), RUN(1), dry_run=True)
    assert summary["recipients_refused"] == [
        f"{bad_scope}, line 3, column scope_code: unknown scope code '9999' (use a region code, a province code, "
        "a branch office, ID or ops)"
    ]
    bad_channel = recipients_file(tmp_path / "b.csv", [("ID", "sms", "0812", "id", "true"), good])
    bad_language = recipients_file(tmp_path / "c.csv", [good, ("ID", "email", "x@example.org", "jv", "true")])
    for path, expected in (
        (bad_channel, "line 2, column channel: must be one of email, webhook, outbox, not 'sms'"),
        (bad_language, "line 3, column language: must be id or en, not 'jv'"),
    ):
        recipients, refused = alerts.read_routing(load_settings(recipients=path))
        assert [r.scope_code for r in recipients] == ["3325"]
        assert [str(row) for row in refused] == [f"{path}, {expected}"]


# --- wording -------------------------------------------------------------------------------------


def test_numbers_are_written_the_indonesian_way_and_english_way():
    from flows import formats

    assert formats.number(86.1849, "id", 2) == "86,18"
    assert formats.number(1313212, "id") == "1.313.212"
    assert formats.number(1313212, "en") == "1,313,212"
    id_env, en_env = alerts.environment("id"), alerts.environment("en")
    assert id_env.filters["pct"](86.18) == "86,18%" and en_env.filters["pct"](86.18) == "86.18%"
    assert id_env.filters["people"](1313212) == "1.313.212 orang"
    assert en_env.filters["people"](1313212) == "1,313,212 people"
    assert id_env.filters["month_name"]("2022-08") == "Agustus 2022"
    assert id_env.filters["long_date"]("2024-12-31") == "31 Desember 2024"
    # one empty sign for every reader (flows/formats.py): the report's, in messages too
    for name in ("num", "pct", "pp", "people", "idr", "month_name", "long_date"):
        assert id_env.filters[name](None) == en_env.filters[name](None) == formats.EMPTY == "–", name


def test_each_alert_message_is_a_sentence_in_the_recipients_language(con, jkn_env, tmp_path):
    routing = recipients_file(
        tmp_path / "r.csv", [("3327", "outbox", "", "id", "true"), ("ID", "outbox", "", "en", "true")]
    )
    settings = load_settings(recipients=routing)
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-08", {"3327": (85.16, 86.184, "BEHIND", "2025-11", 1_313_212)})
    summary = alerts.send(con, settings, RUN(1), dry_run=True, now=T0)
    by_language = {item["language"]: p for item, p in zip(summary["plan"], summary["payloads"], strict=True)}
    messages = {language: payload["alerts"][0]["message"] for language, payload in by_language.items()}
    assert messages["id"] == (
        "Kab. Pemalang: cakupan 85,16%, di bawah lintasan 86,18% menuju target 98,00% pada 31 Desember 2024; "
        "selisih 1,02 poin persen atau 1.313.212 orang. Dengan laju saat ini target tercapai November 2025."
    )
    assert messages["en"].startswith("Kab. Pemalang: coverage 85.16% is behind the trajectory's 86.18%")
    assert "1,313,212 people" in messages["en"]
    texts = {language: payload["text"] for language, payload in by_language.items()}
    assert texts["id"].startswith("Peringatan JKN Agustus 2022 untuk Kab. Pemalang: 1 peringatan (1 baru).")
    assert texts["en"].startswith("JKN alerts for August 2022, Indonesia: 1 alert (1 new).")


def test_payload_has_the_contract_shape(con, outbox_settings):
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-08", {"3326": (83.7049, 90.1234, "CRITICAL", "2026-05", 63_412)})
    payload = alerts.send(con, outbox_settings, RUN(1), dry_run=True, now=T0)["payloads"][0]
    # the contract's keys, in its order, then what digests add (the contract allows more fields)
    assert list(payload) == [
        "source",
        "run_id",
        "month",
        "recipient",
        "text",
        "alerts",
        "summary",
        "this_month",
        "report_url",
    ]
    assert payload["summary"] == {
        "worst_severity": "critical",
        "by_severity": {"critical": 1},
        "by_rule": {"coverage_behind_trajectory": 1},
        "resolved": 0,
        "total": 1,
    }
    assert (payload["source"], payload["run_id"], payload["month"], payload["recipient"]) == (
        "jkn",
        RUN(1),
        "2022-08",
        "ID",
    )
    alert = payload["alerts"][0]
    contract = {
        "alert_key": "coverage_behind_trajectory:region:3326",
        "rule": "coverage_behind_trajectory",
        "state": "new",
        "severity": "critical",
        "level": "region",
        "code": "3326",
        "name": "Kab. Pekalongan",
        "month": "2022-08",
        "actual_pct": 83.70,
        "expected_pct": 90.12,
        "target_pct": 98.0,
        "target_date": "2024-12-31",
        "gap_pp": 6.42,
        "people_needed": 63412,
        "projected_target_month": "2026-05",
    }
    assert {key: alert[key] for key in contract} == contract
    assert isinstance(alert["message"], str) and alert["message"].startswith("Kab. Pekalongan: cakupan 83,70%")


def test_a_514_region_digest_text_stays_within_3000_characters_and_counts_what_it_left_out(con, outbox_settings):
    create_marts(con, compliance=False)
    codes = [row[0] for row in con.execute("select region_code from ref.regions order by region_code").fetchall()]
    assert len(codes) == 514
    con.execute(
        """
        insert into mart.trajectory (
            month, level, code, name, target_pct, target_date, baseline_month, baseline_pct, expected_pct, actual_pct,
            gap_pp, people_needed, monthly_pace_needed, recent_pace, projected_target_month, status)
        select '2022-08-01', 'region', region_code, region_name, 98.0, '2024-12-31', '2022-01', 80.0,
               90.0, 85.0 - (row_number() over (order by region_code)) / 100.0, 0, 12345, 1000.0, 500.0,
               '2026-05', 'BEHIND'
        from ref.regions
        """
    )
    con.execute("update mart.trajectory set gap_pp = expected_pct - actual_pct")
    summary = alerts.send(con, outbox_settings, RUN(1), dry_run=True, now=T0)
    national = [p for item, p in zip(summary["plan"], summary["payloads"], strict=True) if item["scope"] == "ID"][0]
    assert len(national["alerts"]) == 514 and {a["code"] for a in national["alerts"]} == set(codes)
    text = national["text"]
    assert len(text) <= 3000
    shown = [line for line in text.splitlines() if line.startswith("- [")]
    left_out = int(re.search(r"dan ([0-9.]+) peringatan lain tidak ditampilkan", text).group(1).replace(".", ""))
    assert 0 < len(shown) < 514 and len(shown) + left_out == 514
    assert text.startswith("Peringatan JKN Agustus 2022 untuk Indonesia: 514 peringatan (514 baru).")
    # largest gaps first
    assert shown[0].endswith(national["alerts"][0]["message"])


# --- dry run -------------------------------------------------------------------------------------


def test_dry_run_shows_who_gets_what_and_changes_nothing(con, outbox_settings):
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-08", {"3325": (85.0, 87.0, "BEHIND")})
    alerts.send(con, outbox_settings, RUN(1), now=T0)
    # an alert that will be worsened, one that will resolve, one new, and a message still pending
    put_trajectory(con, "2022-08", {"3325": (85.0, 89.0, "CRITICAL"), "3326": (83.7, 90.1, "CRITICAL")})
    con.execute("update ops.outgoing set status = 'pending' where scope_code = 'ID'")
    files = sorted(outbox_settings.outbox_dir.iterdir())
    before = ops_snapshot(con)
    summary = alerts.send(con, outbox_settings, RUN(2), dry_run=True, now=T0 + timedelta(days=1))
    assert ops_snapshot(con) == before
    assert sorted(outbox_settings.outbox_dir.iterdir()) == files
    assert summary["earlier_pending"] == 1
    assert sent(summary) == {
        "coverage_behind_trajectory:region:3325": "worsened",
        "coverage_behind_trajectory:region:3326": "new",
    }
    assert {item["recipient"]: item["alerts"] for item in summary["plan"]} == {"outbox:ID": 2, "outbox:3325:batang": 1}


def test_cli_dry_run_prints_the_plan_and_leaves_the_database_as_it_was(con, jkn_env, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from flows.cli import app

    routing = recipients_file(tmp_path / "r.csv", [("3325", "outbox", "", "id", "true")])
    monkeypatch.setenv("JKN_RECIPIENTS", str(routing))
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-08", {"3325": (85.0, 87.0, "BEHIND")})
    before = ops_snapshot(con)
    con.close()
    result = CliRunner().invoke(app, ["alerts", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "outbox:3325" in result.output and "Dry run: nothing was sent" in result.output
    assert "Kab. Batang: cakupan 85,00%" in result.output
    from flows import database

    again = database.connect(load_settings())
    try:
        assert ops_snapshot(again) == before
    finally:
        again.close()
    assert not (jkn_env / "outbox").exists()


# --- data quality -------------------------------------------------------------------------------


def test_data_quality_failure_goes_to_ops_once_and_resolves_when_checks_pass(con, outbox_settings):
    failure = DataQualityError(
        "critical checks failed",
        failures=[
            {
                "suite": "staging.participants",
                "expectation": "expect_column_values_to_match_regex(card_no)",
                "severity": "critical",
                "observed": "unexpected: ['" + "0001234567890" + "']",
            },
            {
                "suite": "staging.participants",
                "expectation": "expect_column_values_to_not_be_null(region_code)",
                "severity": "critical",
                "observed": "2 unexpected, e.g. 262.1405374136614",
            },
        ],
    )
    first = alerts.notify_data_quality(con, outbox_settings, RUN(1), failure, now=T0)
    assert first["delivered"] == 1 and first["plan"][0]["scope"] == "ops"
    payload = __import__("json").loads(con.execute("select payload from ops.outgoing").fetchone()[0])
    alert = payload["alerts"][0]
    assert alert["rule"] == "data_quality_failed" and alert["count"] == 2 and alert["state"] == "new"
    assert "0001234567890" not in str(payload) and "[hidden]" in alert["detail"]
    assert "262.1405374136614" in alert["detail"]  # a number's decimals are no identifier
    assert alert["month"] == payload["month"] == "2022-09"  # no marts yet: the run's month
    assert alert["message"].startswith("Checks of staging.participants: 2 critical expectation(s) failed")
    # the same failure in the next run is not news
    again = alerts.notify_data_quality(con, outbox_settings, RUN(2), failure, now=T0 + timedelta(hours=1))
    assert again["messages"] == 0
    # a later run whose checks pass resolves it, once
    con.execute(
        "insert into ops.dq_results values (?, 'staging.participants', 'expect_x', 'critical', true, '', '', ?)",
        [RUN(3), T0 + timedelta(days=1)],
    )
    resolved = alerts.send(con, outbox_settings, RUN(3), now=T0 + timedelta(days=1))
    assert resolved["plan"] == [
        {
            "recipient": "outbox:ops",
            "scope": "ops",
            "channel": "outbox",
            "language": "en",
            "alerts": 1,
            "states": {"resolved": 1},
        }
    ]
    assert alerts.send(con, outbox_settings, RUN(4), now=T0 + timedelta(days=2))["messages"] == 0


def test_a_broken_routing_file_does_not_hide_the_data_quality_failure(con, jkn_env, tmp_path):
    routing = recipients_file(tmp_path / "r.csv", [("ops", "pigeon", "coop", "en", "true")])
    failure = DataQualityError(
        "failed",
        failures=[{"suite": "staging.population", "expectation": "x", "severity": "critical", "observed": "1"}],
    )
    summary = alerts.notify_data_quality(con, load_settings(recipients=routing), RUN(1), failure, now=T0)
    # the bad row is refused and named; with nobody left, ops hears of it through the outbox
    assert summary["recipients_refused"] == [
        f"{routing}, line 2, column channel: must be one of email, webhook, outbox, not 'pigeon'"
    ]
    assert summary["delivered"] == 1 and summary["plan"][0]["recipient"] == "outbox:ops"

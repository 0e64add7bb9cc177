"""Digests that scale: a national recipient with 514 alerts gets this month's actions first, a summary by
severity and rule, the top 20 by gap, the rest in an attached CSV, a small chart and a link to the report."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import json

from flows import alerts, digests
from flows.settings import load_settings
from tests.test_alerts import T0, create_marts, put_trajectory, recipients_file


def _national_514(con) -> None:
    create_marts(con, compliance=False)
    # every region behind, the gap growing with the code; a few critical
    con.execute(
        """
        insert into mart.trajectory (
            month, level, code, name, target_pct, target_date, baseline_month, baseline_pct, expected_pct, actual_pct,
            gap_pp, people_needed, monthly_pace_needed, recent_pace, projected_target_month, status)
        select '2022-08-01', 'region', region_code, region_name, 98.0, '2024-12-31', '2022-01', 80.0,
               90.0, 85.0 - (row_number() over (order by region_code)) / 100.0, 0, 12345, 1000.0 + row_number()
               over (order by region_code), 500.0, '2026-05',
               case when row_number() over (order by region_code) > 500 then 'CRITICAL' else 'BEHIND' end
        from ref.regions
        """
    )
    con.execute("update mart.trajectory set gap_pp = expected_pct - actual_pct")
    put_trajectory(con, "2022-07", {"ID": (84.9, 89.0, "BEHIND")}, level="national")
    put_trajectory(con, "2022-08", {"ID": (85.1, 89.4, "BEHIND")}, level="national")


def _mail(folder, scope: str) -> email.message.EmailMessage:
    (path,) = folder.glob(f"2022-08_{scope}_*.eml")
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def test_a_national_digest_of_514_alerts_is_a_summary_the_top_20_and_a_csv(con, jkn_env, tmp_path):
    routing = recipients_file(tmp_path / "r.csv", [("ID", "email", "pusat@bpjs.example", "id", "true")])
    settings = load_settings(recipients=routing, report_url="https://jkn.example.go.id/laporan/")
    _national_514(con)
    summary = alerts.send(con, settings, "run-1", now=T0)
    assert summary["delivered"] == 1
    (payload_path,) = settings.outbox_dir.glob("2022-08_ID_*.json")
    payload = json.loads(payload_path.read_text(encoding="utf-8"))
    assert len(payload["alerts"]) == 514  # the webhook payload keeps every alert (the contract)
    mail = _mail(settings.outbox_dir, "ID")

    # the subject: the worst severity and the counts
    assert payload["summary"]["by_severity"] == {"critical": 14, "warning": 500}
    assert mail["Subject"].strip() == "[JKN] KRITIS: Indonesia, 514 peringatan (14 kritis, 500 waspada), Agustus 2022"

    html = mail.get_body(("html",)).get_content()
    plain = mail.get_body(("plain",)).get_content()
    # this month's actions come before the alerts, each linking to its detail in the filtered report
    assert html.index("Yang perlu dilakukan bulan ini") < html.index("<thead>")
    first = payload["this_month"][0]
    biggest_gap = max(payload["alerts"], key=lambda alert: alert["gap_pp"])
    assert first["kind"] == "region" and first["text"].startswith(biggest_gap["name"] + ":")
    assert first["link"] == f"https://jkn.example.go.id/laporan/index.html#at=chart-{biggest_gap['code']}"
    assert f'href="{first["link"]}"' in html and 'href="https://jkn.example.go.id/laporan/index.html"' in html
    assert plain.index("Yang perlu dilakukan bulan ini:") < plain.index("- [BARU")
    # the top 20 by gap, critical first; the other 494 in the attachment
    shown = [alert["name"] for alert in digests.top(payload["alerts"])]
    assert len(shown) == 20 and html.count("<td>Cakupan di bawah lintasan target</td>") == 20
    ranked = sorted(payload["alerts"], key=lambda alert: (alert["severity"] != "critical", -alert["gap_pp"]))
    assert shown == [alert["name"] for alert in ranked[:20]]
    assert sum(line.startswith("- [") for line in plain.splitlines()) == 20
    assert "494 peringatan lain ada di lampiran alerts_2022-08_ID.csv" in plain
    (attachment,) = [part for part in mail.iter_attachments() if part.get_content_type() == "text/csv"]
    assert attachment.get_filename() == "alerts_2022-08_ID.csv"
    table = list(csv.DictReader(io.StringIO(attachment.get_content())))
    assert [row["alert_key"] for row in table] == [alert["alert_key"] for alert in payload["alerts"]]
    # the chart is sized for mail
    (image,) = [part for part in mail.walk() if part.get_content_type() == "image/png"]
    assert len(image.get_content()) < 60_000
    # the chat text has the actions and ends with the report link, within its 3000 characters
    assert len(payload["text"]) <= 3000
    assert payload["text"].splitlines()[-1] == (
        "Laporan lengkap (bisa disaring per provinsi, cabang, kab/kota): https://jkn.example.go.id/laporan/index.html"
    )


def test_without_a_report_url_a_message_says_where_the_report_file_is(con, jkn_env, tmp_path):
    routing = recipients_file(
        tmp_path / "r.csv",
        [("PEKALONGAN", "email", "kc@bpjs.example", "en", "true"), ("3325", "outbox", "", "id", "true")],
    )
    settings = load_settings(recipients=routing, locale="id")
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-08", {"3325": (85.73, 89.35, "BEHIND"), "3326": (83.70, 90.12, "CRITICAL")})
    alerts.send(con, settings, "run-1", now=T0)
    report = (settings.report_dir / "index.en.html").resolve().as_uri()
    mail = _mail(settings.outbox_dir, "PEKALONGAN")
    assert mail["Subject"].strip() == "[JKN] CRITICAL: KC Pekalongan, 2 alerts (1 critical, 1 warning), August 2022"
    plain = mail.get_body(("plain",)).get_content()
    assert f"Full report (filter by province, branch, regency/city): {report}#branch=PEKALONGAN" in plain
    assert not list(mail.iter_attachments())  # two alerts: nothing to attach
    (batang,) = settings.outbox_dir.glob("2022-08_3325_*.json")
    text = json.loads(batang.read_text(encoding="utf-8"))["text"]
    assert text.endswith((settings.report_dir / "index.html").resolve().as_uri() + "#region=3325")


def test_the_digest_csv_has_the_contracts_alert_keys_as_columns_in_order():
    """The CSV's columns are a contract (docs/alerts.md): the payload's first keys, never a copy that drifts."""
    from flows.alerts import payload

    assert digests.CSV_FIELDS == alerts.PAYLOAD_KEYS[: len(digests.CSV_FIELDS)] == payload.CONTRACT_KEYS
    assert digests.CSV_FIELDS == (
        "alert_key", "rule", "state", "severity", "level", "code", "name", "month", "actual_pct",
        "expected_pct", "target_pct", "target_date", "gap_pp", "people_needed", "projected_target_month",
        "message",
    )  # fmt: skip
    header = digests.alerts_csv([]).decode("utf-8").splitlines()[0]
    assert header.split(",") == list(digests.CSV_FIELDS)


def test_this_month_from_one_read_of_the_nation_is_each_scopes_own(tmp_path):
    """The digests read the nation's actions once a run and filter them per recipient: for every scope a
    recipient can have, the same actions in the same order as the scope's own query (`actions.for_scope`)."""
    from flows import actions, database
    from flows.settings import Settings
    from tests import rows
    from tests.conftest import TEST_KEY

    settings = Settings(home=tmp_path / "home", pseudonym_key=TEST_KEY)
    con = database.connect(settings)
    try:
        rows.publish_demo(con, settings)
        national = actions.candidates(con, "ID")
        # every province, branch and region the demo publishes, and one region it does not
        scopes = ["ID", "ops", "9999"] + [
            code
            for (code,) in con.execute(
                "select distinct code from mart.coverage where level <> 'national' order by code"
            ).fetchall()
        ]
        compared = 0
        for scope in scopes:
            own = (
                [a for a in actions.for_scope(con, "ID") if a.kind == "checks"]
                if scope == "ops"
                else actions.for_scope(con, scope, include_checks=scope == "ID")
            )
            for language in ("id", "en"):
                expected = [
                    {
                        "kind": a.kind,
                        "text": actions.sentence(a, language),
                        "link": digests.report_url(settings, language, scope, a.anchor),
                    }
                    for a in own
                ]
                assert digests.this_month(con, settings, scope, language, national) == expected, scope
                assert digests.this_month(con, settings, scope, language) == expected, scope
            compared += bool(own)
        assert compared > 3  # scopes with actions, not only empty lists
        assert {a.kind for a in national} >= {"region", "employer"}
    finally:
        con.close()

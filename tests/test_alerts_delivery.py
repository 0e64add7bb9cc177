"""Whole alert runs delivered to real receivers on 127.0.0.1: a webhook (pytest-httpserver) and a mail
server (aiosmtpd). What the receivers got, what ops.* recorded, and what the next run does."""

from __future__ import annotations

import email
import email.policy
import json
import re
import secrets
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from pytest_httpserver import HTTPServer

from flows import alerts
from flows.errors import DataQualityError
from flows.settings import load_settings
from tests.conftest import TEST_KEY
from tests.test_alerts import T0, create_marts, put_compliance, put_coverage, put_trajectory, recipients_file
from tests.test_channels import Inbox, free_port

FAST = {"delivery_retries": 2, "delivery_backoff_seconds": 0.01, "delivery_timeout_seconds": 2.0}


@pytest.fixture
def webhook_settings(jkn_env, tmp_path, httpserver):
    """Only one recipient: the JKN_WEBHOOK_URL one (national, by webhook)."""
    routing = recipients_file(tmp_path / "none.csv", [])
    return load_settings(recipients=routing, webhook_url=httpserver.url_for("/hook"), **FAST)


def posts(httpserver) -> list[tuple[dict, dict]]:
    return [(dict(request.headers), json.loads(request.get_data())) for request, _ in httpserver.log]


def test_webhook_gets_the_contract_payload_once_and_resolved_once(con, webhook_settings, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-08", {"3326": (83.70, 90.12, "CRITICAL", "2026-05", 63_412)})
    first = alerts.send(con, webhook_settings, "run-1", now=T0)
    assert first["delivered"] == 1 and first["pending"] == 0
    ((headers, body),) = posts(httpserver)
    assert headers["Content-Type"] == "application/json"
    message_id = con.execute("select message_id from ops.outgoing").fetchone()[0]
    assert headers["Idempotency-Key"] == message_id
    assert set(body) == {
        "source",
        "run_id",
        "month",
        "recipient",
        "text",
        "alerts",
        "summary",
        "this_month",
        "report_url",
    }
    assert (body["source"], body["run_id"], body["month"], body["recipient"]) == ("jkn", "run-1", "2022-08", "ID")
    assert len(body["text"]) <= 3000 and body["text"].startswith("Peringatan JKN Agustus 2022 untuk Indonesia")
    (alert,) = body["alerts"]
    assert {
        k: alert[k]
        for k in (
            "alert_key",
            "state",
            "severity",
            "actual_pct",
            "expected_pct",
            "gap_pp",
            "people_needed",
            "projected_target_month",
            "target_date",
        )
    } == {
        "alert_key": "coverage_behind_trajectory:region:3326",
        "state": "new",
        "severity": "critical",
        "actual_pct": 83.70,
        "expected_pct": 90.12,
        "gap_pp": 6.42,
        "people_needed": 63412,
        "projected_target_month": "2026-05",
        "target_date": "2024-12-31",
    }
    assert con.execute("select alert_key, recipient, channel, attempt, status from ops.deliveries").fetchall() == [
        ("coverage_behind_trajectory:region:3326", "webhook:ID:JKN_WEBHOOK_URL", "webhook", 1, "delivered")
    ]

    # unchanged: nothing is sent
    assert alerts.send(con, webhook_settings, "run-2", now=T0 + timedelta(days=1))["messages"] == 0
    assert len(httpserver.log) == 1
    # cleared: resolved, once
    put_trajectory(con, "2022-08", {"3326": (90.5, 90.12, "ON_TRACK", "2024-11", 0)})
    alerts.send(con, webhook_settings, "run-3", now=T0 + timedelta(days=2))
    alerts.send(con, webhook_settings, "run-4", now=T0 + timedelta(days=3))
    assert len(httpserver.log) == 2
    resolved = posts(httpserver)[1][1]["alerts"]
    assert [(a["alert_key"], a["state"]) for a in resolved] == [("coverage_behind_trajectory:region:3326", "resolved")]
    assert resolved[0]["message"] == "Kab. Pekalongan: cakupan 90,50% kembali sesuai lintasan (90,12%)."


def test_500_twice_then_200_is_accepted_once_with_one_idempotency_key(con, webhook_settings, httpserver):
    for status in (500, 500, 200):
        httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("", status=status)
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-08", {"3325": (85.73, 89.35, "BEHIND")})
    summary = alerts.send(con, webhook_settings, "run-1", now=T0)
    assert summary["delivered"] == 1
    keys = {headers["Idempotency-Key"] for headers, _ in posts(httpserver)}
    assert len(httpserver.log) == 3 and len(keys) == 1
    assert con.execute("select attempt, status, detail from ops.deliveries order by attempt").fetchall() == [
        (1, "error", "HTTP 500"),
        (2, "error", "HTTP 500"),
        (3, "delivered", "HTTP 200"),
    ]
    assert con.execute("select status, attempts from ops.outgoing").fetchall() == [("delivered", 3)]
    # and the next run sends nothing again
    alerts.send(con, webhook_settings, "run-2", now=T0 + timedelta(hours=1))
    assert len(httpserver.log) == 3


def test_a_receiver_down_for_a_whole_run_gets_the_message_next_run_exactly_once(con, jkn_env, tmp_path):
    port = free_port()
    settings = load_settings(
        recipients=recipients_file(tmp_path / "none.csv", []), webhook_url=f"http://127.0.0.1:{port}/hook", **FAST
    )
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-08", {"3325": (85.73, 89.35, "BEHIND")})
    down = alerts.send(con, settings, "run-1", now=T0)
    assert down["pending"] == 1 and down["delivered"] == 0
    message_id = con.execute("select message_id from ops.outgoing").fetchone()[0]
    assert con.execute("select count(*), count(*) filter (where status = 'error') from ops.deliveries").fetchone() == (
        3,
        3,
    )

    receiver = HTTPServer(host="127.0.0.1", port=port)
    receiver.expect_request("/hook", method="POST").respond_with_data("ok")
    receiver.start()
    try:
        up = alerts.send(con, settings, "run-2", now=T0 + timedelta(hours=1))
        later = alerts.send(con, settings, "run-3", now=T0 + timedelta(hours=2))
        requests = [request for request, _ in receiver.log]
    finally:
        receiver.stop()
    assert up["messages"] == 0 and up["delivered"] == 1 and later["delivered"] == 0
    assert len(requests) == 1
    assert requests[0].headers["Idempotency-Key"] == message_id
    body = json.loads(requests[0].get_data())
    assert body["run_id"] == "run-1" and body["alerts"][0]["state"] == "new"
    assert con.execute("select attempt, status, run_id from ops.deliveries order by attempt").fetchall()[-1] == (
        4,
        "delivered",
        "run-2",
    )


def test_an_outbox_that_could_not_be_written_is_written_by_the_next_run_once(con, jkn_env, tmp_path):
    settings = load_settings(recipients=recipients_file(tmp_path / "r.csv", [("3325", "outbox", "", "id", "true")]))
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-08", {"3325": (85.73, 89.35, "BEHIND")})
    settings.outbox_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.outbox_dir.write_text("in the way")
    assert alerts.send(con, settings, "run-1", now=T0)["pending"] == 1
    settings.outbox_dir.unlink()
    assert alerts.send(con, settings, "run-2", now=T0 + timedelta(hours=1))["delivered"] == 1
    assert alerts.send(con, settings, "run-3", now=T0 + timedelta(hours=2))["delivered"] == 0
    files = sorted(path.name for path in settings.outbox_dir.iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".txt")
    assert json.loads((settings.outbox_dir / files[0]).read_text())["run_id"] == "run-1"


def test_email_through_smtp_carries_the_regions_trajectory_chart(con, jkn_env, tmp_path):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    routing = recipients_file(tmp_path / "r.csv", [("3325", "email", "dinkes@batangkab.example", "en", "true")])
    settings = load_settings(
        recipients=routing, smtp_host="127.0.0.1", smtp_port=controller.port, smtp_from="jkn@bpjs.example", **FAST
    )
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-07", {"3325": (85.50, 88.90, "BEHIND")})
    put_trajectory(con, "2022-08", {"3325": (85.73, 89.35, "BEHIND")})
    try:
        summary = alerts.send(con, settings, "run-1", now=T0)
    finally:
        controller.stop()
    assert summary["delivered"] == 1
    ((to, raw),) = inbox.messages
    assert to == ["dinkes@batangkab.example"]
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    # the worst severity and the counts (coverage_behind_trajectory is a warning when BEHIND)
    assert mail["Subject"] == "[JKN] WARNING: Kab. Batang, 1 alert (1 warning), August 2022"
    plain = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Kab. Batang: coverage 85.73% is behind the trajectory's 89.35%" in plain
    assert "Kab. Batang: coverage 85.73% is behind" in html
    (image,) = [part for part in mail.walk() if part.get_content_type() == "image/png"]
    cid = image["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html
    assert image.get_content().startswith(b"\x89PNG")
    assert con.execute("select channel, status from ops.deliveries").fetchall() == [("email", "delivered")]


def test_no_nik_card_number_or_secret_in_anything_a_run_sends_or_writes(con, jkn_env, tmp_path, httpserver):
    """Every webhook payload, email and outbox file of a run (and the ops tables it wrote) is scanned."""
    token = "tok-" + secrets.token_hex(8)
    smtp_password = "pw-" + secrets.token_hex(8)
    nik = "3325" + "01" + "4" + "50190" + "0007"  # 16 digits, built here so no file holds a NIK-like literal
    card = "000" + "1234567890"  # 13 digits
    httpserver.expect_request(f"/hook/{token}", method="POST").respond_with_data("ok")

    inbox = Inbox()
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append(auth_data.login)
        return AuthResult(success=auth_data.password == smtp_password.encode(), handled=False)

    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticator,
        auth_require_tls=False,
        auth_exclude_mechanism=["LOGIN"],
    )
    controller.start()
    routing = recipients_file(
        tmp_path / "r.csv",
        [
            ("3325", "email", "dinkes@batangkab.example", "id", "true"),
            ("33", "outbox", "", "en", "false"),
            ("ops", "email", "data-engineering@bpjs.example", "en", "true"),
            ("ops", "outbox", "", "en", "true"),
        ],
    )
    settings = load_settings(
        recipients=routing,
        webhook_url=httpserver.url_for(f"/hook/{token}"),
        smtp_host="127.0.0.1",
        smtp_port=controller.port,
        smtp_user="jkn",
        smtp_password=smtp_password,
        **FAST,
    )
    create_marts(con)
    put_trajectory(con, "2022-07", {"3325": (85.50, 88.90, "BEHIND")})
    put_trajectory(con, "2022-08", {"3325": (85.73, 89.35, "BEHIND"), "3326": (83.70, 90.12, "CRITICAL")})
    put_coverage(con, "2022-07", {"3325": (702_109, 818_977, 600_000, False)})
    put_coverage(con, "2022-08", {"3325": (690_000, 818_977, 600_000, False)})
    put_compliance(con, "2022-08", {"3325": (50_000, 74.2, 250_000_000, 12)})
    failure = DataQualityError(
        "critical checks failed",
        failures=[
            {
                "suite": "staging.participants",
                "expectation": "expect_column_values_to_match_regex(card_no)",
                "severity": "critical",
                "observed": f"unexpected values: ['{card}', '{nik}']",
            }
        ],
    )
    try:
        dq = alerts.notify_data_quality(con, settings, "run-1", failure, now=T0)
        run = alerts.send(con, settings, "run-1", now=T0)
    finally:
        controller.stop()
    assert dq["delivered"] == 2 and run["delivered"] >= 4 and run["pending"] == run["failed"] == 0
    assert logins and all(login == b"jkn" for login in logins)

    documents: list[str] = []
    documents += [request.get_data(as_text=True) + str(dict(request.headers)) for request, _ in httpserver.log]
    for _, raw in inbox.messages:
        mail = email.message_from_bytes(raw, policy=email.policy.default)
        documents.append(str(mail.items()))
        documents += [part.get_content() for part in mail.walk() if part.get_content_maintype() == "text"]
    documents += [path.read_text(encoding="utf-8", errors="replace") for path in settings.outbox_dir.iterdir()]
    for table in ("ops.outgoing", "ops.deliveries", "ops.alerts", "ops.alert_events"):
        documents += [repr(row) for row in con.execute(f"select * from {table}").fetchall()]
    kinds = {
        "webhook": len(httpserver.log),
        "email": len(inbox.messages),
        "outbox": len(list(settings.outbox_dir.iterdir())),
    }
    assert all(kinds.values()), kinds
    # the failure really was in what was sent, with the identifiers cut out; the scan would see them
    assert any("expect_column_values_to_match_regex(card_no)" in document for document in documents)
    assert re.findall(r"(?<![0-9.])[0-9]{13}(?![0-9])", f"['{card}']") == [card]

    found = []
    for document in documents:
        # whole numbers only: the decimals of a full-precision float (ops.alerts.details) are no identifier
        found += re.findall(r"(?<![0-9.])[0-9]{16}(?![0-9])", document)  # NIK
        found += re.findall(r"(?<![0-9.])[0-9]{13}(?![0-9])", document)  # card number
        found += [secret for secret in (TEST_KEY, token, smtp_password) if secret in document]
    assert found == []

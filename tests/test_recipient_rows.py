"""One bad recipient never blocks the others: a real `jkn alerts` with a routing file holding an
address with a line break and one that is markup, against a real mail server (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
import os
import subprocess
import sys

import pytest

from flows import alerts
from flows.recipient_rows import address_problem
from flows.settings import load_settings
from tests.test_alerts import T0, create_marts, put_trajectory, recipients_file
from tests.test_channels import Inbox, free_port

ROUTING = (
    "scope_code,channel,address,language,digest\n"
    "3325,email,dinkes@batangkab.example,id,true\n"
    '3326,email,"kc.pekalongan@example.org\nBcc: everyone@evil.test",id,true\n'
    '33,email,"evil""><script>alert(1)</script>@x.test",id,true\n'
    "ID,email,deputi@bpjs.example,en,true\n"
    "ID,webhook,javascript:alert(1),en,true\n"
)


@pytest.mark.parametrize(
    ("channel", "address", "problem"),
    [
        ("email", "kc@example.org\r\nBcc: x@evil.test", "line break"),
        ("email", 'evil"><script>alert(1)</script>@x.test', "not an email address"),
        ("email", "no-at-sign.example.org", "not an email address"),
        ("email", "two@@example.org", "not an email address"),
        ("email", "Name <kc@example.org>", "not an email address"),
        ("email", "kc@exa mple.org", "not an email address"),
        ("webhook", "ftp://127.0.0.1/hook", "not an http(s) URL"),
        ("webhook", "http:///no-host", "not an http(s) URL"),
        ("outbox", "label\nwith a break", "line break"),
    ],
)
def test_addresses_that_cannot_be_right_are_named(channel, address, problem):
    assert problem in address_problem(channel, address)


@pytest.mark.parametrize(
    ("channel", "address"),
    [
        ("email", "kc.pekalongan@bpjs-kesehatan.example"),
        ("email", "o'brien+jkn@example.org"),
        ("email", "ops@localhost"),
        ("webhook", "https://chat.example/hooks/T0/B0/xyz?x=1"),
        ("outbox", "batang"),
    ],
)
def test_real_addresses_pass(channel, address):
    assert address_problem(channel, address) is None


def test_a_bad_row_is_refused_with_line_and_column_and_the_others_get_their_mail(con, jkn_env, tmp_path):
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    routing = tmp_path / "recipients.csv"
    routing.write_text(ROUTING, encoding="utf-8")
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-08", {"3325": (85.73, 89.35, "BEHIND"), "3326": (83.70, 90.12, "CRITICAL")})
    con.close()
    environment = {
        **os.environ,
        "JKN_RECIPIENTS": str(routing),
        "JKN_SMTP_HOST": "127.0.0.1",
        "JKN_SMTP_PORT": str(controller.port),
        "JKN_DELIVERY_BACKOFF_SECONDS": "0.01",
    }
    try:
        runs = [
            subprocess.run(
                [sys.executable, "-m", "flows.cli", "alerts"],
                env=environment,
                capture_output=True,
                text=True,
                timeout=120,
            )
            for _ in range(2)
        ]
    finally:
        controller.stop()
    first, second = runs
    assert first.returncode == 0, first.stderr
    stderr = " ".join(first.stderr.split())
    for expected in (
        f"{routing}, line 3, column address: the address holds a line break or another control character",
        f"{routing}, line 5, column address: not an email address (expected name@domain): "
        "'evil\"><script>alert(1)</script>@x.test'",
        f"{routing}, line 7, column address: not an http(s) URL with a host",
    ):
        assert f"recipient refused: {expected}" in stderr, first.stderr
    assert "Delivered: 2, still pending (retried by the next run): 0, failed for good: 0" in first.stdout
    # the good recipients got their message, once; the bad rows nothing, and no header was injected
    assert sorted(to[0] for to, _ in inbox.messages) == ["deputi@bpjs.example", "dinkes@batangkab.example"]
    for _, raw in inbox.messages:
        assert "Bcc" not in email.message_from_bytes(raw, policy=email.policy.default)
    assert second.returncode == 0 and "Delivered: 0" in second.stdout and len(inbox.messages) == 2


def test_a_message_that_cannot_be_composed_fails_alone(con, jkn_env, tmp_path):
    routing = recipients_file(
        tmp_path / "r.csv", [("3325", "outbox", "", "id", "true"), ("ID", "outbox", "", "en", "true")]
    )
    settings = load_settings(recipients=routing)
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-08", {"3325": (85.73, 89.35, "BEHIND")})
    alerts.send(con, settings, "run-1", now=T0, dry_run=False)
    # a pending message an older version wrote, which this one cannot make an envelope of
    con.execute(
        "insert into ops.outgoing values ('broken-1', 'run-0', 'outbox:3325', 'outbox', '3325', 'id', "
        "['k'], '{\"no\": \"alerts\"}', 'pending', 0, '2022-01-01', null)"
    )
    con.execute("update ops.outgoing set status = 'pending' where message_id <> 'broken-1'")
    summary = alerts.deliver_pending(con, settings, alerts.read_recipients(settings), "run-2")
    assert (summary["delivered"], summary["failed"]) == (2, 1)
    assert con.execute("select status from ops.outgoing where message_id = 'broken-1'").fetchone() == ("failed",)
    (detail,) = con.execute("select detail from ops.deliveries where message_id = 'broken-1'").fetchone()
    assert detail.startswith("could not be sent: KeyError")

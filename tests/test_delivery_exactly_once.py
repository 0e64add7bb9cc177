"""A message a mail server accepted is never sent again: real aiosmtpd servers on 127.0.0.1 that
misbehave after the message has gone (421 to QUIT, a 250 that comes after the client gave up, a
client killed with SIGKILL while the server holds the message)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

from aiosmtpd.controller import Controller

from flows import alerts
from flows.settings import load_settings
from tests.test_alerts import T0, create_marts, put_trajectory, recipients_file
from tests.test_channels import free_port

FAST = {"delivery_retries": 3, "delivery_backoff_seconds": 0.01, "delivery_timeout_seconds": 0.5}
TWO_RECIPIENTS = [
    ("3325", "email", "dinkes@batangkab.example", "id", "true"),
    ("ID", "email", "deputi@bpjs.example", "en", "true"),
]


class Server:
    """aiosmtpd's handler hooks: what it says after DATA and to QUIT, and how long it takes."""

    def __init__(self, quit_reply: str | None = None, data_delays: tuple[float, ...] = ()):
        self.messages: list[tuple[list[str], bytes]] = []
        self.quit_reply = quit_reply
        self.data_delays = list(data_delays)  # one per message, in order; then none
        self.got_data = threading.Event()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook names)
        self.got_data.set()
        self.messages.append((envelope.rcpt_tos, envelope.content))
        await asyncio.sleep(self.data_delays.pop(0) if self.data_delays else 0)
        return "250 OK queued"

    async def handle_QUIT(self, server, session, envelope):  # noqa: N802
        return self.quit_reply or "221 Bye"


def started(handler) -> Controller:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller


def prepared(con, jkn_env, tmp_path, port: int):
    routing = recipients_file(tmp_path / "r.csv", TWO_RECIPIENTS)
    settings = load_settings(recipients=routing, smtp_host="127.0.0.1", smtp_port=port, **FAST)
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-08", {"3325": (85.73, 89.35, "BEHIND")})
    return settings


def test_a_421_to_quit_after_the_250_is_a_delivery_not_a_reason_to_send_again(con, jkn_env, tmp_path):
    handler = Server(quit_reply="421 4.3.0 closing, try again later")
    controller = started(handler)
    try:
        settings = prepared(con, jkn_env, tmp_path, controller.port)
        first = alerts.send(con, settings, "run-1", now=T0)
        second = alerts.send(con, settings, "run-2", now=T0 + timedelta(hours=1))
    finally:
        controller.stop()
    assert (first["delivered"], first["pending"], first["unknown"]) == (2, 0, 0)
    assert second["delivered"] == second["pending"] == 0
    assert sorted(to for to, _ in handler.messages) == [["deputi@bpjs.example"], ["dinkes@batangkab.example"]]
    assert con.execute("select status, attempts from ops.outgoing").fetchall() == [("delivered", 1)] * 2
    assert con.execute(
        "select count(*), count(*) filter (where status = 'delivered') from ops.deliveries"
    ).fetchone() == (2, 2)


def test_a_250_after_the_clients_timeout_is_unknown_and_never_sent_again(con, jkn_env, tmp_path):
    handler = Server(data_delays=(1.2, 1.2))  # the client waits 0.5 s for the verdict
    controller = started(handler)
    try:
        settings = prepared(con, jkn_env, tmp_path, controller.port)
        first = alerts.send(con, settings, "run-1", now=T0)
        second = alerts.send(con, settings, "run-2", now=T0 + timedelta(hours=1))
        time.sleep(1.5)  # the server finishes its late 250s
    finally:
        controller.stop()
    assert (first["delivered"], first["pending"], first["unknown"]) == (0, 0, 2)
    assert second["delivered"] == second["pending"] == second["unknown"] == 0
    assert len(handler.messages) == 2  # one copy each, although the client never heard the 250
    assert con.execute("select status, attempts from ops.outgoing").fetchall() == [("unknown", 1)] * 2
    details = [row[0] for row in con.execute("select detail from ops.deliveries where status = 'unknown'").fetchall()]
    assert len(details) == 2 and all("may have been delivered" in detail for detail in details)


def test_a_run_killed_while_the_server_holds_the_message_is_not_repeated_by_the_next_run(con, jkn_env, tmp_path):
    handler = Server(data_delays=(3.0,))
    controller = started(handler)
    try:
        settings = prepared(con, jkn_env, tmp_path, controller.port)
        con.close()
        environment = {
            **os.environ,
            "JKN_RECIPIENTS": str(settings.recipients),
            "JKN_SMTP_HOST": "127.0.0.1",
            "JKN_SMTP_PORT": str(controller.port),
            "JKN_DELIVERY_TIMEOUT_SECONDS": "30",
            "JKN_DELIVERY_BACKOFF_SECONDS": "0.01",
        }
        run = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "alerts"],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert handler.got_data.wait(60), "the alerts run never reached the mail server"
        os.kill(run.pid, signal.SIGKILL)  # the server has the whole message; its 250 is 3 s away
        run.wait()
        time.sleep(3.5)
        from flows import database

        con = database.connect(settings)
        stuck = con.execute("select status from ops.outgoing where status = 'sending'").fetchall()
        after = alerts.send(con, settings, "run-after", now=T0 + timedelta(hours=1))
        time.sleep(0.2)
    finally:
        controller.stop()
    assert stuck == [("sending",)]
    assert after["unknown"] == 1 and after["delivered"] == 1  # the other message was still pending
    copies = sorted(to[0] for to, _ in handler.messages)
    assert copies == sorted(address for _, _, address, _, _ in TWO_RECIPIENTS)  # each exactly once
    statuses = dict(con.execute("select recipient, status from ops.outgoing").fetchall())
    assert sorted(statuses.values()) == ["delivered", "unknown"]
    con.close()

"""Webhook receivers that break the rules, as real TCP servers on 127.0.0.1: a 200 whose body is cut
off (retried, not given up), a receiver that trickles bytes for ever or never answers (the run's
delivery time budget and the attempts per message per run bound what it costs)."""

from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta

import pytest

from flows import alerts
from flows.channels import WebhookChannel
from flows.settings import load_settings
from tests.test_alerts import T0, create_marts, put_trajectory, recipients_file
from tests.test_channels import envelope


class RawServer:
    """Accepts connections and hands each, with its number, to `answer(connection, number)`."""

    def __init__(self, answer):
        self.answer = answer
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        number = 0
        while not self.closed.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(connection, number), daemon=True).start()
            number += 1

    def _handle(self, connection: socket.socket, number: int) -> None:
        with connection:
            connection.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                data += connection.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(
                next(
                    (line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
                    b"0",
                )
            )
            while len(body) < length:
                body += connection.recv(65536)
            self.requests.append(head)
            try:
                self.answer(connection, number, self.closed)
            except OSError:
                pass

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        self.closed.set()
        self.listener.close()


def cut_off_then_whole(connection, number, closed) -> None:
    if number == 0:  # says 200 with 60 bytes of body, sends 7 and hangs up
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 60\r\nConnection: close\r\n\r\npartial")
    else:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


def trickle(connection, number, closed) -> None:
    """A status line, then one byte of header every 0.1 s for as long as the client listens."""
    connection.sendall(b"HTTP/1.1 200 OK\r\n")
    while not closed.is_set():
        connection.sendall(b"X")
        time.sleep(0.1)


def never_answers(connection, number, closed) -> None:
    closed.wait(30)


def test_a_200_whose_body_is_cut_off_is_retried_with_the_same_key():
    server = RawServer(cut_off_then_whole)
    try:
        delivery = WebhookChannel(server.url, retries=2, backoff_seconds=0.01, timeout_seconds=2).deliver(envelope())
    finally:
        server.stop()
    assert delivery.status == "delivered"
    assert [attempt.status for attempt in delivery.attempts] == ["error", "delivered"]
    assert "ChunkedEncodingError" in delivery.attempts[0].detail
    assert len(server.requests) == 2 and all(b"Idempotency-Key: msg-0001" in head for head in server.requests)


def test_a_trickling_receiver_costs_the_timeout_per_attempt_not_for_ever():
    server = RawServer(trickle)
    try:
        started = time.monotonic()
        delivery = WebhookChannel(server.url, retries=1, backoff_seconds=0.01, timeout_seconds=0.5).deliver(envelope())
        took = time.monotonic() - started
    finally:
        server.stop()
    assert delivery.status == "pending" and [a.status for a in delivery.attempts] == ["error", "error"]
    assert took < 2.5, took  # two attempts of 0.5 s each, although bytes kept coming


@pytest.fixture
def hanging_receiver():
    server = RawServer(never_answers)
    yield server
    server.stop()


def test_a_receiver_that_hangs_holds_the_run_no_longer_than_the_budget(con, jkn_env, tmp_path, hanging_receiver):
    routing = recipients_file(tmp_path / "r.csv", [("ID", "webhook", hanging_receiver.url, "id", "false")])
    settings = load_settings(
        recipients=routing,
        delivery_retries=3,
        delivery_backoff_seconds=0.01,
        delivery_timeout_seconds=0.6,
        delivery_budget_seconds=2.0,
    )
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-08", {code: (85.0, 89.0, "BEHIND") for code in ("3325", "3326", "3327", "3375")})
    started = time.monotonic()
    summary = alerts.send(con, settings, "run-1", now=T0)
    took = time.monotonic() - started
    assert summary["messages"] == 4 and summary["pending"] == 4 and summary["delivered"] == 0
    assert took < 3.5, took
    # the first message used its attempts; the others waited for the next run untried
    per_message = con.execute("select count(distinct attempt) from ops.deliveries group by message_id").fetchall()
    assert per_message == [(3,)] or per_message == [(4,)], per_message
    assert con.execute("select count(*) from ops.outgoing where status = 'pending'").fetchone() == (4,)


def test_resending_one_key_is_bounded_per_run_even_when_the_task_is_retried(con, jkn_env, tmp_path, httpserver):
    httpserver.expect_request("/hook").respond_with_data("busy", status=503)
    settings = load_settings(
        recipients=recipients_file(tmp_path / "none.csv", []),
        webhook_url=httpserver.url_for("/hook"),
        delivery_retries=2,
        delivery_backoff_seconds=0.01,
        delivery_timeout_seconds=2.0,
    )
    create_marts(con, compliance=False)
    put_trajectory(con, "2022-08", {"3325": (85.0, 89.0, "BEHIND")})
    alerts.send(con, settings, "run-1", now=T0)
    assert len(httpserver.log) == 3  # 1 + 2 retries
    # Prefect retrying the alerts task runs the same run again: no more sends of that key
    again = alerts.send(con, settings, "run-1", now=T0)
    assert len(httpserver.log) == 3 and again["pending"] == 1
    # the next run may try again, as many times
    alerts.send(con, settings, "run-2", now=T0 + timedelta(hours=1))
    assert len(httpserver.log) == 6
    keys = {request.headers["Idempotency-Key"] for request, _ in httpserver.log}
    assert len(keys) == 1

"""The delivery channels against real servers on 127.0.0.1: HTTP (pytest-httpserver) and SMTP (aiosmtpd)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import json
import socket
import ssl
import struct
import time
import zlib
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from werkzeug import Response

from flows.channels import EmailChannel, Envelope, OutboxChannel, WebhookChannel

FAST = {"retries": 2, "backoff_seconds": 0.01, "timeout_seconds": 2.0}


def tiny_png() -> bytes:
    """A real 1x1 PNG, so the mail carries a decodable image without drawing a chart."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def envelope(address: str = "kc.pekalongan@example.org", email_parts: bool = False, **changes) -> Envelope:
    payload = {
        "source": "jkn",
        "run_id": "r1",
        "month": "2022-08",
        "recipient": "PEKALONGAN",
        "text": "Peringatan JKN Agustus 2022",
        "alerts": [{"alert_key": "k", "message": "Kab. Batang: ..."}],
    }
    fields = {
        "message_id": "msg-0001",
        "recipient": "label",
        "address": address,
        "payload": payload,
        "file_stem": "2022-08_PEKALONGAN_msg-0001",
    }
    if email_parts:
        fields.update(
            subject="[JKN] KC Pekalongan: 1 peringatan, Agustus 2022",
            text="teks biasa 86,18%",
            html='<p>HTML 86,18%</p><img src="cid:chart-1@jkn.alerts">',
            chart_png=tiny_png(),
            chart_cid="chart-1@jkn.alerts",
        )
    fields.update(changes)
    return Envelope(**fields)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- webhook ------------------------------------------------------------------------------------


def test_webhook_posts_json_with_idempotency_key(httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    delivery = WebhookChannel(httpserver.url_for("/hook"), **FAST).deliver(envelope())
    assert delivery.status == "delivered" and [a.status for a in delivery.attempts] == ["delivered"]
    request, _ = httpserver.log[0]
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == "msg-0001"
    assert json.loads(request.get_data()) == envelope().payload


def test_webhook_retries_5xx_with_the_same_key_until_accepted(httpserver):
    for status in (500, 503):
        httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("busy", status=status)
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("ok", status=200)
    delivery = WebhookChannel(httpserver.url_for("/hook"), **FAST).deliver(envelope())
    assert delivery.status == "delivered"
    assert [(a.status, a.detail) for a in delivery.attempts] == [
        ("error", "HTTP 500"),
        ("error", "HTTP 503"),
        ("delivered", "HTTP 200"),
    ]
    keys = [request.headers["Idempotency-Key"] for request, _ in httpserver.log]
    assert keys == ["msg-0001"] * 3
    httpserver.check_assertions()


def test_webhook_honours_retry_after_on_429(httpserver):
    httpserver.expect_ordered_request("/hook").respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "0.2"})
    )
    httpserver.expect_ordered_request("/hook").respond_with_data("ok")
    started = time.monotonic()
    delivery = WebhookChannel(httpserver.url_for("/hook"), **FAST).deliver(envelope())
    assert delivery.status == "delivered" and len(httpserver.log) == 2
    assert time.monotonic() - started >= 0.2


def test_webhook_4xx_is_permanent_and_not_retried(httpserver):
    httpserver.expect_request("/hook").respond_with_data("no such hook", status=404)
    delivery = WebhookChannel(httpserver.url_for("/hook"), **FAST).deliver(envelope())
    assert delivery.status == "failed" and len(httpserver.log) == 1


def test_webhook_connection_refused_stays_pending_and_hides_the_url():
    url = f"http://127.0.0.1:{free_port()}/hook/tok-SECRET-123?key=abc"
    delivery = WebhookChannel(url, **FAST).deliver(envelope())
    assert delivery.status == "pending"
    assert [a.status for a in delivery.attempts] == ["error"] * 3
    for attempt in delivery.attempts:
        assert "tok-SECRET-123" not in attempt.detail and "key=abc" not in attempt.detail
    assert "tok-SECRET" not in repr(WebhookChannel(url))


def test_webhook_timeout_is_retried(httpserver):
    def slow(request):
        time.sleep(0.5)
        return Response("late")

    httpserver.expect_ordered_request("/hook").respond_with_handler(slow)
    httpserver.expect_ordered_request("/hook").respond_with_data("ok")
    # the test server answers one request at a time: retry after the slow answer is done
    delivery = WebhookChannel(httpserver.url_for("/hook"), retries=2, backoff_seconds=0.6, timeout_seconds=0.2).deliver(
        envelope()
    )
    assert delivery.status == "delivered"
    assert delivery.attempts[0].status == "error" and "Timeout" in delivery.attempts[0].detail


# --- email --------------------------------------------------------------------------------------


class Inbox:
    def __init__(self):
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.messages.append((envelope.rcpt_tos, envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


def test_email_has_plain_text_html_and_the_chart_inline(smtp_server):
    controller, inbox = smtp_server
    channel = EmailChannel("127.0.0.1", controller.port, sender="jkn@bpjs.example", **FAST)
    delivery = channel.deliver(envelope(email_parts=True))
    assert delivery.status == "delivered"
    ((to, raw),) = inbox.messages
    assert to == ["kc.pekalongan@example.org"]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"] == "[JKN] KC Pekalongan: 1 peringatan, Agustus 2022"
    assert message["From"] == "jkn@bpjs.example" and message["Message-ID"] == "<msg-0001@jkn.alerts>"
    assert message.get_body(("plain",)).get_content().strip() == "teks biasa 86,18%"
    html = message.get_body(("html",))
    assert 'src="cid:chart-1@jkn.alerts"' in html.get_content()
    images = [part for part in message.walk() if part.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0]["Content-ID"] == "<chart-1@jkn.alerts>"
    assert images[0].get_content() == tiny_png()


def self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_email_with_starttls_and_login(tmp_path, monkeypatch):
    cert, key = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    logins = []

    def authenticator(server, session, envelope_, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password, session.ssl is not None))
        # handled=False: aiosmtpd then answers a refusal with 535 itself
        return AuthResult(success=auth_data.password == b"s3cret-pass", handled=False)

    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=True,
        auth_exclude_mechanism=["LOGIN"],
    )
    controller.start()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts our test certificate
    try:
        good = EmailChannel("127.0.0.1", controller.port, user="jkn", password="s3cret-pass", starttls=True, **FAST)
        assert good.deliver(envelope(email_parts=True)).status == "delivered"
        bad = EmailChannel("127.0.0.1", controller.port, user="jkn", password="wrong", starttls=True, **FAST)
        refused = bad.deliver(envelope(email_parts=True))
    finally:
        controller.stop()
    assert len(inbox.messages) == 1
    assert logins[0] == (b"jkn", b"s3cret-pass", True)  # login only after STARTTLS
    assert refused.status == "failed" and len(refused.attempts) == 1
    assert "wrong" not in refused.attempts[0].detail and "s3cret" not in repr(good)


def test_email_server_down_stays_pending():
    delivery = EmailChannel("127.0.0.1", free_port(), **FAST).deliver(envelope(email_parts=True))
    assert delivery.status == "pending" and [a.status for a in delivery.attempts] == ["error"] * 3


# --- outbox -------------------------------------------------------------------------------------


def test_outbox_writes_json_and_eml_for_email_recipients_and_txt_otherwise(tmp_path):
    outbox = OutboxChannel(tmp_path / "outbox", sender="jkn@bpjs.example")
    as_email = outbox.deliver(envelope(email_parts=True))
    as_text = outbox.deliver(envelope(message_id="msg-0002", file_stem="2022-08_ID_msg-0002"))
    assert as_email.status == as_text.status == "delivered"
    names = sorted(path.name for path in (tmp_path / "outbox").iterdir())
    assert names == [
        "2022-08_ID_msg-0002.json",
        "2022-08_ID_msg-0002.txt",
        "2022-08_PEKALONGAN_msg-0001.eml",
        "2022-08_PEKALONGAN_msg-0001.json",
    ]
    assert json.loads((tmp_path / "outbox" / "2022-08_PEKALONGAN_msg-0001.json").read_text()) == envelope().payload
    mail = email.message_from_bytes(
        (tmp_path / "outbox" / "2022-08_PEKALONGAN_msg-0001.eml").read_bytes(), policy=email.policy.default
    )
    assert mail["To"] == "kc.pekalongan@example.org" and mail.get_body(("html",)) is not None
    assert (tmp_path / "outbox" / "2022-08_ID_msg-0002.txt").read_text() == "Peringatan JKN Agustus 2022"
    # written again (a retry): the same files, replaced whole, no temporary files left
    outbox.deliver(envelope(email_parts=True))
    assert sorted(path.name for path in (tmp_path / "outbox").iterdir()) == names


def test_outbox_that_cannot_be_written_stays_pending(tmp_path):
    blocked = tmp_path / "outbox"
    blocked.write_text("a file where the folder should be")
    delivery = OutboxChannel(blocked).deliver(envelope())
    assert delivery.status == "pending" and delivery.attempts[0].status == "error"

"""Delivery channels for alert messages: webhook, email, outbox folder.

Each channel is an object with one method, `deliver(envelope) -> Delivery`.
A channel knows its transport only: what to say is decided in `alerts.py`, and
what was tried is recorded there (`ops.deliveries`, `ops.outgoing`).

Webhook and email retry a temporary failure (HTTP 5xx, 408, 429, a connection
error or timeout, a 2xx whose body was cut off; an SMTP 4xx reply or a dropped
connection before the message went out) a few times with a doubling backoff
inside one run, always with the same Idempotency-Key, within what the message's
journal allows (attempts per run, the run's delivery time budget). What is still
undelivered after that comes back as `pending`, for the next run. A permanent
failure (another HTTP 4xx, an SMTP 5xx, a refused login) is `failed`: retrying
the same request would not help. An email whose content went out but got no
verdict is `unknown`: it may have been accepted, so it is never re-sent blindly
(flows/smtp_session.py).

Each attempt is reported to the journal as soon as it is over, so acceptance is
recorded before anything else can fail. Details stored about an attempt never
contain the webhook URL (it often holds a token) or the SMTP password, in any
spelling (flows/scrub.py).
"""

from __future__ import annotations

import json
import os
import smtplib
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from urllib.parse import urlsplit

import requests

from flows.delivery_journal import Journal
from flows.scrub import hide_secrets
from flows.smtp_session import AnswerUnknown, JournalledSMTP

USER_AGENT = "jkn-alerts/0.1"
# A receiver may ask for a longer pause with Retry-After; longer than this and
# the message waits for the next run instead of holding up this one.
MAX_RETRY_AFTER_SECONDS = 60.0


@dataclass
class Envelope:
    """One message to one recipient, ready for a channel."""

    message_id: str  # the Idempotency-Key: the same on every retry, in every run
    recipient: str  # the label stored in ops.deliveries (never a secret URL)
    address: str = field(repr=False)  # email address, webhook URL or outbox label
    payload: dict = field(repr=False)
    file_stem: str = ""  # outbox file name without extension
    subject: str = ""  # email parts; empty for webhook recipients
    text: str = field(default="", repr=False)
    html: str = field(default="", repr=False)
    chart_png: bytes | None = field(default=None, repr=False)
    chart_cid: str = ""
    # (file name, bytes, MIME type): e.g. the digest's alerts as CSV when there are more than an email shows
    attachments: list[tuple[str, bytes, str]] = field(default_factory=list, repr=False)

    @property
    def is_email(self) -> bool:
        return bool(self.subject)


@dataclass
class Attempt:
    status: str  # delivered | error (temporary) | failed (permanent) | unknown (maybe delivered)
    detail: str
    at: float = field(default_factory=time.time)
    recorded: bool = False  # already in the journal


@dataclass
class Delivery:
    status: str  # delivered | pending (retry next run) | failed (given up) | unknown (maybe delivered)
    attempts: list[Attempt]
    location: str | None = None  # where an outbox channel wrote the message


class Channel:
    """The one interface every channel has."""

    name = "channel"

    def deliver(self, envelope: Envelope, journal: Journal | None = None) -> Delivery:  # pragma: no cover
        raise NotImplementedError


def _retrying(
    try_once: Callable[[], tuple[Attempt, float | None]],
    retries: int,
    backoff_seconds: float,
    journal: Journal | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """Call `try_once` until it delivers, fails for good, may have delivered, or the retries,
    the attempts the journal allows or the run's time budget run out."""
    journal = journal or Journal()
    attempts: list[Attempt] = []
    tries = min(max(retries, 0) + 1, journal.attempts_allowed)
    for number in range(tries):
        if journal.seconds_left(1.0) < 0.5:
            break  # not worth starting: what is left of the run's budget would cut it short
        attempt, retry_after = try_once()
        journal.record(attempt)
        attempts.append(attempt)
        if attempt.status in ("delivered", "failed", "unknown"):
            return Delivery(attempt.status, attempts)
        if number < tries - 1:
            wait = backoff_seconds * 2**number
            if retry_after is not None:
                if retry_after > MAX_RETRY_AFTER_SECONDS:
                    break
                wait = max(wait, retry_after)
            if journal.seconds_left(wait) < wait:
                break  # the run's budget ends before the retry would start
            sleep(wait)
    return Delivery("pending", attempts)


def _scrub(text: str, *secrets: str | None) -> str:
    return hide_secrets(text, *secrets)[:500]


# A 2xx whose body broke off, or a body that would not decode: the receiver may or may not have
# acted, and the Idempotency-Key makes asking again safe.
TEMPORARY_REQUEST_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def _post_within(session: requests.Session, seconds: float, url: str, **request) -> requests.Response:
    """POST and read the whole answer within `seconds` in all, not per socket read: a receiver that
    trickles bytes must not hold the run (and the database) for minutes. The request runs in a
    daemon thread that is left behind if it overruns; it holds nothing but its socket."""
    outcome: dict = {}

    def post() -> None:
        try:
            response = session.post(url, timeout=(seconds, seconds), **request)
            response.content  # noqa: B018 - read the body inside the time limit
            outcome["response"] = response
        except BaseException as error:  # noqa: BLE001 - handed to the caller
            outcome["error"] = error

    worker = threading.Thread(target=post, name="jkn-webhook", daemon=True)
    worker.start()
    worker.join(seconds + 0.05)
    if worker.is_alive():
        raise requests.Timeout(f"no complete answer within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["response"]


class WebhookChannel(Channel):
    """POST the payload as JSON with an Idempotency-Key header (CONTRACT.md section 6)."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        timeout_seconds: float = 10.0,
        retries: int = 3,
        backoff_seconds: float = 2.0,
        session: requests.Session | None = None,
    ):
        self.url = url
        self.timeout_seconds = timeout_seconds
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.session = session or requests.Session()

    def __repr__(self) -> str:
        return f"WebhookChannel(host={urlsplit(self.url).hostname!r})"

    def deliver(self, envelope: Envelope, journal: Journal | None = None) -> Delivery:
        journal = journal or Journal()
        body = json.dumps(envelope.payload, ensure_ascii=False).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": envelope.message_id,
            "User-Agent": USER_AGENT,
        }
        parts = urlsplit(self.url)
        secrets = (self.url, parts.path + (f"?{parts.query}" if parts.query else ""), parts.query)

        def try_once() -> tuple[Attempt, float | None]:
            try:
                response = _post_within(
                    self.session, journal.seconds_left(self.timeout_seconds), self.url, data=body, headers=headers
                )
            except TEMPORARY_REQUEST_ERRORS as error:
                return Attempt("error", _scrub(f"{type(error).__name__}: {error}", *secrets)), None
            except requests.RequestException as error:
                return Attempt("failed", _scrub(f"{type(error).__name__}: {error}", *secrets)), None
            detail = f"HTTP {response.status_code}"
            if 200 <= response.status_code < 300:
                return Attempt("delivered", detail), None
            if response.status_code in (408, 429) or response.status_code >= 500:
                return Attempt("error", detail), _retry_after(response.headers.get("Retry-After"))
            return Attempt("failed", detail), None

        return _retrying(try_once, self.retries, self.backoff_seconds, journal)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:  # an HTTP date: fall back to our own backoff
        return None


def compose_email(envelope: Envelope, sender: str) -> EmailMessage:
    """The email: a plain-text part, an HTML part, and the chart inline in the HTML (cid)."""
    message = EmailMessage()
    message["Subject"] = envelope.subject
    message["From"] = sender
    message["To"] = envelope.address
    message["Date"] = formatdate(localtime=False)
    # Stable across retries, so a mail client shows a re-sent message once.
    message["Message-ID"] = f"<{envelope.message_id}@jkn.alerts>"
    message["X-Idempotency-Key"] = envelope.message_id
    message.set_content(envelope.text)
    message.add_alternative(envelope.html, subtype="html")
    if envelope.chart_png:
        html_part = message.get_payload()[1]
        html_part.add_related(
            envelope.chart_png,
            maintype="image",
            subtype="png",
            cid=f"<{envelope.chart_cid}>",
            filename="trajectory.png",
        )
    for name, content, mime in envelope.attachments:
        maintype, subtype = mime.split("/", 1)
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    return message


class EmailChannel(Channel):
    """Send through an SMTP server, with optional STARTTLS and login."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int = 25,
        sender: str = "jkn@localhost",
        user: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout_seconds: float = 10.0,
        retries: int = 3,
        backoff_seconds: float = 2.0,
    ):
        self.host = host
        self.port = port
        self.sender = sender
        self.user = user
        self._password = password
        self.starttls = starttls
        self.timeout_seconds = timeout_seconds
        self.retries = retries
        self.backoff_seconds = backoff_seconds

    def __repr__(self) -> str:
        return f"EmailChannel(host={self.host!r}, port={self.port}, starttls={self.starttls})"

    def deliver(self, envelope: Envelope, journal: Journal | None = None) -> Delivery:
        journal = journal or Journal()
        message = compose_email(envelope, self.sender)

        def try_once() -> tuple[Attempt, float | None]:
            smtp, accepted = None, False
            try:
                smtp = JournalledSMTP(
                    self.host, self.port, timeout=journal.seconds_left(self.timeout_seconds), on_sending=journal.sending
                )
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self._password or "")
                smtp.send_message(message)  # one recipient: refusing it raises
                accepted = True
            except AnswerUnknown as error:
                return Attempt(
                    "unknown",
                    _scrub(
                        f"no answer from the mail server after the message was sent ({error}): it may have been "
                        "delivered, so it is not sent again",
                        self._password,
                    ),
                ), None
            except smtplib.SMTPAuthenticationError as error:
                return Attempt("failed", f"login refused: {error.smtp_code}"), None
            except smtplib.SMTPRecipientsRefused as error:
                codes = [code for code, _ in error.recipients.values()]
                permanent = all(code >= 500 for code in codes)
                return Attempt("failed" if permanent else "error", f"recipient refused: {codes}"), None
            except smtplib.SMTPResponseException as error:
                permanent = error.smtp_code >= 500
                reply = _scrub(str(error.smtp_error), self._password)
                return Attempt("failed" if permanent else "error", f"SMTP {error.smtp_code}: {reply}"), None
            except smtplib.SMTPNotSupportedError as error:
                return Attempt("failed", f"mail server: {error}"), None
            except ssl.SSLCertVerificationError as error:
                return Attempt("failed", f"TLS certificate not trusted: {error.verify_message}"), None
            except (OSError, smtplib.SMTPException) as error:
                return Attempt("error", _scrub(f"{type(error).__name__}: {error}", self._password)), None
            finally:
                if smtp is not None and not accepted:
                    smtp.close()
            # Accepted (250): on record before the QUIT, whose answer changes nothing.
            attempt = Attempt("delivered", f"SMTP {self.host}:{self.port}")
            journal.record(attempt)
            smtp.quit_quietly()
            return attempt, None

        return _retrying(try_once, self.retries, self.backoff_seconds, journal)


def write_atomically(path: Path, data: bytes) -> None:
    """Write a file so a reader sees either nothing or all of it (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class OutboxChannel(Channel):
    """Files in the outbox folder: `<stem>.json` (the payload) plus `<stem>.eml`
    for an email recipient (the mail as it would be sent) or `<stem>.txt`.

    File names come from the message id, so writing a message again replaces
    the same files instead of adding a copy.
    """

    name = "outbox"

    def __init__(self, folder: Path, sender: str = "jkn@localhost"):
        self.folder = Path(folder)
        self.sender = sender

    def __repr__(self) -> str:
        return f"OutboxChannel(folder={str(self.folder)!r})"

    def deliver(self, envelope: Envelope, journal: Journal | None = None) -> Delivery:
        journal = journal or Journal()
        stem = envelope.file_stem or envelope.message_id
        json_path = self.folder / f"{stem}.json"
        try:
            if envelope.is_email:
                write_atomically(self.folder / f"{stem}.eml", compose_email(envelope, self.sender).as_bytes())
            else:
                write_atomically(self.folder / f"{stem}.txt", envelope.payload.get("text", "").encode("utf-8"))
            # The .json last: its presence means the message is complete.
            body = json.dumps(envelope.payload, indent=2, ensure_ascii=False).encode("utf-8")
            write_atomically(json_path, body)
        except OSError as error:
            attempt = Attempt("error", f"{type(error).__name__}: {error.strerror}")
            journal.record(attempt)
            return Delivery("pending", [attempt])
        attempt = Attempt("delivered", f"outbox/{json_path.name}")
        journal.record(attempt)
        return Delivery("delivered", [attempt], location=str(json_path))

"""Notices to the `ops` recipients: whatever went wrong in a run reaches someone.

Four kinds, each naming the file or batch month, the reason and the exact
command that retries it:

- `file_refused`     a landing file refused whole (the rest of the batch publishes; exit 5)
- `checks_failed`    a critical data-quality check failed; the batch was quarantined (exit 3)
- `run_failed`       the run stopped on an unexpected error (exit 1)
- `delivery_pending` a message still undelivered `JKN_PENDING_ALERT_HOURS` after it was written

They go to every recipient of scope `ops` in `JKN_RECIPIENTS` (the outbox when
nobody is configured), in that recipient's language, through the same channels
as alerts, and are kept like alerts: the message in `ops.outgoing`, every attempt
in `ops.deliveries`, so one that could not be delivered is retried by the next
run's alerts stage. Sending a notice never raises: the run is failing already,
and its own exit code must say why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import duckdb

from flows import alerts, delivery_journal
from flows.channels import Envelope
from flows.database import utc_now
from flows.runs import mask_identifiers
from flows.settings import Settings

log = logging.getLogger(__name__)

KINDS = ("file_refused", "checks_failed", "run_failed", "delivery_pending")


@dataclass
class Notice:
    kind: str
    code: str  # what it is about: a file name, a batch, a run, a message
    month: str | None  # the batch's month (YYYY-MM) it is about, when it has one
    reason: str
    retry: str  # the exact command to run once the cause is fixed
    severity: str = "critical"
    items: list[str] = field(default_factory=list)  # files quarantined, checks failed, ...

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.code}"


def for_refused_files(files: list[dict], settings: Settings) -> list[Notice]:
    """One notice per landing file refused whole in this run."""
    notices = []
    for item in files:
        if item.get("status") != "rejected":
            continue
        path = settings.landing_dir / item["file_name"]
        notices.append(
            Notice(
                "file_refused",
                item["file_name"],
                month_of(item.get("period")),
                item.get("message") or "",
                f"jkn ingest {path} && jkn run",
            )
        )
    return notices


def for_failed_checks(failure, files: list[str], months: list[str], run_id: str) -> Notice:
    """The batch that failed its critical checks (`failure` is a DataQualityError)."""
    checks = [
        f"{item.get('suite')}: {item.get('expectation')}: observed {item.get('observed')}"
        for item in getattr(failure, "failures", None) or []
    ] or [str(failure).splitlines()[0]]
    month = max(months) if months else None
    return Notice(
        "checks_failed",
        f"run {run_id[:8]}",
        month,
        str(failure).splitlines()[0],
        "jkn run  (after a corrected file for each quarantined one has landed; `jkn check` tries the checks first)",
        items=[*(f"file: {name}" for name in files), *(f"check: {text}" for text in checks)],
    )


def for_crash(error: BaseException, run_id: str, month: str | None) -> Notice:
    first_line = (str(error).strip().splitlines() or [""])[0][:300]
    return Notice(
        "run_failed",
        f"run {run_id[:8]}",
        month,
        f"{type(error).__name__}: {first_line}",
        "jkn run  (it finishes the failed run's work; the traceback is in the flow run's log, or "
        "$JKN_HOME/logs/ for `jkn run`)",
    )


PENDING_TOO_LONG = """
select outgoing.message_id, outgoing.recipient, outgoing.channel, outgoing.created_at, outgoing.payload->>'month',
       (select detail from ops.deliveries as d where d.message_id = outgoing.message_id order by d.at desc limit 1)
from ops.outgoing as outgoing
where outgoing.status = 'pending' and outgoing.created_at < $before
    and outgoing.scope_code <> 'ops'  -- a notice about a notice would go the same failing way
order by outgoing.created_at
"""


def for_pending_deliveries(con: duckdb.DuckDBPyConnection, settings: Settings, now: datetime) -> list[Notice]:
    """Messages written more than `JKN_PENDING_ALERT_HOURS` ago and still not delivered."""
    before = now - timedelta(hours=settings.pending_alert_hours)
    notices = []
    for message_id, recipient, channel, created_at, month, detail in con.execute(
        PENDING_TOO_LONG, {"before": before}
    ).fetchall():
        hours = (now - created_at).total_seconds() / 3600
        notices.append(
            Notice(
                "delivery_pending",
                f"message {message_id[:8]}",
                month,
                f"the {channel} message to {recipient} written {created_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC "
                f"is still undelivered after {hours:.0f} hours "
                f"(JKN_PENDING_ALERT_HOURS={settings.pending_alert_hours:g}); "
                f"last attempt: {detail or 'none'}",
                "jkn alerts  (it delivers every pending message)",
                severity="warning",
            )
        )
    return notices


def send(
    con: duckdb.DuckDBPyConnection | None,
    settings: Settings,
    run_id: str,
    notices: list[Notice],
    now: datetime | None = None,
) -> dict:
    """Deliver each notice to each `ops` recipient once (a notice already written is not written again).

    Without a connection (the database itself is what failed) the notices are still delivered,
    only not recorded."""
    if not notices:
        return {"notices": 0}
    try:
        return _send(con, settings, run_id, notices, now or utc_now())
    except Exception as error:  # noqa: BLE001 - logged; the run's own outcome goes on
        log.error("could not send %d notice(s) to ops: %s: %s", len(notices), type(error).__name__, error)
        return {"notices": 0, "error": f"{type(error).__name__}: {error}"}


def _send(con, settings: Settings, run_id: str, notices: list[Notice], now: datetime) -> dict:
    recipients = [r for r in alerts.read_recipients(settings) if r.scope_code == alerts.OPS_SCOPE] or [
        alerts.Recipient(f"outbox:{alerts.OPS_SCOPE}", alerts.OPS_SCOPE, "outbox", "", settings.locale)
    ]
    outcome = {"notices": 0, "delivered": 0, "pending": 0, "failed": 0, "files": []}
    for recipient in recipients:
        channel = alerts.channel_for(recipient, settings)
        for notice in notices:
            message_id = str(
                uuid.UUID(bytes=hashlib.sha256(f"notice|{notice.key}|{recipient.label}".encode()).digest()[:16])
            )
            if (
                con is not None
                and con.execute("select count(*) from ops.outgoing where message_id = ?", [message_id]).fetchone()[0]
            ):
                continue  # told before (a pending-delivery notice, or a rerun of the same run)
            envelope = envelope_for(message_id, recipient, notice, run_id)
            if con is None:
                delivery = channel.deliver(envelope)
            else:
                delivery = _delivered(con, channel, envelope, recipient, notice, run_id, now)
            outcome["notices"] += 1
            outcome[delivery.status] += 1
            if delivery.location:
                outcome["files"].append(delivery.location)
    return outcome


def _delivered(con, channel, envelope: Envelope, recipient, notice: Notice, run_id: str, now: datetime):
    """Deliver, keeping the books as for an alert message: ops.outgoing, and every attempt in ops.deliveries."""
    message_id = envelope.message_id
    con.execute(
        "insert into ops.outgoing values (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, null)",
        [
            message_id,
            run_id,
            recipient.label,
            recipient.channel,
            recipient.scope_code,
            recipient.language,
            [notice.key],
            json.dumps(envelope.payload, ensure_ascii=False),
            now,
        ],
    )
    # each attempt recorded the moment it ends, as for alert messages (flows/delivery_journal.py)
    journal = delivery_journal.DatabaseJournal(
        con, message_id, channel.name, run_id, 0, delivery_journal.Journal.attempts_allowed
    )
    delivery = channel.deliver(envelope, journal)
    con.execute(
        "update ops.outgoing set status = ?, attempts = ?, delivered_at = case when ? = 'delivered' "
        "then ?::timestamptz end where message_id = ?",
        [delivery.status, journal.attempts_made, delivery.status, utc_now(), message_id],
    )
    return delivery


def envelope_for(message_id: str, recipient: alerts.Recipient, notice: Notice, run_id: str) -> Envelope:
    """The payload has the alert messages' shape (docs/contract.md section 6) so a receiver reads both alike."""
    language = recipient.language
    module = alerts.environment(language).get_template(f"notice_{language}.j2").module
    message = mask_identifiers(str(module.sentence(notice)).strip())
    item = {key: None for key in alerts.PAYLOAD_KEYS} | {
        "alert_key": notice.key,
        "rule": notice.kind,
        "state": "new",
        "severity": notice.severity,
        "level": "ops",
        "code": notice.code,
        "name": notice.code,
        "month": notice.month,
        "message": message,
        "detail": mask_identifiers(notice.reason),
        "retry_command": notice.retry,
        "items": [mask_identifiers(text) for text in notice.items],
    }
    subject = str(module.subject(notice)).strip()
    payload = {
        "source": "jkn",
        "run_id": run_id,
        "month": notice.month or utc_now().strftime("%Y-%m"),
        "recipient": recipient.scope_code,
        "text": f"{subject}\n{message}"[: alerts.TEXT_LIMIT],
        "alerts": [item],
    }
    stem = f"{payload['month']}_ops_{notice.kind}_{message_id.split('-')[0]}"
    envelope = Envelope(message_id, recipient.label, recipient.address, payload, stem)
    if recipient.channel == "email":
        envelope.subject = subject
        envelope.text = message + "\n"
        envelope.html = (
            alerts.environment(language)
            .get_template("notice_email.html.j2")
            .render(subject=subject, notice=notice, message=message, words=module)
        )
    return envelope


def month_of(period: str | None) -> str | None:
    """`2023-01` as it is; a semester (`2022-S1`) as its as-of month."""
    if not period:
        return None
    if "-S" in period:
        year, half = period.split("-S")
        return f"{year}-{'06' if half == '1' else '12'}"
    return period[:7]

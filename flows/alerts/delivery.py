"""Alert delivery: every pending message of `ops.outgoing` through its channel (webhook, email,
outbox), each attempt in the delivery journal (flows/delivery_journal.py).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

import duckdb

from flows import actions, delivery_journal, digests
from flows.alerts import chart_process
from flows.alerts.chart_process import ChartProcess
from flows.alerts.messages import environment, scope_display, words
from flows.alerts.routing import OPS_SCOPE, SCOPE_NAMES, Recipient, read_routing
from flows.channels import Attempt, Channel, Delivery, EmailChannel, Envelope, OutboxChannel, WebhookChannel
from flows.database import utc_now
from flows.settings import Settings

log = logging.getLogger("flows.alerts")


def channel_for(recipient: Recipient, settings: Settings) -> Channel:
    """Webhook for webhook recipients; SMTP for email when `JKN_SMTP_HOST` is set, else the outbox."""
    retry = {
        "timeout_seconds": settings.delivery_timeout_seconds,
        "retries": settings.delivery_retries,
        "backoff_seconds": settings.delivery_backoff_seconds,
    }
    if recipient.channel == "webhook":
        return WebhookChannel(recipient.address, **retry)
    if recipient.channel == "email" and settings.smtp_host:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return EmailChannel(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            settings.smtp_user,
            password,
            settings.smtp_starttls,
            **retry,
        )
    return OutboxChannel(settings.outbox_dir, settings.smtp_from)


def _chart_scope(scope_code: str, alerts: list[dict]) -> tuple[str, str] | None:
    """Which trajectory to draw: the one region all alerts are about, else the recipient's scope."""
    regions = {alert["code"] for alert in alerts if alert["level"] == "region"}
    if len(regions) == 1 and len(regions) == len({alert["code"] for alert in alerts}):
        return "region", regions.pop()
    return _scope_chart(scope_code) if regions else None


def _scope_chart(scope_code: str) -> tuple[str, str] | None:
    """The recipient's own scope's trajectory (none for ops)."""
    if scope_code == OPS_SCOPE:
        return None
    if scope_code == "ID":
        return "national", "ID"
    if scope_code.isdigit():
        return ("province" if len(scope_code) == 2 else "region"), scope_code
    return "branch", scope_code


def _file_stem(payload: dict, recipient: Recipient, message_id: str) -> str:
    who = re.sub(
        r"[^A-Za-z0-9]+", "-", recipient.label.split(":")[0] if recipient.channel == "webhook" else recipient.label
    ).strip("-")[:40]
    return f"{payload['month']}_{recipient.scope_code}_{who}_{message_id.split('-')[0]}"


def early_chart_specs(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[tuple[str, str, str], dict]:
    """(level, code, language) -> the spec of each email recipient's own scope chart (the chart its digest gets
    unless all its alerts are about one region), from the built marts (`build.*`): what the run's alerts will
    most likely draw, read before the marts are checked and published (`chart_process.draw_early`)."""
    from flows import charts

    recipients, _ = read_routing(settings)  # a refused row is told by the alerts stage
    keys = {
        (*scope, recipient.language)
        for recipient in recipients
        if recipient.channel == "email" and (scope := _scope_chart(recipient.scope_code)) is not None
    }
    if not keys:
        return {}
    found = charts.latest_trajectories(
        con, sorted({key[:2] for key in keys}), tuple(sorted({key[2] for key in keys})), marts="build"
    )
    return {key: charts.png_spec(found[key], key[2]) for key in sorted(keys) if key in found}


# A chart the drawing process has not answered in this long is drawn here instead (the process is ended).
CHART_TIMEOUT_SECONDS = 60


class _Charts:
    """Trajectory PNGs for emails, drawn once per scope and language in a run.

    `prepare` (given the run's messages) reads the data of every chart the emails need, in one query, and has
    them drawn beside the run's own work: by vl-convert in a process of its own once `warm_up` started one
    (flows/alerts/chart_process.py; vl-convert holds the GIL while its engine starts, so on a thread here it held
    up the composing and storing for 0.5-1 s), else in this process, on one thread. A chart not prepared, or
    that the other process could not draw, is drawn here when it is asked for, as before. A chart the flow had
    the process draw before the marts were checked (`early_chart_specs`) is taken only where its spec is the
    one computed here from the published marts, key and JSON equal; any other is drawn again. `close` ends the
    process and waits for the thread."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.drawn: dict[tuple, bytes | None | Future] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._process: ChartProcess | None = None  # from warm_up

    def _submit(self, function, *args) -> Future:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jkn-charts")
        return self._pool.submit(function, *args)

    def warm_up(self, language: str = "id") -> None:
        """Start vl-convert's engine in a process of its own now (the run will draw charts), or take the
        one the flow started before its checks (`chart_process.start_early`), warm already."""
        self._process = chart_process.take_early()
        if self._process is not None:
            return
        try:
            self._process = ChartProcess()
        except OSError as error:  # drawn in this process instead
            log.warning("no chart process (%s): the charts are drawn here", error)
            return
        self._process.warm_up(language)

    def prepare(self, wanted: list[tuple[tuple[str, str] | None, str]]) -> None:
        """Read the data of the charts `wanted` ((scope, language) pairs), all in one query, and queue their
        drawing."""
        from flows import charts

        keys = list(dict.fromkeys((*scope, language) for scope, language in wanted if scope is not None))
        keys = [key for key in keys if key not in self.drawn]
        if not keys:
            return
        try:
            found = charts.latest_trajectories(
                self.con, [key[:2] for key in keys], tuple(dict.fromkeys(key[2] for key in keys))
            )
        except duckdb.Error:
            return  # drawn (and its failure logged) when asked for
        for key in keys:
            if key in found:
                spec = charts.png_spec(found[key], key[2])
                if self._process is not None:
                    # drawn before the checks from the built marts, if they gave this very spec
                    drawn = self._process.drawn_ahead_for(key, spec)
                    self.drawn[key] = drawn if drawn is not None else self._process.draw(spec, key[2])
                else:
                    self.drawn[key] = self._submit(charts.render_png, spec, key[2])

    def png(self, scope: tuple[str, str] | None, language: str) -> bytes | None:
        if scope is None:
            return None
        key = (*scope, language)
        if isinstance(self.drawn.get(key), Future):
            try:
                self.drawn[key] = self.drawn[key].result(timeout=CHART_TIMEOUT_SECONDS)
            except Exception:  # noqa: BLE001
                if self._process is not None and not self.drawn[key].done():  # a hung drawing process
                    self._process.close(wait_seconds=0)
                del self.drawn[key]  # drawn again below, so a failure is raised and logged as a chart drawn here
        if key not in self.drawn:
            try:
                from flows import charts

                self.drawn[key] = charts.trajectory_png(self.con, scope[0], scope[1], locale=language)
            except (LookupError, duckdb.Error) as error:
                log.warning("no trajectory chart for %s %s: %s", scope[0], scope[1], error)
                self.drawn[key] = None
        return self.drawn[key]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._process is not None:
            # every chart the run's emails asked for has been waited for: what the process still draws (its
            # warm-up, where nothing was sent) is not needed
            self._process.close(wait_seconds=0)
            self._process = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def envelope_for(message_id: str, recipient: Recipient, scope_name: str, payload: dict, charts: _Charts) -> Envelope:
    """What a channel needs; email recipients (by SMTP or to the outbox) get the email parts too."""
    envelope = Envelope(
        message_id, recipient.label, recipient.address, payload, _file_stem(payload, recipient, message_id)
    )
    if recipient.channel != "email":
        return envelope
    language = recipient.language
    env = environment(language)
    scope = scope_display(scope_name, language)
    chart = charts.png(_chart_scope(recipient.scope_code, payload["alerts"]), language)
    shown = digests.top(payload["alerts"])
    context = {
        "payload": payload,
        "scope_name": scope,
        "words": words(language),
        "chart_cid": f"chart-{message_id[:16]}@jkn.alerts" if chart else "",
        "shown": shown,
        "more": len(payload["alerts"]) - len(shown),
        "summary": payload.get("summary") or digests.summary(payload["alerts"]),
        "this_month": payload.get("this_month") or [],
        "report_url": payload.get("report_url") or "",
        "this_month_words": actions.templates(language),
    }
    envelope.subject = str(
        words(language).subject(scope, payload["month"], len(payload["alerts"]), context["summary"])
    ).strip()
    if context["more"]:
        envelope.attachments = [
            (f"alerts_{payload['month']}_{recipient.scope_code}.csv", digests.alerts_csv(payload["alerts"]), "text/csv")
        ]
    envelope.text = env.get_template("alert_email.txt.j2").render(context)
    envelope.html = env.get_template("alert_email.html.j2").render(context)
    envelope.chart_png = chart
    envelope.chart_cid = context["chart_cid"]
    return envelope


def deliver_pending(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    recipients: list[Recipient],
    run_id: str,
    charts: _Charts | None = None,
) -> dict:
    """Send every pending message in ops.outgoing, oldest first; every attempt is recorded as it
    happens (flows/delivery_journal.py). Within the run's delivery time budget and attempts per
    message; a recipient that did not answer in this run is not tried again until the next run.
    One message's failure (even an error composing it) is that message's: the rest go out."""
    outcome = Counter(unknown=delivery_journal.settle_interrupted(con, run_id, utc_now()))
    by_label = {recipient.label: recipient for recipient in recipients}
    pending = con.execute(
        "select message_id, recipient, scope_code, language, payload, attempts from ops.outgoing "
        "where status = 'pending' order by created_at, message_id"
    ).fetchall()
    names = dict(con.execute(SCOPE_NAMES).fetchall())
    charts = charts or _Charts(con)
    channels: dict[str, Channel] = {}
    files = []
    tried = delivery_journal.attempts_this_run(con, run_id)
    deadline = time.monotonic() + settings.delivery_budget_seconds
    unanswered: set[str] = set()  # recipients whose receiver did not answer in this run
    for message_id, label, scope_code, language, payload_json, attempts_before in pending:
        recipient = by_label.get(label)
        allowed = settings.delivery_retries + 1 - tried.get(message_id, 0)
        if recipient is None:
            # Taken out of the routing file since: nobody to send it to.
            journal = delivery_journal.DatabaseJournal(con, message_id, "none", run_id, attempts_before, 1)
            journal.record(Attempt("failed", "recipient no longer in the routing file"))
            delivery = Delivery("failed", [])
        elif label in unanswered or allowed <= 0 or time.monotonic() >= deadline:
            outcome["pending"] += 1  # left for the next run, untried
            continue
        else:
            recipient = replace(recipient, language=language)  # the language it was written in
            if label not in channels:
                channels[label] = channel_for(recipient, settings)
            channel = channels[label]
            journal = delivery_journal.DatabaseJournal(
                con, message_id, channel.name, run_id, attempts_before, allowed, deadline
            )
            delivery = _deliver_one(
                con,
                channel,
                journal,
                message_id,
                recipient,
                names.get(scope_code, scope_code),
                json.loads(payload_json),
                charts,
            )
        con.execute(
            "update ops.outgoing set status = ?, attempts = ? where message_id = ?",
            [delivery.status, attempts_before + journal.attempts_made, message_id],
        )
        outcome[delivery.status] += 1
        if delivery.location:
            files.append(delivery.location)
        if delivery.status == "pending" and delivery.attempts:
            unanswered.add(label)
        if delivery.status != "delivered":
            log.warning(
                "message %s to %s: %s (%s)",
                message_id[:12],
                label,
                delivery.status,
                delivery.attempts[-1].detail if delivery.attempts else "not tried",
            )
    if time.monotonic() >= deadline:
        log.warning(
            "delivery time budget of %g s used up: the rest waits for the next run", settings.delivery_budget_seconds
        )
    return {
        "delivered": outcome["delivered"],
        "pending": outcome["pending"],
        "failed": outcome["failed"],
        "unknown": outcome["unknown"],
        "files": files,
    }


def _deliver_one(
    con,
    channel: Channel,
    journal,
    message_id: str,
    recipient: Recipient,
    scope_name: str,
    payload: dict,
    charts: _Charts,
) -> Delivery:
    try:
        return channel.deliver(envelope_for(message_id, recipient, scope_name, payload, charts), journal)
    except Exception as error:  # noqa: BLE001 - a bug or bad data in one message must not stop the others
        log.exception("message %s to %s could not be sent", message_id[:12], recipient.label)
        status = con.execute("select status from ops.outgoing where message_id = ?", [message_id]).fetchone()[0]
        # Content already on its way to a mail server: maybe delivered, never re-sent blindly.
        attempt = Attempt(
            "unknown" if status == "sending" else "failed", f"could not be sent: {type(error).__name__}: {error}"[:500]
        )
        journal.record(attempt)
        return Delivery(attempt.status, [attempt])

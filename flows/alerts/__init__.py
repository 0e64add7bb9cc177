"""Alerts: evaluate rules on the published marts, keep their lifecycle, route digests, deliver.

Reads only `mart.*`, `ref.*` and `ops.*`; every step over regions is one SQL
statement over all of them:

1. evaluate   (rules.py, sql/alerts/) each enabled rule of `ref.alert_rules` whose source table exists
              is one query giving every region of its latest month a row that
              says whether the rule fires there (temp table `alert_findings`).
2. lifecycle  (lifecycle.py) compare with `ops.alerts`: an alert is `new` the first time it
              fires, `worsened` when its severity rises or its gap grows by at
              least the rule's `worsened_step` over what was last sent,
              `reminder` when it stayed open `reminder_days` since it was last
              sent, `resolved` once when it clears; otherwise it is not sent
              (temp table `alert_changes`).
3. route      (routing.py, messages.py) a region's alerts go to the recipients of the region, its branch,
              its province and the nation (`ID`); `data_quality_failed` goes to
              scope `ops` only. One digest per recipient, or one message per
              alert where the recipient's `digest` is false.
4. store      (lifecycle.py) the new alert states, their history (`ops.alert_events`) and the
              messages to send (`ops.outgoing`, with their Idempotency-Key) in
              one transaction.
5. deliver    (delivery.py) every pending message in `ops.outgoing` (this run's and any an
              earlier run could not deliver) through its channel; every attempt
              goes to `ops.deliveries`. A delivered message is never sent again.

A crash between 4 and 5 leaves the messages pending: the next run sends them.
A message the server accepted is never sent again: acceptance is recorded the
moment it arrives, and an email that went out without a verdict (or whose run
died while it was with the mail server) is `unknown`, not pending. A webhook
whose answer was lost is sent again with the same Idempotency-Key, so a
receiver can drop the copy.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date, datetime

import duckdb

from flows import database
from flows.alerts.delivery import (
    _chart_scope,
    _Charts,
    _deliver_one,
    _file_stem,
    channel_for,
    deliver_pending,
    early_chart_specs,
    envelope_for,
)
from flows.alerts.lifecycle import LIFECYCLE, STORE_ALERTS, STORE_EVENTS, STORE_RESOLVED, lifecycle, store
from flows.alerts.messages import (
    PAYLOAD_KEYS,
    SENT_ALERTS,
    STATE_ORDER,
    TEXT_LIMIT,
    WHOLE_NUMBER_MEASURES,
    Message,
    _message_id,
    alert_payload,
    compose,
    digest_text,
    environment,
    scope_display,
    words,
)
from flows.alerts.routing import (
    CHANNELS,
    LANGUAGES,
    OPS_SCOPE,
    ROUTE,
    SCOPE_NAMES,
    Recipient,
    load_recipients,
    outbox_fallback,
    read_recipients,
    read_routing,
)
from flows.alerts.rules import (
    DATA_QUALITY_RULE,
    FINDING_COLUMNS,
    LATEST_CHECK_RUN,
    RULE_NAMES,
    RULES,
    Rule,
    enabled_rules,
    evaluate,
    table_exists,
)
from flows.database import utc_now
from flows.errors import ConfigError
from flows.settings import Settings

log = logging.getLogger(__name__)

__all__ = [
    "CHANNELS",
    "DATA_QUALITY_RULE",
    "FINDING_COLUMNS",
    "LANGUAGES",
    "LATEST_CHECK_RUN",
    "LIFECYCLE",
    "OPS_SCOPE",
    "PAYLOAD_KEYS",
    "ROUTE",
    "RULES",
    "RULE_NAMES",
    "SCOPE_NAMES",
    "SENT_ALERTS",
    "STATE_ORDER",
    "STORE_ALERTS",
    "STORE_EVENTS",
    "STORE_RESOLVED",
    "TEXT_LIMIT",
    "WHOLE_NUMBER_MEASURES",
    "Message",
    "Recipient",
    "Rule",
    "_Charts",
    "_chart_scope",
    "_deliver_one",
    "_file_stem",
    "_message_id",
    "alert_payload",
    "channel_for",
    "compose",
    "deliver_pending",
    "digest_text",
    "early_chart_specs",
    "enabled_rules",
    "envelope_for",
    "environment",
    "evaluate",
    "latest_month",
    "lifecycle",
    "load_recipients",
    "notify_data_quality",
    "outbox_fallback",
    "read_recipients",
    "read_routing",
    "scope_display",
    "send",
    "store",
    "table_exists",
    "words",
]


def latest_month(con: duckdb.DuckDBPyConnection) -> date | None:
    """The month of the newest published figures: what a run's messages are about."""
    sources = [name for name in ("mart.coverage", "mart.trajectory") if table_exists(con, name)]
    if not sources:
        return None
    union = " union all ".join(f"select max(month) as month from {name}" for name in sources)
    return con.execute(f"select max(month) from ({union})").fetchone()[0]


def _ensure_rules(con: duckdb.DuckDBPyConnection, settings: Settings, dry_run: bool) -> None:
    if not table_exists(con, "ref.alert_rules"):
        if dry_run:
            raise ConfigError("no alert rules in the database yet: run `jkn run` first")
        database.load_seeds(con, settings.seeds)


# Open after this run: what fires now, and what was open and is not resolved now (a region that did
# not report this month has no findings, so its alerts neither fire nor clear: `jkn status` lists them
# as open, and so must the run's summary).
OPEN_AND_TO_SEND = """
select
    (
        select count(*) from (
            select alert_key from alert_changes where fires
            union
            select alert_key from ops.alerts
            where state = 'open' and alert_key not in (select alert_key from alert_changes where state = 'resolved')
        )
    ),
    (select count(*) from alert_changes where state is not null)
"""


def _plan(messages: list[Message]) -> list[dict]:
    return [
        {
            "recipient": m.recipient.label,
            "scope": m.recipient.scope_code,
            "channel": m.recipient.channel,
            "language": m.recipient.language,
            "alerts": len(m.payload["alerts"]),
            "states": dict(Counter(alert["state"] for alert in m.payload["alerts"])),
        }
        for m in messages
    ]


def _process(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    run_id: str,
    rules: list[Rule],
    month: str,
    dry_run: bool,
    now: datetime,
) -> dict:
    recipients, refused = read_routing(settings)
    recipients, unknown_scope = load_recipients(con, recipients, settings.recipients)
    if not recipients:  # every row refused: the outbox, rather than alerts nobody hears of
        recipients, _ = load_recipients(con, outbox_fallback(settings))
    for row in (refused := refused + unknown_scope):
        log.warning("recipient refused: %s", row)
    charts = _Charts(con)
    # vl-convert's engine starts in its own process while the rules are evaluated and the messages composed,
    # when an email may need a chart (ops' messages about failed checks have none); if nothing is to be sent
    # after all, the process is ended unused
    if (
        not dry_run
        and any(rule.name != DATA_QUALITY_RULE for rule in rules)
        and any(recipient.channel == "email" and recipient.scope_code != OPS_SCOPE for recipient in recipients)
    ):
        charts.warm_up()
    try:
        evaluate(con, rules, month)
        lifecycle(con, now, settings.reminder_days)
        firing, to_send = con.execute(OPEN_AND_TO_SEND).fetchone()
        if not to_send:
            charts.close()  # no chart to draw for this run (one an earlier run's message needs is drawn here)
        messages = compose(con, recipients, run_id, month, settings)
        summary = {
            "month": month,
            "rules": [rule.name for rule in rules],
            "alerts_open": firing,
            "alerts_to_send": to_send,
            "messages": len(messages),
            "plan": _plan(messages),
            "recipients_refused": [str(row) for row in refused],
        }
        if dry_run:
            summary["earlier_pending"] = con.execute(
                "select count(*) from ops.outgoing where status = 'pending'"
            ).fetchone()[0]
            summary["payloads"] = [m.payload for m in messages]
            return summary
        # the emails' charts are read now and drawn on their thread while the messages are stored
        charts.prepare(
            [
                (_chart_scope(m.recipient.scope_code, m.payload["alerts"]), m.recipient.language)
                for m in messages
                if m.recipient.channel == "email"
            ]
        )
        store(con, messages, run_id, now)
        summary.update(deliver_pending(con, settings, recipients, run_id, charts))
        return summary
    finally:
        charts.close()


def send(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    run_id: str,
    dry_run: bool = False,
    now: datetime | None = None,
) -> dict:
    """Evaluate every rule, work out what changed, route and deliver; return a summary.

    With `dry_run` nothing is sent and nothing in the database changes: the
    summary's `plan` and `payloads` say who would get what.
    """
    now = now or utc_now()
    _ensure_rules(con, settings, dry_run)
    latest = latest_month(con)
    month = latest.strftime("%Y-%m") if latest else now.strftime("%Y-%m")
    con.execute(LATEST_CHECK_RUN)
    return _process(con, settings, run_id, enabled_rules(con), month, dry_run, now)


def notify_data_quality(
    con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str, failure, now: datetime | None = None
) -> dict:
    """Tell scope `ops` that a batch failed critical checks (`failure` is a DataQualityError).

    Goes through the same lifecycle and channels as every alert: the failing
    suites are `new` the first time, and `resolved` once a later run's checks pass.
    It never raises: the run is failing already, and its exit code (3) must say why.
    """
    try:
        return _notify_data_quality(con, settings, run_id, failure, now or utc_now())
    except Exception as error:  # reported; the data-quality failure itself goes on
        log.error("could not tell ops about the data-quality failure: %s: %s", type(error).__name__, error)
        return {"error": f"{type(error).__name__}: {error}"}


def _notify_data_quality(con, settings: Settings, run_id: str, failure, now: datetime) -> dict:
    _ensure_rules(con, settings, dry_run=False)
    failures = list(getattr(failure, "failures", None) or []) or [
        {"suite": "unknown", "expectation": str(failure)[:300], "severity": "critical", "observed": ""}
    ]
    con.execute(
        "create or replace temp table alert_check_results (suite varchar, expectation varchar, "
        "severity varchar, success boolean, observed varchar, checked_at timestamptz)"
    )
    con.executemany(
        "insert into alert_check_results values (?, ?, ?, false, ?, ?)",
        [
            (
                f.get("suite") or "unknown",
                f.get("expectation") or "",
                f.get("severity") or "critical",
                str(f.get("observed") or ""),
                now,
            )
            for f in failures
        ],
    )
    latest = latest_month(con)
    month = latest.strftime("%Y-%m") if latest else now.strftime("%Y-%m")
    rules = enabled_rules(con, only=(DATA_QUALITY_RULE,))
    return _process(con, settings, run_id, rules, month, False, now)

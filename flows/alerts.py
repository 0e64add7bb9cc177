"""Alerts: evaluate rules on the published marts, keep their lifecycle, route digests, deliver.

Reads only `mart.*`, `ref.*` and `ops.*`. An alert is `new` the first time it
fires, `worsened` when its severity rises or its gap grows by at least the
configured step, `reminder` when it stayed open past the reminder interval,
and `resolved` once when it clears. Anything else is not sent again.
"""

from __future__ import annotations

import csv
import json
import logging
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from flows.database import utc_now
from flows.settings import Settings

log = logging.getLogger(__name__)

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
WORSENED_GAP_STEP_PP = 1.0


@dataclass
class Alert:
    """One alert as it goes into a payload (CONTRACT.md section 6)."""

    alert_key: str
    rule: str
    state: str
    severity: str
    level: str
    code: str
    name: str
    month: str
    actual_pct: float | None = None
    expected_pct: float | None = None
    target_pct: float | None = None
    target_date: str | None = None
    gap_pp: float | None = None
    people_needed: int | None = None
    projected_target_month: str | None = None
    message: str = ""
    province_code: str | None = None
    branch_office: str | None = None


@dataclass
class Message:
    recipient: str
    scope_code: str
    channel: str
    address: str
    language: str
    alerts: list[Alert] = field(default_factory=list)


def latest_month(con: duckdb.DuckDBPyConnection) -> date | None:
    row = con.execute("select max(month) from mart.trajectory").fetchone()
    return row[0] if row else None


def evaluate(con: duckdb.DuckDBPyConnection, month: date) -> list[Alert]:
    """Alerts that hold in `month`, from the published marts."""
    rows = con.execute(
        """
        select t.level, t.code, t.name, t.actual_pct, t.expected_pct, t.target_pct, t.target_date,
               t.gap_pp, t.people_needed, t.projected_target_month, t.status,
               r.province_code, nullif(r.branch_office, '') as branch_office
        from mart.trajectory as t
        left join ref.regions as r on t.level = 'region' and t.code = r.region_code
        where t.month = ? and t.level = 'region' and t.status in ('BEHIND', 'CRITICAL')
        order by t.gap_pp desc
        """,
        [month],
    ).fetchall()
    alerts = []
    for (level, code, name, actual, expected, target, target_date, gap, people, projected, status,
         province, branch) in rows:
        alerts.append(
            Alert(
                alert_key=f"coverage_behind_trajectory:{level}:{code}",
                rule="coverage_behind_trajectory",
                state="new",
                severity="critical" if status == "CRITICAL" else "warning",
                level=level,
                code=code,
                name=name,
                month=month.strftime("%Y-%m"),
                actual_pct=round(actual, 2),
                expected_pct=round(expected, 2),
                target_pct=target,
                target_date=str(target_date),
                gap_pp=round(gap, 2),
                people_needed=int(people),
                projected_target_month=projected,
                province_code=province,
                branch_office=branch,
            )
        )
    return alerts


def reconcile(
    con: duckdb.DuckDBPyConnection,
    current: list[Alert],
    month: date,
    run_id: str,
    reminder_days: int,
    now: datetime | None = None,
    store: bool = True,
) -> list[Alert]:
    """Work out each alert's state; return the alerts to send. With `store`, record
    the new states in ops.alerts and ops.alert_events."""
    now = now or utc_now()
    known = {
        row[0]: row
        for row in con.execute(
            "select alert_key, state, severity, gap_pp, last_notified_at, details from ops.alerts"
        ).fetchall()
    }
    to_send: list[Alert] = []
    current_keys = set()
    for alert in current:
        current_keys.add(alert.alert_key)
        previous = known.get(alert.alert_key)
        if previous is None or previous[1] == "resolved":
            alert.state = "new"
        elif SEVERITY_RANK[alert.severity] > SEVERITY_RANK.get(previous[2], 0) or (
            alert.gap_pp is not None
            and previous[3] is not None
            and alert.gap_pp - previous[3] >= WORSENED_GAP_STEP_PP
        ):
            alert.state = "worsened"
        elif previous[4] is None or now - previous[4] >= timedelta(days=reminder_days):
            alert.state = "reminder"
        else:
            alert.state = "unchanged"
        if alert.state != "unchanged":
            to_send.append(alert)
    for key, previous in known.items():
        if previous[1] == "open" and key not in current_keys:
            details = json.loads(previous[5]) if previous[5] else {}
            resolved = Alert(**{**details, "state": "resolved", "month": month.strftime("%Y-%m")})
            to_send.append(resolved)
    if store:
        _store(con, current, to_send, month, run_id, now)
    return to_send


def _store(con, current: list[Alert], to_send: list[Alert], month: date, run_id: str, now: datetime):
    sent_keys = {alert.alert_key for alert in to_send}
    con.begin()
    try:
        for alert in current:
            notified = now if alert.alert_key in sent_keys else None
            # Keep the gap last sent: "worsened" compares with what people were last told.
            con.execute(
                """
                insert into ops.alerts (alert_key, rule, level, code, severity, state, first_month,
                                        last_month, last_notified_at, gap_pp, details)
                values (?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?)
                on conflict (alert_key) do update set
                    severity = excluded.severity,
                    state = 'open',
                    first_month = case when ops.alerts.state = 'resolved' then excluded.first_month
                                       else ops.alerts.first_month end,
                    last_month = excluded.last_month,
                    last_notified_at = coalesce(excluded.last_notified_at, ops.alerts.last_notified_at),
                    gap_pp = case when excluded.last_notified_at is not null then excluded.gap_pp
                                  else ops.alerts.gap_pp end,
                    details = excluded.details
                """,
                [alert.alert_key, alert.rule, alert.level, alert.code, alert.severity, month, month,
                 notified, alert.gap_pp, json.dumps(asdict(alert))],
            )
        for alert in to_send:
            if alert.state == "resolved":
                con.execute(
                    "update ops.alerts set state = 'resolved', last_notified_at = ? where alert_key = ?",
                    [now, alert.alert_key],
                )
            con.execute(
                "insert into ops.alert_events values (?, ?, ?, ?, ?, ?, ?)",
                [run_id, alert.alert_key, month, alert.state, alert.severity, alert.gap_pp, now],
            )
        con.commit()
    except BaseException:
        con.rollback()
        raise


def read_recipients(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return [
            {**row, "digest": str(row.get("digest", "true")).strip().lower() not in ("false", "0", "no")}
            for row in csv.DictReader(handle)
        ]


def route(alerts: list[Alert], recipients: list[dict]) -> list[Message]:
    """One message per recipient holding every alert of its scope (region, branch, province, nation)."""
    messages = []
    for recipient in recipients:
        scope = recipient["scope_code"]
        mine = [
            alert
            for alert in alerts
            if scope in ("ID", alert.code, alert.province_code, alert.branch_office)
            and (scope == "ops") == (alert.rule == "data_quality_failed")
        ]
        if not mine:
            continue
        batches = [mine] if recipient["digest"] else [[alert] for alert in mine]
        for batch in batches:
            messages.append(
                Message(
                    recipient=recipient["address"],
                    scope_code=scope,
                    channel=recipient["channel"],
                    address=recipient["address"],
                    language=recipient.get("language") or "id",
                    alerts=batch,
                )
            )
    return messages


def payload(message: Message, run_id: str, month: str) -> dict:
    keep = ("alert_key", "rule", "state", "severity", "level", "code", "name", "month", "actual_pct",
            "expected_pct", "target_pct", "target_date", "gap_pp", "people_needed",
            "projected_target_month", "message")
    return {
        "source": "jkn",
        "run_id": run_id,
        "month": month,
        "recipient": message.scope_code,
        "text": summary_text(message)[:3000],
        "alerts": [{key: getattr(alert, key) for key in keep} for alert in message.alerts],
    }


def summary_text(message: Message) -> str:
    lines = [f"JKN: {len(message.alerts)} alert(s) for {message.scope_code}"]
    for alert in message.alerts:
        if alert.state == "resolved":
            lines.append(f"- [resolved] {alert.name}: back on track")
        else:
            lines.append(
                f"- [{alert.state}, {alert.severity}] {alert.name}: coverage {alert.actual_pct}% "
                f"vs {alert.expected_pct}% expected, gap {alert.gap_pp} pp "
                f"({alert.people_needed} people)"
            )
    return "\n".join(lines)


def deliver_to_outbox(outbox: Path, message: Message, body: dict) -> Path:
    outbox.mkdir(parents=True, exist_ok=True)
    safe_scope = "".join(ch if ch.isalnum() else "_" for ch in message.scope_code)
    path = outbox / f"{body['month']}_{safe_scope}_{body['run_id'][:8]}_{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def send(
    con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str, dry_run: bool = False
) -> dict:
    """Evaluate, reconcile and deliver; return a summary of what happened."""
    month = latest_month(con)
    if month is None:
        return {"month": None, "alerts_open": 0, "messages": 0, "files": []}
    current = evaluate(con, month)
    recipients = read_recipients(settings.recipients)
    to_send = reconcile(con, current, month, run_id, settings.reminder_days, store=not dry_run)
    messages = route(to_send, recipients)
    files = []
    for message in messages:
        body = payload(message, run_id, month.strftime("%Y-%m"))
        if dry_run:
            continue
        path = deliver_to_outbox(settings.outbox_dir, message, body)
        files.append(str(path))
        for alert in message.alerts:
            con.execute(
                "insert into ops.deliveries values (?, ?, 'outbox', 1, 'delivered', ?, ?, ?, ?)",
                [alert.alert_key, message.recipient, path.name, utc_now(), path.stem, run_id],
            )
    return {
        "month": month.strftime("%Y-%m"),
        "alerts_open": len(current),
        "alerts_to_send": len(to_send),
        "messages": len(messages),
        "files": files,
        "plan": [(m.recipient, m.channel, len(m.alerts)) for m in messages],
    }


def notify_data_quality(con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str, failure) -> list[str]:
    """Tell the `ops` recipients that a batch failed critical checks (outbox for now)."""
    month = (latest_month(con) or utc_now().date()).strftime("%Y-%m")
    alert = Alert(
        alert_key=f"data_quality_failed:national:ID:{run_id[:8]}",
        rule="data_quality_failed",
        state="new",
        severity="critical",
        level="national",
        code="ID",
        name="Data quality",
        month=month,
        message=str(failure)[:2000],
    )
    files = []
    for message in route([alert], read_recipients(settings.recipients)):
        body = payload(message, run_id, month)
        files.append(str(deliver_to_outbox(settings.outbox_dir, message, body)))
    return files

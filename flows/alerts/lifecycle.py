"""Alert lifecycle: what changed since the last run (new, worsened, reminder, resolved) and its record.

An alert is `new` the first time it fires, `worsened` when its severity rises or its gap grows by at
least the rule's `worsened_step` over what was last sent, `reminder` when it stayed open
`reminder_days` since it was last sent, `resolved` once when it clears; otherwise it is not sent.
The states go to `ops.alerts`, their history to `ops.alert_events`, and the messages to send to
`ops.outgoing`, in one transaction.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from flows.alerts.messages import Message

LIFECYCLE = """
create or replace temp table alert_changes as
select
    findings.*,
    case
        when known.alert_key is null or known.state <> 'open' then 'new'
        when list_position(['info', 'warning', 'critical'], findings.severity)
            > coalesce(list_position(['info', 'warning', 'critical'], known.last_sent_severity), 0)
            or findings.gap - known.last_sent_gap >= findings.worsened_step
            then 'worsened'
        when known.last_notified_at is null
            or known.last_notified_at <= $now::timestamptz - to_days($reminder_days)
            then 'reminder'
    end as state
from alert_findings as findings
left join ops.alerts as known on findings.alert_key = known.alert_key
where findings.fires
union all by name
select
    findings.*,
    'resolved' as state
from alert_findings as findings
inner join ops.alerts as known on findings.alert_key = known.alert_key
where not findings.fires and known.state = 'open'
"""

STORE_ALERTS = """
insert into ops.alerts (
    alert_key, rule, level, code, severity, state, first_month, last_month, last_notified_at,
    gap, last_sent_state, last_sent_severity, last_sent_gap, details
)
select
    changes.alert_key,
    changes.rule,
    changes.level,
    changes.code,
    changes.severity,
    'open',
    strptime(changes.month, '%Y-%m')::date,
    strptime(changes.month, '%Y-%m')::date,
    case when changes.state is not null then $now::timestamptz end,
    changes.gap,
    changes.state,
    case when changes.state is not null then changes.severity end,
    case when changes.state is not null then changes.gap end,
    to_json(changes)
from alert_changes as changes
where changes.fires
on conflict (alert_key) do update set
    severity = excluded.severity,
    state = 'open',
    first_month = case when ops.alerts.state = 'open' then ops.alerts.first_month else excluded.first_month end,
    last_month = excluded.last_month,
    gap = excluded.gap,
    details = excluded.details,
    -- what people were last told: "worsened" and "reminder" compare with it
    last_notified_at = coalesce(excluded.last_notified_at, ops.alerts.last_notified_at),
    last_sent_state = coalesce(excluded.last_sent_state, ops.alerts.last_sent_state),
    last_sent_severity = coalesce(excluded.last_sent_severity, ops.alerts.last_sent_severity),
    last_sent_gap = case
        when excluded.last_sent_state is not null then excluded.last_sent_gap else ops.alerts.last_sent_gap
    end
"""

STORE_RESOLVED = """
update ops.alerts set
    state = 'resolved',
    last_month = strptime(changes.month, '%Y-%m')::date,
    gap = changes.gap,
    last_notified_at = $now::timestamptz,
    last_sent_state = 'resolved',
    details = to_json(changes)
from alert_changes as changes
where ops.alerts.alert_key = changes.alert_key and changes.state = 'resolved'
"""

STORE_EVENTS = """
insert into ops.alert_events
select $run_id, alert_key, strptime(month, '%Y-%m')::date, state, severity, gap, $now::timestamptz
from alert_changes
where state is not null
"""


def lifecycle(con: duckdb.DuckDBPyConnection, now: datetime, reminder_days: int) -> None:
    """Fill temp table `alert_changes`: firing alerts with their state (null: unchanged, not sent)
    and the open alerts that cleared (`resolved`)."""
    con.execute(LIFECYCLE, {"now": now, "reminder_days": reminder_days})


def store(con: duckdb.DuckDBPyConnection, messages: list[Message], run_id: str, now: datetime) -> None:
    """Record the new states, their history and the messages to send, all or nothing."""
    con.begin()
    try:
        con.execute(STORE_ALERTS, {"now": now})
        con.execute(STORE_RESOLVED, {"now": now})
        con.execute(STORE_EVENTS, {"now": now, "run_id": run_id})
        if messages:
            con.executemany(
                "insert into ops.outgoing values (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, null)",
                [
                    (
                        m.message_id,
                        run_id,
                        m.recipient.label,
                        m.recipient.channel,
                        m.recipient.scope_code,
                        m.recipient.language,
                        m.alert_keys,
                        json.dumps(m.payload, ensure_ascii=False),
                        now,
                    )
                    for m in messages
                ],
            )
        con.commit()
    except BaseException:
        con.rollback()
        raise

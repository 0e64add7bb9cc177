"""Alerts: evaluate rules on the published marts, keep their lifecycle, route digests, deliver.

Reads only `mart.*`, `ref.*` and `ops.*`; every step over regions is one SQL
statement over all of them:

1. evaluate   each enabled rule of `ref.alert_rules` whose source table exists
              is one query giving every region of its latest month a row that
              says whether the rule fires there (temp table `alert_findings`).
2. lifecycle  compare with `ops.alerts`: an alert is `new` the first time it
              fires, `worsened` when its severity rises or its gap grows by at
              least the rule's `worsened_step` over what was last sent,
              `reminder` when it stayed open `reminder_days` since it was last
              sent, `resolved` once when it clears; otherwise it is not sent
              (temp table `alert_changes`).
3. route      a region's alerts go to the recipients of the region, its branch,
              its province and the nation (`ID`); `data_quality_failed` goes to
              scope `ops` only. One digest per recipient, or one message per
              alert where the recipient's `digest` is false.
4. store      the new alert states, their history (`ops.alert_events`) and the
              messages to send (`ops.outgoing`, with their Idempotency-Key) in
              one transaction.
5. deliver    every pending message in `ops.outgoing` (this run's and any an
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

import csv
import hashlib
import json
import logging
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import cache
from pathlib import Path

import duckdb
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from flows import actions, database, delivery_journal, digests, missing_regions
from flows.channels import Attempt, Channel, Delivery, EmailChannel, Envelope, OutboxChannel, WebhookChannel
from flows.database import utc_now
from flows.errors import ConfigError
from flows.formats import MONTH_NAMES, grouped
from flows.recipient_rows import RefusedRow, address_problem
from flows.settings import Settings

log = logging.getLogger(__name__)

TEXT_LIMIT = 3000
STATE_ORDER = ("new", "worsened", "reminder", "resolved")
LANGUAGES = ("id", "en")
CHANNELS = ("email", "webhook", "outbox")
DATA_QUALITY_RULE = "data_quality_failed"
OPS_SCOPE = "ops"
# Keys of one alert in a payload: CONTRACT.md section 6, then what the rule
# itself measured (`measure` names it: gap_pp, months_late, participants,
# coverage_pct, active_rate_pct, worker_registration_pct,
# unpaid_contributions_idr, failed_checks, months_not_reported).
PAYLOAD_KEYS = (
    "alert_key",
    "rule",
    "state",
    "severity",
    "level",
    "code",
    "name",
    "month",
    "actual_pct",
    "expected_pct",
    "target_pct",
    "target_date",
    "gap_pp",
    "people_needed",
    "projected_target_month",
    "message",
    "measure",
    "value",
    "previous_value",
    "previous_month",
    "threshold",
    "count",
    "detail",
)
WHOLE_NUMBER_MEASURES = (
    "participants",
    "unpaid_contributions_idr",
    "months_late",
    "failed_checks",
    "months_not_reported",
)

# ---------------------------------------------------------------------------
# 1. Rules. Each query gives one row per region (per suite for data quality)
# of its source's latest month, with `fires` saying whether the rule holds.
# Columns a rule leaves out are null (`union all by name`).
# ---------------------------------------------------------------------------

FINDING_COLUMNS = """
    select
        null::varchar as rule, null::varchar as level, null::varchar as code, null::date as month,
        null::boolean as fires, null::varchar as severity, null::double as gap, null::varchar as measure,
        null::double as value, null::double as previous_value, null::date as previous_month,
        null::double as threshold, null::bigint as count, null::varchar as detail
    where false
"""


@dataclass(frozen=True)
class Rule:
    name: str
    sources: tuple[str, ...]
    sql: str


RULES = (
    Rule(
        "coverage_behind_trajectory",
        ("mart.trajectory",),
        """
        select
            'coverage_behind_trajectory' as rule,
            trajectory.level,
            trajectory.code,
            trajectory.month,
            trajectory.status in ('BEHIND', 'CRITICAL') as fires,
            case when trajectory.status = 'CRITICAL' then 'critical' else config.severity end as severity,
            trajectory.gap_pp as gap,
            'gap_pp' as measure,
            trajectory.gap_pp as value
        from mart.trajectory as trajectory
        cross join (select * from ref.alert_rules where rule = 'coverage_behind_trajectory') as config
        where trajectory.level = 'region'
            and trajectory.month = (select max(month) from mart.trajectory where level = 'region')
        """,
    ),
    Rule(
        "target_at_risk",
        ("mart.trajectory",),
        """
        with latest as (
            select
                trajectory.*,
                datediff(
                    'month', date_trunc('month', trajectory.target_date),
                    strptime(trajectory.projected_target_month, '%Y-%m')
                ) as months_late
            from mart.trajectory as trajectory
            where trajectory.level = 'region'
                and trajectory.month = (select max(month) from mart.trajectory where level = 'region')
        )

        -- A region behind its trajectory already has coverage_behind_trajectory, whose
        -- message gives the projection: one alert per region, not two saying the same.
        -- So this is the region on its path today whose recent pace still arrives late
        -- (status AT_RISK; with no pace yet the projection is not judged).
        select
            'target_at_risk' as rule,
            latest.level,
            latest.code,
            latest.month,
            latest.status = 'AT_RISK' and latest.months_late > coalesce(config.threshold, 0) as fires,
            config.severity,
            latest.months_late as gap,
            'months_late' as measure,
            latest.months_late as value,
            coalesce(config.threshold, 0) as threshold
        from latest
        cross join (select * from ref.alert_rules where rule = 'target_at_risk') as config
        """,
    ),
    Rule(
        "participants_decreased",
        ("mart.coverage",),
        """
        with latest as (
            select max(month) as month from mart.coverage where level = 'region'
        ),

        change as (
            select
                current.code,
                current.month,
                current.participants,
                previous.participants as previous_participants,
                previous.month as previous_month,
                (previous.participants - current.participants) * 100.0
                / nullif(previous.participants, 0) as decrease_pct
            from mart.coverage as current
            inner join latest on current.month = latest.month
            inner join mart.coverage as previous
                on previous.level = 'region'
                and previous.code = current.code
                and previous.month = (current.month - interval 1 month)::date
            where current.level = 'region'
        )

        select
            'participants_decreased' as rule,
            'region' as level,
            change.code,
            change.month,
            change.decrease_pct > coalesce(config.threshold, 0) as fires,
            config.severity,
            change.decrease_pct as gap,
            'participants' as measure,
            change.participants as value,
            change.previous_participants as previous_value,
            change.previous_month,
            coalesce(config.threshold, 0) as threshold,
            change.previous_participants - change.participants as count
        from change
        cross join (select * from ref.alert_rules where rule = 'participants_decreased') as config
        """,
    ),
    Rule(
        "uhc_lost",
        ("mart.coverage",),
        """
        with latest as (
            select max(month) as month from mart.coverage where level = 'region'
        ),

        rule_in_force as (
            select rules.*
            from ref.uhc_rules as rules
            inner join latest on rules.effective_from <= latest.month
            qualify row_number() over (order by rules.effective_from desc) = 1
        ),

        last_uhc as (
            select
                coverage.code,
                max(coverage.month) as month
            from mart.coverage as coverage
            inner join latest on coverage.month < latest.month
            where coverage.level = 'region' and coverage.is_uhc
            group by coverage.code
        ),

        current as (
            select
                coverage.*,
                rule_in_force.min_coverage_pct,
                rule_in_force.min_active_rate_pct,
                -- the criterion that fails (coverage first), to say why in the message
                coalesce(coverage.coverage_pct < rule_in_force.min_coverage_pct, true) as is_coverage_short,
                last_uhc.month as last_uhc_month
            from mart.coverage as coverage
            inner join latest on coverage.month = latest.month
            cross join rule_in_force
            left join last_uhc on coverage.code = last_uhc.code
            where coverage.level = 'region'
        )

        select
            'uhc_lost' as rule,
            'region' as level,
            current.code,
            current.month,
            not current.is_uhc and current.last_uhc_month is not null as fires,
            config.severity,
            greatest(
                current.min_coverage_pct - current.coverage_pct,
                coalesce(current.min_active_rate_pct - current.active_rate_pct, 0),
                0
            ) as gap,
            case when current.is_coverage_short then 'coverage_pct' else 'active_rate_pct' end as measure,
            case when current.is_coverage_short then current.coverage_pct else current.active_rate_pct end as value,
            case when current.is_coverage_short then before.coverage_pct else before.active_rate_pct end
                as previous_value,
            current.last_uhc_month as previous_month,
            case
                when current.is_coverage_short then current.min_coverage_pct else current.min_active_rate_pct
            end as threshold
        from current
        cross join (select * from ref.alert_rules where rule = 'uhc_lost') as config
        left join mart.coverage as before
            on before.level = 'region' and before.code = current.code and before.month = current.last_uhc_month
        """,
    ),
    Rule(
        "worker_registration_low",
        ("mart.compliance_by_region",),
        """
        with latest as (
            select max(month) as month from mart.compliance_by_region where level = 'region'
        )

        select
            'worker_registration_low' as rule,
            'region' as level,
            current.code,
            current.month,
            current.worker_registration_pct < coalesce(config.threshold, 90) as fires,
            config.severity,
            coalesce(config.threshold, 90) - current.worker_registration_pct as gap,
            'worker_registration_pct' as measure,
            current.worker_registration_pct as value,
            previous.worker_registration_pct as previous_value,
            previous.month as previous_month,
            coalesce(config.threshold, 90) as threshold,
            -- the reported workers the rate says are not registered
            round(current.workers_reported * (100 - current.worker_registration_pct) / 100)::bigint as count
        from mart.compliance_by_region as current
        inner join latest on current.month = latest.month
        cross join (select * from ref.alert_rules where rule = 'worker_registration_low') as config
        left join mart.compliance_by_region as previous
            on previous.level = 'region'
            and previous.code = current.code
            and previous.month = (current.month - interval 1 month)::date
        where current.level = 'region'
        """,
    ),
    Rule(
        "employer_arrears",
        ("mart.compliance_by_region",),
        """
        with latest as (
            select max(month) as month from mart.compliance_by_region where level = 'region'
        )

        select
            'employer_arrears' as rule,
            'region' as level,
            current.code,
            current.month,
            current.unpaid_contributions_idr > coalesce(config.threshold, 0) as fires,
            config.severity,
            current.unpaid_contributions_idr - coalesce(config.threshold, 0) as gap,
            'unpaid_contributions_idr' as measure,
            current.unpaid_contributions_idr as value,
            previous.unpaid_contributions_idr as previous_value,
            previous.month as previous_month,
            coalesce(config.threshold, 0) as threshold,
            current.arrears_employers as count
        from mart.compliance_by_region as current
        inner join latest on current.month = latest.month
        cross join (select * from ref.alert_rules where rule = 'employer_arrears') as config
        left join mart.compliance_by_region as previous
            on previous.level = 'region'
            and previous.code = current.code
            and previous.month = (current.month - interval 1 month)::date
        where current.level = 'region'
        """,
    ),
    # A region missing from this month's batch: its recipients and ops are told (flows/missing_regions.py).
    Rule(missing_regions.RULE, (missing_regions.SOURCE,), missing_regions.ALERT_SQL),
    Rule(
        DATA_QUALITY_RULE,
        (),
        # Long digit runs (not the decimals of a number) are cut from what GX
        # observed: an unexpected value can be a card number or a NIK, and
        # alerts carry aggregates only.
        """
        select
            'data_quality_failed' as rule,
            'suite' as level,
            checks.suite as code,
            null::date as month,  -- the run's month: checks are about the batch, not a month of data
            count(*) filter (where not checks.success and checks.severity = 'critical') > 0 as fires,
            any_value(config.severity) as severity,
            count(*) filter (where not checks.success and checks.severity = 'critical')::double as gap,
            'failed_checks' as measure,
            count(*) filter (where not checks.success and checks.severity = 'critical')::double as value,
            count(*) filter (where not checks.success and checks.severity = 'critical') as count,
            left(regexp_replace(
                string_agg(
                    checks.expectation || ': ' || coalesce(checks.observed, ''), '; ' order by checks.expectation
                ) filter (where not checks.success and checks.severity = 'critical'),
                '(^|[^0-9.])[0-9]{9,}', '\\1[hidden]', 'g'
            ), 1000) as detail
        from alert_check_results as checks
        cross join (select * from ref.alert_rules where rule = 'data_quality_failed') as config
        group by checks.suite
        """,
    ),
)
RULE_NAMES = tuple(rule.name for rule in RULES)

# The region's place in the trajectory, added to every region alert (the
# contract's actual_pct ... projected_target_month mean the same for every rule).
TRAJECTORY_CONTEXT = """
    select level, code, actual_pct, expected_pct, target_pct, target_date, gap_pp, people_needed,
           projected_target_month
    from mart.trajectory
    where level = 'region' and month = (select max(month) from mart.trajectory where level = 'region')
"""
NO_TRAJECTORY_CONTEXT = """
    select null::varchar as level, null::varchar as code, null::double as actual_pct,
           null::double as expected_pct, null::double as target_pct, null::date as target_date,
           null::double as gap_pp, null::bigint as people_needed, null::varchar as projected_target_month
    where false
"""

LATEST_CHECK_RUN = """
    create or replace temp table alert_check_results as
    select suite, expectation, severity, success, observed, checked_at
    from ops.dq_results
    where run_id = (select run_id from ops.dq_results order by checked_at desc limit 1)
"""


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    schema, table = name.split(".")
    return (
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]
        > 0
    )


def enabled_rules(con: duckdb.DuckDBPyConnection, only: tuple[str, ...] | None = None) -> list[Rule]:
    """The rules to evaluate: enabled in ref.alert_rules and with their source published.

    A rule whose mart is not published yet (the compliance marts, say) finds
    nothing, and its open alerts are neither re-sent nor resolved.
    """
    enabled = {row[0] for row in con.execute("select rule from ref.alert_rules where enabled").fetchall()}
    unknown = enabled - set(RULE_NAMES)
    if unknown:
        raise ConfigError(f"alert_rules.csv: unknown rule(s) {', '.join(sorted(unknown))}")
    return [
        rule
        for rule in RULES
        if rule.name in enabled
        and (only is None or rule.name in only)
        and all(table_exists(con, source) for source in rule.sources)
    ]


def evaluate(con: duckdb.DuckDBPyConnection, rules: list[Rule], month: str) -> None:
    """Fill temp table `alert_findings`: one row per rule x scope, firing or not (`month`, 'YYYY-MM',
    for findings of no month of data)."""
    union = "\nunion all by name\n".join([FINDING_COLUMNS] + [f"({rule.sql})" for rule in rules])
    context = TRAJECTORY_CONTEXT if table_exists(con, "mart.trajectory") else NO_TRAJECTORY_CONTEXT
    con.execute(
        f"""
        create or replace temp table alert_findings as
        with findings as ({union}),

        context as ({context})

        select
            findings.rule || ':' || findings.level || ':' || findings.code as alert_key,
            findings.rule,
            findings.level,
            findings.code,
            coalesce(regions.region_name, findings.code) as name,
            regions.province_code,
            nullif(regions.branch_office, '') as branch_office,
            coalesce(strftime(findings.month, '%Y-%m'), $month) as month,
            coalesce(findings.fires, false) as fires,
            coalesce(findings.severity, 'warning') as severity,
            findings.gap,
            rules.worsened_step,
            context.actual_pct,
            context.expected_pct,
            context.target_pct,
            context.target_date,
            context.gap_pp,
            context.people_needed,
            context.projected_target_month,
            findings.measure,
            findings.value,
            findings.previous_value,
            strftime(findings.previous_month, '%Y-%m') as previous_month,
            findings.threshold,
            findings.count,
            findings.detail
        from findings
        left join ref.regions as regions on findings.level = 'region' and findings.code = regions.region_code
        left join context on findings.level = context.level and findings.code = context.code
        left join ref.alert_rules as rules on findings.rule = rules.rule
        """,
        {"month": month},
    )


# ---------------------------------------------------------------------------
# 2. Lifecycle
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# 3. Recipients and routing
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    label: str  # who, as stored in ops.deliveries and ops.outgoing: never a secret
    scope_code: str
    channel: str
    address: str = field(repr=False)
    language: str = "id"
    digest: bool = True
    line: int = field(default=0, compare=False, repr=False)  # in the routing file


def _truthy(value: str | None, default: bool = True) -> bool:
    if value is None or not value.strip():
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "ya", "y"):
        return True
    if lowered in ("false", "0", "no", "tidak", "n"):
        return False
    raise ValueError(f"digest must be true or false, not {value!r}")


def _normal_scope(scope: str) -> str:
    scope = scope.strip()
    return OPS_SCOPE if scope.lower() == OPS_SCOPE else scope.replace(".", "").upper()


def _webhook_label(scope: str, url: str) -> str:
    # The URL often carries a token: store a fingerprint of it, not the URL.
    return f"webhook:{scope}:{hashlib.sha256(url.encode()).hexdigest()[:10]}"


def read_recipients(settings: Settings) -> list[Recipient]:
    """The recipients of `read_routing`, each refused row logged."""
    recipients, refused = read_routing(settings)
    for row in refused:
        log.warning("recipient refused: %s", row)
    return recipients


def read_routing(settings: Settings) -> tuple[list[Recipient], list[RefusedRow]]:
    """The routing file (`JKN_RECIPIENTS`) plus the `JKN_WEBHOOK_URL` recipient, and the rows refused
    (flows/recipient_rows.py): a bad row is that row's, the others are used.

    With nobody configured at all, messages go to the outbox folder for the
    nation and for `ops`, so no alert is lost for want of routing.
    """
    recipients: list[Recipient] = []
    refused: list[RefusedRow] = []
    path = Path(settings.recipients)
    if not path.exists():
        raise ConfigError(f"JKN_RECIPIENTS={path}: no such file")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"scope_code", "channel", "address"} - {name.strip().lower() for name in reader.fieldnames or []}
        if missing:
            raise ConfigError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        seen: dict[str, int] = {}
        for raw in reader:
            # the line the row starts on: a quoted line break inside a field spans lines
            line = reader.line_num - sum(str(value).count("\n") for value in raw.values() if value)
            row = {
                (key or "").strip().lower(): (value if isinstance(value, str) else "").strip()
                for key, value in raw.items()
            }
            if not any(row.values()):
                continue
            scope = _normal_scope(row["scope_code"])
            channel = row["channel"].lower()
            language = row.get("language", "").lower() or settings.locale
            address = row["address"]
            problems = [
                ("channel", channel not in CHANNELS and f"must be one of {', '.join(CHANNELS)}, not {channel!r}"),
                ("language", language not in LANGUAGES and f"must be id or en, not {language!r}"),
                ("address", channel != "outbox" and not address and f"{channel} recipient without an address"),
                ("address", address and address_problem(channel, address)),
            ]
            try:
                digest = _truthy(row.get("digest"))
            except ValueError as error:
                problems.append(("digest", str(error)))
            column, reason = next(((column, reason) for column, reason in problems if reason), (None, None))
            if reason:
                refused.append(RefusedRow(str(path), line, column, reason))
                continue
            if channel == "webhook":
                label = _webhook_label(scope, address)
            elif channel == "outbox":
                label = f"outbox:{scope}" + (f":{address}" if address else "")
            else:
                label = address
            if label in seen:
                refused.append(
                    RefusedRow(str(path), line, "address", f"recipient listed twice (first on line {seen[label]})")
                )
                continue
            seen[label] = line
            recipients.append(Recipient(label, scope, channel, address, language, digest, line))
    if settings.webhook_url is not None:
        recipients.append(
            Recipient(
                "webhook:ID:JKN_WEBHOOK_URL",
                "ID",
                "webhook",
                settings.webhook_url.get_secret_value(),
                settings.locale,
                True,
            )
        )
    if not recipients:
        recipients = outbox_fallback(settings)
    return recipients, refused


def outbox_fallback(settings: Settings) -> list[Recipient]:
    return [
        Recipient("outbox:ID", "ID", "outbox", "", settings.locale),
        Recipient(f"outbox:{OPS_SCOPE}", OPS_SCOPE, "outbox", "", settings.locale),
    ]


def load_recipients(
    con: duckdb.DuckDBPyConnection, recipients: list[Recipient], routing_file: Path | str = "recipients"
) -> tuple[list[Recipient], list[RefusedRow]]:
    """Temp table `alert_recipients` (no addresses: nothing secret enters the database); a
    recipient whose scope code is unknown is refused, the others kept."""
    con.execute(
        "create or replace temp table alert_recipients "
        "(label varchar, scope_code varchar, channel varchar, language varchar, digest boolean)"
    )
    con.executemany(
        "insert into alert_recipients values (?, ?, ?, ?, ?)",
        [(r.label, r.scope_code, r.channel, r.language, r.digest) for r in recipients],
    )
    unknown = {
        row[0]
        for row in con.execute(
            """
        select distinct scope_code from alert_recipients
        where scope_code not in ('ID', 'ops')
            and scope_code not in (select region_code from ref.regions)
            and scope_code not in (select province_code from ref.regions)
            and scope_code not in (select upper(branch_office) from ref.regions where branch_office is not null)
        """
        ).fetchall()
    }
    if not unknown:
        return recipients, []
    con.execute("delete from alert_recipients where list_contains(?, scope_code)", [sorted(unknown)])
    refused = [
        RefusedRow(
            str(routing_file),
            r.line,
            "scope_code",
            f"unknown scope code {r.scope_code!r} (use a region code, a province code, a branch office, ID or ops)",
        )
        for r in recipients
        if r.scope_code in unknown
    ]
    return [r for r in recipients if r.scope_code not in unknown], refused


SCOPE_NAMES = """
select
    recipients.scope_code,
    coalesce(
        case recipients.scope_code when 'ID' then 'Indonesia' when 'ops' then 'ops' end,
        (select any_value(region_name) from ref.regions where region_code = recipients.scope_code),
        (select any_value(province_name) from ref.regions where province_code = recipients.scope_code),
        'KC ' || upper(recipients.scope_code[1]) || lower(recipients.scope_code[2:])
    ) as name
from (select distinct scope_code from alert_recipients) as recipients
"""

ROUTE = """
select recipients.label, changes.alert_key
from alert_changes as changes
inner join alert_recipients as recipients
    on case
        when changes.rule = 'data_quality_failed' then recipients.scope_code = 'ops'
        -- a late office: the region's own recipients, and ops, who chase the extract
        when changes.rule = 'region_not_reported'
            then recipients.scope_code in (
                changes.code, upper(changes.branch_office), changes.province_code, 'ID', 'ops'
            )
        else recipients.scope_code in (changes.code, upper(changes.branch_office), changes.province_code, 'ID')
    end
where changes.state is not null
"""

SENT_ALERTS = """
select * exclude (worsened_step)
from alert_changes
where state is not null
order by
    state = 'resolved',
    list_position(['info', 'warning', 'critical'], severity) desc,
    list_position(['new', 'worsened', 'reminder', 'resolved'], state),
    list_position($rules, rule),
    gap desc nulls last,
    name,
    alert_key
"""


# ---------------------------------------------------------------------------
# Wording: Jinja2 templates per language, Indonesian number format by default
# ---------------------------------------------------------------------------


def format_number(value: float | int | None, decimals: int = 0, language: str = "id") -> str:
    """1313212 -> '1.313.212' (id) or '1,313,212' (en); 86.176 -> '86,18' with 2 decimals."""
    return "-" if value is None else grouped(value, decimals, language)


def _month_name(value: str | date | None, language: str) -> str:
    if not value:
        return "-"
    text = value.strftime("%Y-%m") if isinstance(value, date) else str(value)
    year, month = text[:7].split("-")
    return f"{MONTH_NAMES[language][int(month) - 1]} {year}"


def _long_date(value: str | date | None, language: str) -> str:
    if not value:
        return "-"
    day = date.fromisoformat(str(value)[:10])
    return f"{day.day} {MONTH_NAMES[language][day.month - 1]} {day.year}"


@cache
def environment(language: str) -> Environment:
    """Templates of one language: the number and date filters write that language's way."""
    env = Environment(
        loader=PackageLoader("flows", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    people = "orang" if language == "id" else "people"
    env.filters.update(
        num=lambda value, decimals=0: format_number(value, decimals, language),
        pct=lambda value, decimals=2: "-" if value is None else f"{format_number(value, decimals, language)}%",
        pp=lambda value: "-" if value is None else format_number(value, 2, language),
        people=lambda value: "-" if value is None else f"{format_number(value, 0, language)} {people}",
        idr=lambda value: "-" if value is None else f"Rp {format_number(value, 0, language)}",
        month_name=lambda value: _month_name(value, language),
        long_date=lambda value: _long_date(value, language),
    )
    env.globals["language"] = language
    return env


def words(language: str):
    """The language's wording module: macros `sentence`, `line`, `header`, `omitted`, `subject`
    and the dict `labels`."""
    return environment(language).get_template(f"alert_words_{language}.j2").module


def scope_display(scope_name: str, language: str) -> str:
    return words(language).labels["ops"] if scope_name == OPS_SCOPE else scope_name


def _round(value, digits: int = 2):
    return None if value is None else round(float(value), digits)


def _whole(value):
    return None if value is None else int(round(value))


def alert_payload(row: dict, language: str) -> dict:
    """One alert as it goes into a payload, its `message` in `language`."""
    measured = _whole if row["measure"] in WHOLE_NUMBER_MEASURES else _round
    # a late region's previous_value is its last coverage (%), not a count of months
    previous = _round if row["measure"] == missing_regions.MEASURE else measured
    values = {
        **row,
        "actual_pct": _round(row["actual_pct"]),
        "expected_pct": _round(row["expected_pct"]),
        "target_pct": _round(row["target_pct"]),
        "target_date": str(row["target_date"]) if row["target_date"] else None,
        "gap_pp": _round(row["gap_pp"]),
        "people_needed": _whole(row["people_needed"]),
        "value": measured(row["value"]),
        "previous_value": previous(row["previous_value"]),
        "threshold": _round(row["threshold"]),
        "count": _whole(row["count"]),
        "message": str(words(language).sentence(row)).strip(),
    }
    return {key: values[key] for key in PAYLOAD_KEYS}


def digest_text(
    alerts: list[dict], scope_name: str, month: str, language: str, preface: tuple[str, ...] = (), footer: str = ""
) -> str:
    """The chat summary: a header, this month's actions (`preface`), one line per alert while they fit in
    TEXT_LIMIT characters, how many were left out, and the report link (`footer`)."""
    module = words(language)
    counts = Counter(alert["state"] for alert in alerts)
    header = "\n".join(
        [str(module.header(scope_display(scope_name, language), month, len(alerts), counts)).strip(), *preface]
    )
    lines = [str(module.line(alert)).strip() for alert in alerts]
    shown: list[str] = []
    # Room for the "N more" line at its longest and the footer, so the total never passes the limit.
    reserve = len(str(module.omitted(len(alerts))).strip()) + 1 + (len(footer) + 1 if footer else 0)
    used = len(header)
    for number, line in enumerate(lines):
        last = number == len(lines) - 1
        if used + 1 + len(line) + (0 if last else reserve) > TEXT_LIMIT:
            break
        shown.append(line)
        used += 1 + len(line)
    omitted = len(lines) - len(shown)
    parts = (
        [header, *shown] + ([str(module.omitted(omitted)).strip()] if omitted else []) + ([footer] if footer else [])
    )
    return "\n".join(parts)[:TEXT_LIMIT]


@dataclass
class Message:
    message_id: str
    recipient: Recipient
    payload: dict

    @property
    def alert_keys(self) -> list[str]:
        return [alert["alert_key"] for alert in self.payload["alerts"]]


def _message_id(run_id: str, recipient: Recipient, alerts: list[dict]) -> str:
    """The Idempotency-Key: the same for the same run, recipient and alerts. Written as a UUID so no
    run of 13 or more digits (what a privacy scan flags as a card number or NIK) can appear in it."""
    content = "|".join([run_id, recipient.label, *(f"{a['alert_key']}:{a['state']}" for a in alerts)])
    return str(uuid.UUID(bytes=hashlib.sha256(content.encode("utf-8")).digest()[:16]))


def compose(
    con: duckdb.DuckDBPyConnection,
    recipients: list[Recipient],
    run_id: str,
    month: str,
    settings: Settings | None = None,
) -> list[Message]:
    """This run's messages: one digest per recipient (or one per alert where digest is false). With
    `settings`, each also carries this month's actions, a summary and the report link (flows/digests.py)."""
    rows = _dicts(con.execute(SENT_ALERTS, {"rules": list(RULE_NAMES)}))
    routes: dict[str, set[str]] = {}
    for label, alert_key in con.execute(ROUTE).fetchall():
        routes.setdefault(label, set()).add(alert_key)
    names = dict(con.execute(SCOPE_NAMES).fetchall())
    rendered: dict[tuple[str, str], dict] = {}
    messages = []
    for recipient in recipients:
        mine = routes.get(recipient.label)
        if not mine:
            continue
        alerts = []
        for row in rows:
            if row["alert_key"] in mine:
                key = (row["alert_key"], recipient.language)
                if key not in rendered:
                    rendered[key] = alert_payload(row, recipient.language)
                alerts.append(rendered[key])
        batches = [alerts] if recipient.digest else [[alert] for alert in alerts]
        scope_name = names.get(recipient.scope_code, recipient.scope_code)
        extra = _digest_extra(con, settings, recipient) if settings else {}
        for batch in batches:
            preface, footer = digests.text_parts(extra, recipient.language)
            payload = {
                "source": "jkn",
                "run_id": run_id,
                "month": month,
                "recipient": recipient.scope_code,
                "text": digest_text(batch, scope_name, month, recipient.language, preface, footer),
                "alerts": batch,
            }
            if extra:
                payload.update(summary=digests.summary(batch), **extra)
            messages.append(Message(_message_id(run_id, recipient, batch), recipient, payload))
    return messages


def _digest_extra(con: duckdb.DuckDBPyConnection, settings: Settings, recipient: Recipient) -> dict:
    return {
        "this_month": digests.this_month(con, settings, recipient.scope_code, recipient.language),
        "report_url": digests.report_url(settings, recipient.language, recipient.scope_code),
    }


def _dicts(cursor) -> list[dict]:
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# ---------------------------------------------------------------------------
# 4. Store, 5. deliver
# ---------------------------------------------------------------------------


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
    if scope_code == OPS_SCOPE or not regions:
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


class _Charts:
    """Trajectory PNGs for emails, drawn once per scope and language in a run."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.drawn: dict[tuple, bytes | None] = {}

    def png(self, scope: tuple[str, str] | None, language: str) -> bytes | None:
        if scope is None:
            return None
        key = (*scope, language)
        if key not in self.drawn:
            try:
                from flows import charts  # Altair + vl-convert: loaded only when an email needs a chart

                self.drawn[key] = charts.trajectory_png(self.con, scope[0], scope[1], locale=language)
            except (LookupError, duckdb.Error) as error:
                log.warning("no trajectory chart for %s %s: %s", scope[0], scope[1], error)
                self.drawn[key] = None
        return self.drawn[key]


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
    con: duckdb.DuckDBPyConnection, settings: Settings, recipients: list[Recipient], run_id: str
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
    charts = _Charts(con)
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


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


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
    evaluate(con, rules, month)
    lifecycle(con, now, settings.reminder_days)
    messages = compose(con, recipients, run_id, month, settings)
    firing, to_send = con.execute(
        "select count(*) filter (where fires), count(*) filter (where state is not null) from alert_changes"
    ).fetchone()
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
    store(con, messages, run_id, now)
    summary.update(deliver_pending(con, settings, recipients, run_id))
    return summary


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

"""Alert messages: each alert's payload and sentence, and each recipient's digest (one per recipient,
or one per alert where its `digest` is false), in the recipient's language (Jinja2 templates in
flows/templates/alert_*).
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from dataclasses import dataclass
from functools import cache

import duckdb
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from flows import actions, digests, formats, missing_regions
from flows.alerts.payload import PAYLOAD_KEYS, WHOLE_NUMBER_MEASURES
from flows.alerts.routing import OPS_SCOPE, ROUTE, SCOPE_NAMES, Recipient
from flows.alerts.rules import RULE_NAMES
from flows.settings import Settings
from flows.words import jinja_bytecode_cache

TEXT_LIMIT = 3000
STATE_ORDER = ("new", "worsened", "reminder", "resolved")


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


# Wording: Jinja2 templates per language; numbers, months and empty values as flows/formats.py writes them
# ---------------------------------------------------------------------------


@cache
def environment(language: str) -> Environment:
    """Templates of one language: the number and date filters write that language's way."""
    env = Environment(
        loader=PackageLoader("flows", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=jinja_bytecode_cache("alerts"),  # compiled once per release, not in every process (~0.4 s)
        auto_reload=False,  # the package's templates do not change under a process: no stat per template asked for
    )
    env.filters.update(
        num=lambda value, decimals=0: formats.number(value, language, decimals),
        pct=lambda value, decimals=2: formats.percent(value, language, decimals),
        pp=lambda value: formats.number(value, language, 2),
        people=lambda value: _people(value, language),
        idr=lambda value: formats.rupiah(value, language),
        month_name=lambda value: formats.month_name(value, language),
        long_date=lambda value: formats.long_date(value, language),
    )
    env.globals["language"] = language
    return env


def _people(value, language: str) -> str:
    """'1.313.212 orang': a count with the language's word for people (the templates' `labels.people`)."""
    if value is None:
        return formats.EMPTY
    return f"{formats.number(value, language)} {words(language).labels['people']}"


@cache
def words(language: str):
    """The language's wording module: macros `sentence`, `line`, `header`, `omitted`, `subject`
    and the dict `labels` (run once per process: it is asked for once per alert)."""
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
    national = None  # the nation's "this month" candidates, read once for every digest (flows/digests.py)
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
        if settings and national is None:
            national = actions.candidates(con, "ID")
        extra = _digest_extra(con, settings, recipient, national) if settings else {}
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


def _digest_extra(
    con: duckdb.DuckDBPyConnection, settings: Settings, recipient: Recipient, national: list | None = None
) -> dict:
    return {
        "this_month": digests.this_month(con, settings, recipient.scope_code, recipient.language, national),
        "report_url": digests.report_url(settings, recipient.language, recipient.scope_code),
    }


def _dicts(cursor) -> list[dict]:
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

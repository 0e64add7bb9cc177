"""Alert routing: who receives what. The routing file's recipients, and a region's alerts to the
recipients of the region, its branch, its province and the nation (`ID`); `data_quality_failed` to
scope `ops` only, and a late region's alert to `ops` as well.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from flows.errors import ConfigError
from flows.recipient_rows import RefusedRow, address_problem
from flows.settings import Settings

log = logging.getLogger("flows.alerts")

LANGUAGES = ("id", "en")
CHANNELS = ("email", "webhook", "outbox")
OPS_SCOPE = "ops"


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

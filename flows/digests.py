"""What makes a digest readable at any size: this month's actions first, a summary by severity and rule,
the top alerts by gap, the rest in an attached CSV, and a link to the report.

`flows/alerts/` decides who gets which alerts; this module shapes one recipient's message around them (its
actions from flows/actions.py, which reads the views of sql/views/; no SQL of its own).
The webhook payload keeps the contract's keys (CONTRACT.md section 6) and adds `summary`, `this_month`
and `report_url`.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from urllib.parse import quote

import duckdb

from flows import actions
from flows.alerts.payload import CONTRACT_KEYS
from flows.settings import Settings

# An email shows this many alerts; all of them are in the payload and, past this, in the attached CSV.
TOP_ALERTS = 20
SEVERITY_ORDER = ("critical", "warning", "info")
# The CSV's columns are the contract's keys of an alert, in its order (flows/alerts/payload.py).
CSV_FIELDS = CONTRACT_KEYS


def report_file_name(settings: Settings, language: str) -> str:
    """The report page in `language`: JKN_LOCALE's is index.html, the other index.<language>.html."""
    return "index.html" if language == settings.locale else f"index.{language}.html"


def scope_filter(scope_code: str) -> str:
    """The report's address filter for a recipient's scope (the page reads it: #province=33, #branch=..)."""
    if scope_code in ("ID", "ops"):
        return ""
    if scope_code.isdigit():
        return f"province={scope_code}" if len(scope_code) == 2 else f"region={scope_code}"
    return f"branch={quote(scope_code)}"


def report_url(settings: Settings, language: str, scope_code: str = "ID", anchor: str | None = None) -> str:
    """Where the recipient reads the whole picture: JKN_REPORT_URL (a folder ending in / gets the page's file
    name), else the report file on this machine, filtered to the recipient's scope."""
    if settings.report_url:
        base = settings.report_url
        if base.endswith("/"):
            base += report_file_name(settings, language)
    else:
        base = (settings.report_dir / report_file_name(settings, language)).resolve().as_uri()
    parts = [part for part in (scope_filter(scope_code), f"at={anchor}" if anchor else "") if part]
    return base + ("#" + "&".join(parts) if parts else "")


def summary(alerts: list[dict]) -> dict:
    """Counts of the open alerts by severity and by rule, the worst severity, and how many resolved."""
    open_alerts = [alert for alert in alerts if alert["state"] != "resolved"]
    by_severity = Counter(alert["severity"] for alert in open_alerts)
    worst = next((severity for severity in SEVERITY_ORDER if by_severity.get(severity)), None)
    return {
        "worst_severity": worst,
        "by_severity": {severity: by_severity[severity] for severity in SEVERITY_ORDER if by_severity[severity]},
        "by_rule": dict(Counter(alert["rule"] for alert in open_alerts).most_common()),
        "resolved": len(alerts) - len(open_alerts),
        "total": len(alerts),
    }


def top(alerts: list[dict], count: int = TOP_ALERTS) -> list[dict]:
    """The alerts an email shows: open before resolved, the worst severity first, then the largest gap to the
    trajectory (the one unit every region's alert shares)."""

    def rank(alert: dict):
        severity = SEVERITY_ORDER.index(alert["severity"]) if alert["severity"] in SEVERITY_ORDER else 9
        gap = alert.get("gap_pp")
        return (alert["state"] == "resolved", severity, -(gap if gap is not None else float("-inf")))

    return sorted(alerts, key=rank)[:count]


def alerts_csv(alerts: list[dict]) -> bytes:
    """Every alert of the message, one row each (aggregates only, as in the payload)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(alerts)
    return buffer.getvalue().encode("utf-8")


def this_month(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    scope_code: str,
    language: str,
    national: list[actions.Action] | None = None,
) -> list[dict]:
    """The recipient's actions, each with the sentence and the report link to its detail. Failed checks are
    for the nation's and the data team's digests; a region's managers get their own figures.

    `national`: the nation's candidates (`actions.candidates(con, "ID")`), read once for every digest of a
    run: a scope's are the nation's within it, in the same order (`in_scope`), so no query per recipient."""
    if national is None:
        national = actions.candidates(con, "ID")
    if scope_code == "ops":
        found = [action for action in actions.first_actions(national, include_checks=True) if action.kind == "checks"]
    else:
        found = actions.first_actions(in_scope(national, scope_code), include_checks=scope_code == "ID")
    return [
        {
            "kind": action.kind,
            "text": actions.sentence(action, language),
            "link": report_url(settings, language, scope_code, action.anchor),
        }
        for action in found
    ]


def in_scope(national: list[actions.Action], scope_code: str) -> list[actions.Action]:
    """The nation's candidates that `actions.candidates(con, scope_code)` returns, in its order: the check
    action, and the regions and employers whose province, branch office or region is the scope (the views'
    rows are ordered by the same keys in any scope, so filtering keeps their order)."""
    if scope_code == "ID":
        return national
    return [
        action
        for action in national
        if action.kind == "checks" or scope_code in (action.province_code, action.branch_office, action.region_code)
    ]


def text_parts(extra: dict, language: str) -> tuple[tuple[str, ...], str]:
    """This month's actions as the chat text's first lines, and the report link as its last."""
    if not extra:
        return (), ""
    preface = tuple(
        [actions.title(language) + ":"] + [f"* {item['text']}" for item in extra["this_month"]]
        if extra["this_month"]
        else []
    )
    return preface, actions.phrase("report_link", language, extra["report_url"])

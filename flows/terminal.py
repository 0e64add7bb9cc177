"""What `jkn` prints: the run summary, `jkn status`, each stage's table, and an unexpected error as one line
(its traceback in a log file). Rich tables; the figures are read from the published snapshot's views
(sql/views/: the same rows the report shows)."""

from __future__ import annotations

import os
import sys
from contextlib import suppress
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from flows import formats, views
from flows.errors import JknError
from flows.settings import load_settings

# Summary tables need ~110 columns; a pipe or CI log would otherwise get 80.
console = Console(width=None if Console().is_terminal else 120)
errors = Console(stderr=True)


def print_version(value: bool) -> None:
    """`jkn --version`."""
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "not installed"

    # What on-call needs to match a report with DEPENDENCIES' known bugs: ours and the three engines.
    console.print(
        f"jkn {installed('jkn')} (prefect {installed('prefect')}, great-expectations "
        f"{installed('great-expectations')}, duckdb {installed('duckdb')})",
        highlight=False,
    )
    raise typer.Exit()


def print_summary(result: dict) -> None:
    """After `jkn run` and `jkn demo`: files, the regions against their trajectory, alerts, where things went."""
    settings = load_settings()
    from flows import parts, snapshot

    loaded = [f for f in result["files"] if f["status"] == "staged"]
    skipped = [f for f in result["files"] if f["status"] == "skipped"]
    refused = [f for f in result["files"] if f["status"] == "rejected"]
    if not result.get("backfill"):  # a backfill loads no files
        console.print(f"Files: {len(loaded)} loaded, {len(skipped)} already loaded, {len(refused)} refused")
    for item in refused:
        errors.print(f"  refused: {item['message']}")
    from flows import missing_regions

    with snapshot.connect(settings) as con:
        month, rows = latest_trajectory(con)
        late = missing_regions.not_reported(con, month if month != formats.EMPTY else None)
    table = Table(title=f"Coverage against trajectory, {month}")
    for column, justify in (
        ("Region", "left"),
        ("Coverage %", "right"),
        ("Expected %", "right"),
        ("Gap pp", "right"),
        ("Gap (people)", "right"),
        ("Projected", "right"),
        ("Status", "left"),
    ):
        table.add_column(column, justify=justify)
    for name, actual, expected, gap, people, projected, status in rows:
        table.add_row(
            name, f"{actual:.2f}", f"{expected:.2f}", f"{gap:+.2f}", f"{people:,}", projected or formats.EMPTY, status
        )
    console.print(table)
    for row in late:
        console.print(f"{row['name']}: {missing_regions.region_note(row)}")
    for warning in result.get("warnings", []):
        console.print(f"warning: {warning['suite']} {warning['expectation']}: {warning['observed']}")
    alerts = result["alerts"]
    print_refused_recipients(alerts)
    if alerts.get("skipped"):
        console.print(f"Alerts: {alerts['skipped']}")
    else:
        console.print(f"Alerts: {alerts.get('alerts_open', 0)} open, {alerts.get('messages', 0)} message(s) sent")
    console.print(f"Database: {result['database']} (rows in {parts.parts_root(Path(result['database']))})")
    console.print(f"Readers:  {snapshot.snapshot_path(Path(result['database']))} (the published snapshot)")
    console.print(f"Report:   {result['report']}")
    console.print(f"Alerts:   {settings.outbox_dir}")
    console.print(f"Finished in {result['seconds']} s")


def print_refused_recipients(summary: dict) -> None:
    for row in summary.get("recipients_refused", []):
        errors.print(f"  recipient refused: {row}", markup=False, highlight=False, soft_wrap=True)


def latest_trajectory(con) -> tuple[str, list[tuple]]:
    """The latest trajectory month (YYYY-MM, or `formats.EMPTY`) and its regions, the widest gap first."""
    month = _trajectory_month(con)
    rows = con.execute(
        "select name, actual_pct, expected_pct, gap_pp, people_needed, projected_target_month, status "
        f"from {views.relation(con, 'scopes')} where month = ? and level = 'region' and is_tracked "
        "order by gap_pp desc nulls last, code",
        [month],
    ).fetchall()
    return (month.strftime("%Y-%m") if month else formats.EMPTY), rows


def _trajectory_month(con):
    return con.execute("select max(month) from mart.trajectory").fetchone()[0]


def print_ingest(results) -> None:
    table = Table(title="Ingest")
    for column in ("File", "Status", "Rows loaded", "Rows rejected", "Message"):
        table.add_column(column)
    for result in results:
        table.add_row(
            result.file_name, result.status, str(result.rows_loaded), str(result.rows_rejected), result.message
        )
    console.print(table)


def print_checks(staged: int, report, failed_only: bool) -> None:
    table = Table(title=f"Checks on {staged} staged file(s), run {report.run_id[:8]}")
    for column in ("Suite", "Expectation", "Severity", "Result", "Observed"):
        table.add_column(column)
    for result in report.results:
        if failed_only and result.success:
            continue
        table.add_row(
            result.suite,
            result.expectation,
            result.severity,
            "pass" if result.success else "FAIL",
            result.observed[:120],
        )
    console.print(table)
    console.print(
        f"{len(report.results)} checks: {len(report.critical_failures)} critical failure(s), "
        f"{len(report.warnings)} warning(s)"
    )
    if report.data_docs:
        console.print(f"Data Docs: {report.data_docs}")


def print_alerts(summary: dict, dry_run: bool, pending_alert_hours: float) -> None:
    from flows import alerts

    table = Table(title=("Would send" if dry_run else "Sent") + f", {summary['month']}")
    for column in ("Recipient", "Scope", "Channel", "Language", "Alerts", "New", "Worsened", "Reminder", "Resolved"):
        table.add_column(column, overflow="fold")
    for item in summary["plan"]:
        states = item["states"]
        table.add_row(
            item["recipient"],
            item["scope"],
            item["channel"],
            item["language"],
            str(item["alerts"]),
            *(str(states.get(state, 0)) for state in alerts.STATE_ORDER),
        )
    console.print(table)
    print_refused_recipients(summary)
    console.print(
        f"Alerts: {summary['alerts_open']} open, {summary['alerts_to_send']} to send "
        f"in {summary['messages']} message(s)"
    )
    if dry_run:
        console.print(f"Messages from earlier runs still to deliver: {summary['earlier_pending']}")
        for item, payload in zip(summary["plan"], summary["payloads"], strict=True):
            console.print(f"\n--- {item['recipient']} ({item['channel']}) ---", markup=False, highlight=False)
            console.print(payload["text"], markup=False, highlight=False)
        console.print("\nDry run: nothing was sent and nothing in the database changed.")
    else:
        console.print(
            f"Delivered: {summary['delivered']}, still pending (retried by the next run): "
            f"{summary['pending']}, failed for good: {summary['failed']}, "
            f"maybe delivered (not sent again): {summary['unknown']}"
        )
        if summary["notices"].get("notices"):
            console.print(
                f"Told ops about {summary['notices']['notices']} message(s) pending longer than "
                f"JKN_PENDING_ALERT_HOURS={pending_alert_hours:g}"
            )


def _figure(value, pattern: str) -> str:
    return format(value, pattern) if value is not None else formats.EMPTY


def print_status() -> None:
    """`jkn status`: the latest coverage of every scope (the report's scope rows) and the open alerts."""
    from flows import missing_regions, snapshot

    settings = load_settings()
    with snapshot.connect(settings) as con:
        month = _trajectory_month(con)
        latest = con.execute("select max(month) from mart.coverage").fetchone()[0]
        coverage = con.execute(
            "select level, code, name, coverage_pct, active_rate_pct, participants, population, is_uhc "
            f"from {views.relation(con, 'scopes')} where month = ? order by level_rank, code",
            [latest],
        ).fetchall()
        partial = missing_regions.partial_scopes(con, latest)
        not_reported = missing_regions.not_reported(con, latest)
        open_alerts = con.execute(
            f"select * from {views.relation(con, 'open_alerts')} order by severity = 'critical' desc, rule, code"
        ).fetchall()
    table = Table(title=f"Coverage, {month.strftime('%Y-%m') if month else formats.EMPTY}")
    for column in ("Level", "Name", "Coverage %", "Active %", "Participants", "Population", "UHC", "Note"):
        table.add_column(column)
    for level, code, name, cov, active, people, population, uhc in coverage:
        note = missing_regions.status_note(partial[level, code]) if (level, code) in partial else ""
        table.add_row(
            level,
            name,
            _figure(cov, ".2f"),
            _figure(active, ".2f"),
            f"{people:,}",
            f"{population:,}" if population else formats.EMPTY,
            "yes" if uhc else "no",
            note,
        )
    for row in not_reported:  # last figures, said to be of their own month
        population = row["population"]
        table.add_row(
            "region",
            row["name"],
            _figure(row["coverage_pct"], ".2f"),
            _figure(row["active_rate_pct"], ".2f"),
            f"{row['participants']:,}",
            f"{population:,}" if population else formats.EMPTY,
            formats.EMPTY,
            missing_regions.region_note(row),
        )
    console.print(table)
    alerts_table = Table(title=f"Open alerts ({len(open_alerts)})")
    for column in ("Rule", "Level", "Code", "Severity", "Since", "Last"):
        alerts_table.add_column(column)
    for rule, level, code, severity, first, last in open_alerts:
        alerts_table.add_row(rule, level, code, severity, str(first)[:7], str(last)[:7])
    console.print(alerts_table)


def print_failure(error: Exception) -> None:
    """An unexpected error as one line on the console (16-digit numbers masked, secrets hidden), its
    traceback in a log file."""
    from flows.runs import mask_identifiers
    from flows.scrub import hide_secrets

    log_file = write_error_log(error)
    first_line = (str(error).strip().splitlines() or [""])[0][:300]
    errors.print(
        f"error: the pipeline failed: {type(error).__name__}: {hide_secrets(mask_identifiers(first_line))}\n"
        f"  full traceback: {log_file}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def write_error_log(error: Exception) -> str:
    """The traceback of an unexpected error, in `$JKN_HOME/logs/` (16-digit numbers masked, secrets
    hidden); or, when that cannot be written either (a full disk, a read-only folder), why not: the
    error itself must still reach the console as one line."""
    import traceback
    from datetime import UTC, datetime

    from flows.runs import mask_identifiers
    from flows.scrub import hide_secrets

    try:
        home = load_settings().home
    except JknError:
        home = Path("data")
    path = home / "logs" / f"error-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{os.getpid()}.log"
    text = "".join(traceback.format_exception(error))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"jkn {' '.join(sys.argv[1:])}\n{hide_secrets(mask_identifiers(text))}", encoding="utf-8")
    except OSError as cannot:
        with suppress(OSError):
            path.unlink(missing_ok=True)  # no half-written log left on a full disk
        return f"not written, {path.parent}: {cannot.strerror or cannot}"
    return str(path.resolve())

"""What a run leaves to read when it ends: the published marts' latest coverage by region (with the regions
behind their trajectory), the run summary in Markdown, and the report's address. The flow publishes them as
Prefect artifacts (flows/pipeline.py); here they are plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from flows import database, views
from flows.errors import JknError
from flows.settings import Settings

if TYPE_CHECKING:
    from flows.runs import Run

BEHIND_STATUSES = ("BEHIND", "CRITICAL")


# A 16-digit number in an error text could be a NIK from a bad row; never repeat it.
def mask_identifiers(text: str) -> str:
    """The one masking policy (flows/ingest/pseudonym.py) for what a run reports."""
    from flows.ingest.pseudonym import redact

    return redact(text)


@dataclass
class Published:
    """What is in `mart` at the end of a run (the previous marts if the run failed)."""

    month: str | None = None
    coverage: list[dict] = field(default_factory=list)
    behind: list[dict] = field(default_factory=list)
    report: str | None = None
    problem: str | None = None


def published(settings: Settings) -> Published:
    """The latest published month's coverage by region, with trajectory status."""
    found = Published()
    report = settings.report_dir / "index.html"
    found.report = str(report.resolve()) if report.exists() else None
    if not settings.db_path.exists():
        return found
    try:
        _read_published(settings, found)
    except (duckdb.Error, JknError) as error:
        found.problem = f"the published marts could not be read: {mask_identifiers(str(error).splitlines()[0])}"
    found.behind = sorted(
        (row for row in found.coverage if row["trajectory_status"] in BEHIND_STATUSES),
        key=lambda row: -(row["gap_pp"] or 0),
    )
    return found


def _read_published(settings: Settings, found: Published) -> None:
    with database.connected(settings, read_only=True) as con:
        month = con.execute(
            "select max(month) from mart.coverage" if database.table_exists(con, "mart", "coverage") else "select null"
        ).fetchone()[0]
        if month is None:
            return
        found.month = month.strftime("%Y-%m")
        # the report's and `jkn status`'s scope rows (sql/views/scopes.sql), the month's regions
        found.coverage = views.rows(
            con,
            "select code as region_code, name as region, round(coverage_pct, 2) as coverage_pct, "
            "round(active_rate_pct, 2) as active_rate_pct, participants, population, is_uhc, "
            "status as trajectory_status, round(gap_pp, 2) as gap_pp "
            f"from {views.relation(con, 'scopes')} where month = ? and level = 'region' order by code",
            [month],
        )


def summary_markdown(run: Run, marts: Published) -> str:
    """The run summary: files loaded and refused, checks failed, regions behind, alerts sent."""
    title = {
        "completed": "completed",
        "nothing_new": "nothing new",
        "failed": f"failed (exit {run.exit_code})",
        "running": "interrupted",
    }.get(run.status, run.status)
    refused = sum(1 for item in run.files if item.get("status") == "rejected")
    if refused and run.status == "completed":
        title = f"completed, {refused} file(s) refused (exit 5)"
    lines = [f"# jkn run {run.run_id[:8]}: {title}", ""]
    if run.window:
        lines += [
            f"Backfill of {run.window}: marts recomputed and republished for these months only; no files loaded.",
            "",
        ]
    if run.error:
        lines += [f"**Error:** {run.error}", ""]
    if run.status == "nothing_new":
        lines += [
            "No new file in the landing folder, nothing staged and no unfinished run: "
            "no checks, metrics, alerts or report this time.",
            "",
        ]
    if run.window is None and run.status != "nothing_new":
        lines += _files_section(run.files)
    if run.status != "nothing_new":
        lines += _checks_section(run)
    lines += ["## Regions behind trajectory", ""]
    if marts.problem:
        lines += [marts.problem, ""]
    elif marts.month is None:
        lines += ["Nothing published yet.", ""]
    else:
        lines += [
            f"{len(marts.behind)} of {len(marts.coverage)} regions behind in {marts.month} (published marts).",
            "",
        ]
        if marts.behind:
            lines += ["| region | coverage % | gap pp | status |", "|---|---:|---:|---|"]
            lines += [
                f"| {row['region']} | {row['coverage_pct']:.2f} | {row['gap_pp']:+.2f} | {row['trajectory_status']} |"
                for row in marts.behind[:20]
            ]
            if len(marts.behind) > 20:
                lines.append(f"| ... {len(marts.behind) - 20} more | | | |")
            lines.append("")
    lines += ["## Alerts", ""]
    if run.alerts.get("skipped"):
        lines += [run.alerts["skipped"], ""]
    elif run.alerts:
        lines += [
            f"{run.alerts.get('messages', 0)} message(s) sent; {run.alerts.get('alerts_open', 0)} "
            f"alert(s) open for {run.alerts.get('month')}.",
            "",
        ]
    else:
        lines += ["Not evaluated this run.", ""]
    lines += ["## Where", "", f"- database: `{run.database}`"]
    if marts.report:
        lines.append(f"- report: `{marts.report}`" + ("" if run.report else " (not rewritten this run)"))
    return "\n".join(lines) + "\n"


def _files_section(files: list[dict]) -> list[str]:
    loaded = [item for item in files if item.get("status") == "staged"]
    skipped = [item for item in files if item.get("status") == "skipped"]
    refused = [item for item in files if item.get("status") == "rejected"]
    lines = ["## Files", "", f"{len(loaded)} loaded, {len(skipped)} already loaded, {len(refused)} refused.", ""]
    if loaded or refused:
        lines += ["| file | status | rows loaded | rows rejected | message |", "|---|---|---:|---:|---|"]
        lines += [
            f"| {item.get('file_name')} | {item.get('status')} | {item.get('rows_loaded', 0)} "
            f"| {item.get('rows_rejected', 0)} | {_cell(item.get('message', ''))} |"
            for item in loaded + refused
        ]
        lines.append("")
    return lines


def _checks_section(run: Run) -> list[str]:
    lines = ["## Checks", ""]
    if run.failures:
        lines += [f"{len(run.failures)} critical check(s) failed; nothing from this batch was published:", ""]
        lines += _check_lines(run.failures)
        lines.append("")
    elif run.checked:
        lines += [f"{run.checked} expectation(s) checked, no critical failure.", ""]
    else:
        lines += ["No checks ran.", ""]
    if run.nothing_staged:
        lines += ["The staging checks did not run: no file was staged (nothing new to check).", ""]
    if run.warnings:
        lines += [f"{len(run.warnings)} warning(s):", ""]
        lines += _check_lines(run.warnings)
        lines.append("")
    return lines


def _check_lines(results: list[dict]) -> list[str]:
    return [
        f"- {item.get('suite')} {_cell(item.get('expectation', ''))}: observed {_cell(str(item.get('observed', '')))}"
        for item in results
    ]


def coverage_table(marts: Published) -> list[dict]:
    return marts.coverage


def report_url(marts: Published, served_at: str | None = None) -> str | None:
    """The report's address: under JKN_REPORT_URL when it is served, else the file on this machine."""
    if not marts.report:
        return None
    return f"{served_at.rstrip('/')}/{Path(marts.report).name}" if served_at else Path(marts.report).as_uri()


def _cell(text: str) -> str:
    return mask_identifiers(str(text)).replace("|", "/").replace("\n", " ")[:300]

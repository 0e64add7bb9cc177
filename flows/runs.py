"""What a pipeline run has to do and what it did.

- Whether there is work: a new or changed file in the landing folder, files
  staged but never published (a run crashed after ingesting them), or a run
  that started and never finished (it crashed after publishing, before its
  alerts or report). The landing watch does nothing when there is none.
- The backfill window: `--from`/`--to` months whose marts are recomputed and
  republished; months outside it keep their published rows.
- `ops.runs`: one row per run that did work, `running` until it ends.
- The run summary, the coverage table and the report location the flow
  publishes as Prefect artifacts (built here as plain data; only the flow
  module talks to Prefect).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from flows import database, ingest
from flows.database import utc_now
from flows.errors import ConfigError, DataQualityError, JknError
from flows.settings import Settings

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
BEHIND_STATUSES = ("BEHIND", "CRITICAL")
# A 16-digit number in an error text could be a NIK from a bad row; never repeat it.


def new_run_id() -> str:
    return uuid.uuid4().hex


def mask_identifiers(text: str) -> str:
    """The one masking policy (flows/ingest/pseudonym.py) for what a run reports."""
    from flows.ingest.pseudonym import redact

    return redact(text)


@dataclass(frozen=True)
class Window:
    """The months a backfill recomputes (first and last month, inclusive)."""

    first: date
    last: date

    @classmethod
    def parse(
        cls, from_month: str | None, to_month: str | None, names: tuple[str, str] = ("--from", "--to")
    ) -> Window | None:
        """`YYYY-MM` bounds; either may be left open. Neither: not a backfill (None). `names` are what
        the user typed them as: the CLI's options, or the flow's parameters."""
        if not from_month and not to_month:
            return None
        first = _month(from_month, names[0]) if from_month else date(1, 1, 1)
        last = _month(to_month, names[1]) if to_month else date(9999, 12, 1)
        if first > last:
            raise ConfigError(f"{names[0]} {from_month} is after {names[1]} {to_month}")
        return cls(first, last)

    def __str__(self) -> str:
        first = self.first.strftime("%Y-%m") if self.first.year > 1 else "the first month"
        last = self.last.strftime("%Y-%m") if self.last.year < 9999 else "the latest month"
        return f"{first} to {last}"


def _month(text: str, option: str) -> date:
    match = MONTH.match(text.strip())
    if not match:
        raise ConfigError(f"{option} {text!r}: expected a month as YYYY-MM, e.g. 2021-01")
    return date(int(match.group(1)), int(match.group(2)), 1)


@dataclass
class Run:
    """What one run did, filled in stage by stage; becomes the summary artifact."""

    run_id: str
    purpose: str = "jkn run"
    window: Window | None = None
    started_at: datetime = field(default_factory=utc_now)
    status: str = "running"  # running, completed, failed, nothing_new
    error: str | None = None
    exit_code: int = 0
    files: list[dict] = field(default_factory=list)
    checked: int = 0
    warnings: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    alerts: dict = field(default_factory=dict)
    report: str | None = None
    pending: dict = field(default_factory=dict)
    database: str = ""
    reported: bool = False  # its artifacts are published
    nothing_staged: bool = False  # the staging suites had no file to check

    def add_checks(self, result: dict) -> None:
        self.checked += result.get("checked", 0)
        self.nothing_staged = self.nothing_staged or bool(result.get("nothing_staged"))
        self.warnings += result.get("warnings", [])

    def failed(self, error: BaseException) -> None:
        self.status = "failed"
        self.exit_code = getattr(error, "exit_code", 1)
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        if isinstance(error, DataQualityError):  # its text is one line; the summary lists the checks apart
            first_line = error.lines()[0].rstrip(":")
        if not isinstance(error, JknError):
            first_line = f"{type(error).__name__}: {first_line}"
        self.error = mask_identifiers(first_line)
        if isinstance(error, DataQualityError):
            self.failures = error.failures

    def result(self) -> dict:
        """What `jkn run` prints and the flow returns."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "backfill": str(self.window) if self.window else None,
            "files": self.files,
            "warnings": self.warnings,
            "alerts": self.alerts,
            "report": self.report,
            "pending": self.pending,
            "database": self.database,
        }


def pending_work(settings: Settings, files: list[str] | None = None) -> dict:
    """What a run would find to do; empty lists everywhere means nothing.

    Files are compared by content (sha256) with what was loaded before, but a
    landing file whose name was loaded after its last modification is taken as
    known without reading it, so a watch over a large landing folder stays quick.
    """
    paths = [Path(name) for name in files] if files else ingest.discover(settings.landing_dir)
    if not settings.db_path.exists():
        return {"new_files": [path.name for path in paths], "staged_files": [], "unfinished_runs": []}
    with database.connected(settings, read_only=True) as con:
        loaded = _loaded_at(con)
        new_files = []
        for path in paths:
            modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            if loaded.get(path.name) and loaded[path.name] >= modified:
                continue
            if not ingest.seen_before(con, ingest.file_sha256(path)):
                new_files.append(path.name)
        staged = [
            row[0]
            for row in con.execute(
                "select file_name from ops.load_log where status = 'staged' order by load_id"
            ).fetchall()
        ]
        unfinished = [
            row[0]
            for row in con.execute(
                "select run_id from ops.runs where status = 'running' order by started_at"
            ).fetchall()
        ]
    return {"new_files": new_files, "staged_files": staged, "unfinished_runs": unfinished}


def has_work(pending: dict) -> bool:
    return any(pending.values())


def _loaded_at(con: duckdb.DuckDBPyConnection) -> dict[str, datetime]:
    return dict(con.execute("select file_name, max(loaded_at) from ops.load_log group by file_name").fetchall())


@contextmanager
def recorded(settings: Settings, run: Run, command: str) -> Iterator[None]:
    """Keep the run in `ops.runs`: `running` while it works, then `completed` or
    `failed`. A row still `running` when the next run starts belongs to a run that
    crashed (the caller holds the writer lock, so no other run is alive): it is
    marked `crashed` and the new run does the work that was left."""
    with database.connected(settings) as con:
        con.execute("update ops.runs set status = 'crashed' where status = 'running'")
        con.execute(
            "insert into ops.runs (run_id, command, started_at, status) values (?, ?, ?, 'running')",
            [run.run_id, command, run.started_at],
        )
    try:
        yield
        run.status = "completed"
    except BaseException as error:
        run.failed(error)
        raise
    finally:
        with database.connected(settings) as con:
            con.execute(
                "update ops.runs set finished_at = ?, status = ?, summary = ? where run_id = ?",
                [utc_now(), run.status, json.dumps(_stored_summary(run), default=str), run.run_id],
            )


def _stored_summary(run: Run) -> dict:
    return {
        "backfill": str(run.window) if run.window else None,
        "files": [
            {key: item.get(key) for key in ("file_name", "status", "rows_loaded", "rows_rejected")}
            for item in run.files
        ],
        "warnings": len(run.warnings),
        "failures": len(run.failures),
        "messages": run.alerts.get("messages", 0),
        "error": run.error,
    }


def alerts_due(settings: Settings, window: Window | None) -> tuple[bool, str]:
    """Alerts evaluate only the latest month. A backfill that does not reach it
    leaves the alerts alone, so old months never alert and nothing is re-sent."""
    if window is None:
        return True, ""
    with database.connected(settings, read_only=True) as con:
        try:
            latest = con.execute("select max(month) from build.trajectory").fetchone()[0]
        except duckdb.Error:
            latest = None
    if latest is None or window.last >= latest:
        return True, ""
    return False, (f"backfill {window} does not reach the latest month {latest:%Y-%m}: alerts were not evaluated")


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
            "select max(month) from mart.coverage" if _has_table(con, "mart", "coverage") else "select null"
        ).fetchone()[0]
        if month is None:
            return
        found.month = month.strftime("%Y-%m")
        cursor = con.execute(
            """
            select c.code as region_code, c.name as region, round(c.coverage_pct, 2) as coverage_pct,
                   round(c.active_rate_pct, 2) as active_rate_pct, c.participants, c.population,
                   c.is_uhc, t.status as trajectory_status, round(t.gap_pp, 2) as gap_pp
            from mart.coverage as c
            left join mart.trajectory as t on t.month = c.month and t.level = c.level and t.code = c.code
            where c.month = ? and c.level = 'region'
            order by c.code
            """,
            [month],
        )
        columns = [column[0] for column in cursor.description]
        found.coverage = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    return (
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, name]
        ).fetchone()[0]
        > 0
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
        lines += [
            f"- {item.get('suite')} {_cell(item.get('expectation', ''))}: observed "
            f"{_cell(str(item.get('observed', '')))}"
            for item in run.failures
        ]
        lines.append("")
    elif run.checked:
        lines += [f"{run.checked} expectation(s) checked, no critical failure.", ""]
    else:
        lines += ["No checks ran.", ""]
    if run.nothing_staged:
        lines += ["The staging checks did not run: no file was staged (nothing new to check).", ""]
    if run.warnings:
        lines += [f"{len(run.warnings)} warning(s):", ""]
        lines += [
            f"- {item.get('suite')} {_cell(item.get('expectation', ''))}: observed "
            f"{_cell(str(item.get('observed', '')))}"
            for item in run.warnings
        ]
        lines.append("")
    return lines


def coverage_table(marts: Published) -> list[dict]:
    return marts.coverage


def report_url(marts: Published, served_at: str | None = None) -> str | None:
    """The report's address: under JKN_REPORT_URL when it is served, else the file on this machine."""
    if not marts.report:
        return None
    return f"{served_at.rstrip('/')}/{Path(marts.report).name}" if served_at else Path(marts.report).as_uri()


def _cell(text: str) -> str:
    return mask_identifiers(str(text)).replace("|", "/").replace("\n", " ")[:300]

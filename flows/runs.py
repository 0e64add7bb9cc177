"""What a pipeline run has to do and what it did.

- Whether there is work: a new or changed file in the landing folder, files
  staged but never published (a run crashed after ingesting them), or a run
  that started and never finished (it crashed after publishing, before its
  alerts or report). The landing watch does nothing when there is none.
- The backfill window: `--from`/`--to` months whose marts are recomputed and
  republished; months outside it keep their published rows.
- `ops.runs`: one row per run that did work, `running` until it ends.
- The run summary, the coverage table and the report location the flow
  publishes as Prefect artifacts: flows/run_summary.py (plain data; only the
  flow module talks to Prefect), importable from here as before.
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
from flows.run_summary import (
    Published,
    coverage_table,
    mask_identifiers,
    published,
    report_url,
    summary_markdown,
)
from flows.settings import Settings

__all__ = [
    "Published",
    "Run",
    "Window",
    "alerts_due",
    "coverage_table",
    "has_work",
    "mask_identifiers",
    "new_run_id",
    "pending_work",
    "published",
    "recorded",
    "report_url",
    "summary_markdown",
]

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def new_run_id() -> str:
    return uuid.uuid4().hex


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

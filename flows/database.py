"""The DuckDB file: connecting, the tables stages write, reference seeds, the writer lock.

Schemas, in the order data flows through them:
  raw      views over the extracts' Parquet parts, one per kind, every row tagged with its load
  ref      reference seeds, reloaded from `seeds/` on every run
  staging  views over raw: the current file of each kind x period (sql/staging)
  build    marts being computed; copied to `mart` only after their checks pass
  mart     published tables managers and the report read (sql/marts)
  ops      load log, rejects, check results, alerts, deliveries, runs
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from flows import migrations, parts, views
from flows.errors import ConfigError, DatabaseLocked
from flows.settings import Settings

log = logging.getLogger(__name__)

SCHEMAS = ("raw", "ref", "staging", "build", "mart", "ops")

# Tables written by code rather than by a SQL model. The extracts' rows are not among them: they
# live in Parquet parts, and `raw.<kind>` is a view over the registered ones (flows/parts.py, with
# columns generated from the extract kinds in flows/ingest/kinds.py).
TABLES = {
    "ops.load_log": """
        load_id integer primary key, file_name varchar not null, sha256 varchar not null,
        kind varchar, period varchar, rows_loaded bigint, rows_rejected bigint,
        status varchar not null, message varchar, loaded_at timestamptz not null,
        run_id varchar, part varchar, province_code varchar""",
    "ops.rejects": """
        load_id integer, file_name varchar not null, line bigint, column_name varchar,
        value varchar, reason varchar not null""",
    "ops.dq_results": """
        run_id varchar not null, suite varchar not null, expectation varchar not null,
        severity varchar not null, success boolean, observed varchar,
        details varchar, checked_at timestamptz not null""",
    "ops.alerts": """
        alert_key varchar primary key, rule varchar not null, level varchar not null,
        code varchar not null, severity varchar not null, state varchar not null,
        first_month date, last_month date, last_notified_at timestamptz,
        gap double, last_sent_state varchar, last_sent_severity varchar,
        last_sent_gap double, details json""",
    "ops.alert_events": """
        run_id varchar not null, alert_key varchar not null, month date, state varchar not null,
        severity varchar, gap double, "at" timestamptz not null""",
    "ops.deliveries": """
        alert_key varchar, recipient varchar not null, channel varchar not null,
        attempt integer not null, status varchar not null, detail varchar,
        "at" timestamptz not null, message_id varchar, run_id varchar""",
    # One message to one recipient; `message_id` is its Idempotency-Key. Pending
    # messages are delivered by the next run, delivered ones never again.
    "ops.outgoing": """
        message_id varchar primary key, run_id varchar not null, recipient varchar not null,
        channel varchar not null, scope_code varchar not null, language varchar not null,
        alert_keys varchar[] not null, payload json not null, status varchar not null,
        attempts integer not null, created_at timestamptz not null, delivered_at timestamptz""",
    # One file of the enforcement worklist written for the manpower office (flows/worklist.py): what, when,
    # its sha256, so both offices can tell which list they exchanged.
    "ops.worklist_exports": """
        export_id varchar primary key, exported_at timestamptz not null, month date not null,
        scope_code varchar not null, file_format varchar not null, file_name varchar not null,
        rows_exported bigint not null, sha256 varchar not null""",
    # What the participants suite checks, one pass per load (flows/participant_profile.py).
    "ops.participant_profile": """
        load_id integer not null, month date not null, region_code varchar, segment varchar,
        status varchar, participants bigint not null""",
    "ops.participant_repeats": """
        load_id integer not null, month date not null, key_column varchar not null,
        repeated_keys bigint not null""",
    # The release whose upgrade the file has had in full (`schema_version()`): a writer's open skips it then.
    "ops.schema_version": """
        version varchar not null, upgraded_at timestamptz not null""",
    "ops.runs": """
        run_id varchar primary key, command varchar, started_at timestamptz not null,
        finished_at timestamptz, status varchar, summary json""",
}

# Reference seeds: file name -> (table, explicit column types). Codes stay text.
SEEDS = {
    "regions.csv": (
        "ref.regions",
        {
            "region_code": "varchar",
            "region_name": "varchar",
            "kind": "varchar",
            "province_code": "varchar",
            "province_name": "varchar",
            "branch_office": "varchar",
        },
    ),
    "targets.csv": (
        "ref.targets",
        {
            "scope_code": "varchar",
            "target_pct": "double",
            "target_date": "date",
            "baseline_month": "varchar",
            "tolerance_pp": "double",
        },
    ),
    "uhc_rules.csv": (
        "ref.uhc_rules",
        {"effective_from": "date", "min_coverage_pct": "double", "min_active_rate_pct": "double"},
    ),
    "minimum_wages.csv": (
        "ref.minimum_wages",
        {"region_code": "varchar", "year": "integer", "monthly_minimum_wage": "decimal(14, 2)"},
    ),
    "alert_rules.csv": (
        "ref.alert_rules",
        {
            "rule": "varchar",
            "enabled": "boolean",
            "threshold": "double",
            "severity": "varchar",
            "worsened_step": "double",
            "description": "varchar",
        },
    ),
}


def connect(settings: Settings, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file with the configured memory limit and threads."""
    path = settings.db_path
    if read_only and not path.exists():
        raise ConfigError(f"no database at {path}: run `jkn run` or `jkn demo` first")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _opening:
        try:
            con = duckdb.connect(str(path), read_only=read_only, config=duckdb_config(settings))
        except duckdb.IOException as error:
            if "lock" in str(error).lower():
                raise DatabaseLocked(f"{path} is held by another process: {error}") from error
            raise
        # a per-connection option: no progress bars in a scheduled run's log (see checks.py)
        con.execute("set enable_progress_bar = false")
        con.execute("set variable jkn_parts_root = ?", [str(parts.parts_root(path.resolve()))])
        if not read_only:
            ensure_tables(con)
    return con


# Stages of one run that overlap (the flow's report beside its alerts) open the file from two threads: one
# at a time, so that the second finds the raw views the first made again instead of making them too (two
# `create or replace view` at once are a write-write conflict in DuckDB's catalog).
_opening = threading.RLock()  # reentrant: a connect inside an upgrade would not wait for itself


@contextmanager
def connected(settings: Settings, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """`connect`, closed when the block ends however it ends: each stage opens the file for itself."""
    con = connect(settings, read_only=read_only)
    try:
        yield con
    finally:
        con.close()


def duckdb_config(settings: Settings) -> dict[str, str | int]:
    """DuckDB options; every connection to the file in one process must use the same ones."""
    config: dict[str, str | int] = {"memory_limit": settings.memory_limit}
    if settings.threads:
        config["threads"] = settings.threads
    temp_dir = settings.home / "tmp"
    temp_dir.mkdir(parents=True, exist_ok=True)
    config["temp_directory"] = str(temp_dir)
    return config


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create what is missing, and bring a database written by an earlier release up to date.

    A writer opens the file several times a run, and the dozens of statements of the checks below cost
    0.1-0.3 s an open: once a database is this release's (`ops.schema_version` holds `schema_version()`,
    written after a complete upgrade), an open is two small queries, plus the raw views' own check."""
    if not _is_current(con):
        for schema in SCHEMAS:
            con.execute(f"create schema if not exists {schema}")
        for table, columns in TABLES.items():
            con.execute(f"create table if not exists {table} ({columns})")
        if migrations.upgrade(con):
            con.execute("delete from ops.schema_version")
            con.execute("insert into ops.schema_version values (?, ?)", [schema_version(), utc_now()])
    parts.refresh_views(con)


@functools.cache
def schema_version() -> str:
    """A digest of what this release stores and how it upgrades: the tables here, the migrations, the views."""
    digest = hashlib.sha256(json.dumps([SCHEMAS, TABLES], sort_keys=True).encode("utf-8"))
    digest.update(Path(migrations.__file__).read_bytes())
    for path in sorted(views.VIEWS_DIR.glob("*.sql")):
        digest.update(path.name.encode("utf-8") + path.read_bytes())
    return digest.hexdigest()


def _is_current(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether this release's upgrade is complete in the file, and every view of `report` is this
    release's (a view edited by hand or by another release is made again by the upgrade)."""
    has_version, is_published, labels = con.execute(
        "select (select count(*) from duckdb_tables() where database_name = current_database() "
        "and schema_name = 'ops' and table_name = 'schema_version'), "
        "(select count(*) from duckdb_tables() where database_name = current_database() "
        "and schema_name = 'mart' and table_name = 'coverage'), "
        "(select list(view_name || '=' || coalesce(comment, '') order by view_name) from duckdb_views() "
        "where database_name = current_database() and schema_name = 'report')"
    ).fetchone()
    if not has_version:
        return False  # a new file, or one of a release before the table
    stamped = con.execute("select max(version) from ops.schema_version").fetchone()[0]
    if stamped != schema_version():
        return False
    # Before the first publish there are no views (publish makes them); afterwards each must be this release's.
    return labels == _view_labels() if is_published else not labels


@functools.cache
def _view_labels() -> list[str]:
    return sorted(f"{path.stem}={views.label(path.stem)}" for path in views.VIEWS_DIR.glob("*.sql"))


def existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """`schema.name` of every table in the database `con` is connected to (a snapshot too)."""
    return {
        f"{schema}.{name}"
        for schema, name in con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = current_database()"
        ).fetchall()
    }


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str, kind: str | None = None) -> bool:
    """Whether `schema.name` exists (as a `BASE TABLE` or `VIEW` only, when `kind` says so)."""
    query = "select count(*) from information_schema.tables where table_schema = ? and table_name = ?"
    parameters = [schema, name]
    if kind:
        query += " and table_type = ?"
        parameters.append(kind)
    return con.execute(query, parameters).fetchone()[0] > 0


def load_seeds(con: duckdb.DuckDBPyConnection, seeds_dir: Path) -> None:
    """(Re)load the reference seeds into `ref.*`; a missing optional seed gives an empty table."""
    for file_name, (table, columns) in SEEDS.items():
        path = seeds_dir / file_name
        column_list = ", ".join(f"{name} {kind}" for name, kind in columns.items())
        if not path.exists():
            if file_name == "regions.csv":
                raise ConfigError(f"{path}: the regions seed is missing")
            con.execute(f"create or replace table {table} ({column_list})")
            continue
        types = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items()) + "}"
        try:
            con.execute(
                f"create or replace table {table} as select {', '.join(columns)} "
                f"from read_csv(?, header = true, columns = {types})",
                [str(path)],
            )
        except duckdb.Error as error:
            raise ConfigError(f"{path}: cannot read seed: {error}") from error


def utc_now() -> datetime:
    return datetime.now(UTC)


# Lock files this process holds, so a command that holds the lock can call code that takes it again.
_held_locks: dict[Path, int] = {}


def lock_path(settings: Settings) -> Path:
    return settings.db_path.with_suffix(settings.db_path.suffix + ".lock")


@contextmanager
def writer_lock(settings: Settings, purpose: str) -> Iterator[None]:
    """Hold the one-writer lock on the database for the duration of a command.

    DuckDB itself allows one writing process; this lock makes a second run wait
    (up to `lock_timeout` seconds) or fail with exit 4 naming who holds it
    (pid, host, purpose, since), instead of failing half-way with DuckDB's own
    lock error. It is an OS lock (flock) on `<database>.lock`: a process that
    dies, even by SIGKILL, releases it, so a crashed run never leaves it stuck.
    """
    path = lock_path(settings).resolve()
    if path in _held_locks:
        _held_locks[path] += 1
        try:
            yield
        finally:
            _held_locks[path] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    deadline = time.monotonic() + max(settings.lock_timeout, 0.0)
    told = False
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise DatabaseLocked(
                        f"another run holds the database {settings.db_path}: {_holder(handle)}; "
                        "wait for it, or set JKN_LOCK_TIMEOUT (seconds) to make the next run wait"
                    ) from None
                if not told:
                    log.warning(
                        "waiting up to %g s for the database %s, held by %s",
                        settings.lock_timeout,
                        settings.db_path,
                        _holder(handle),
                    )
                    told = True
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "purpose": purpose,
                    "since": utc_now().isoformat(timespec="seconds"),
                }
            )
        )
        handle.flush()
        _held_locks[path] = 1
        try:
            yield
        finally:
            del _held_locks[path]
            # Still holding the lock: clear the holder so nobody reads a finished run as the holder.
            handle.seek(0)
            handle.truncate()
            handle.flush()
    finally:
        handle.close()


def _holder(handle) -> str:
    """Who holds the lock, as its holder wrote it (it writes just after taking the lock)."""
    for _ in range(10):
        handle.seek(0)
        text = handle.read().strip()
        if text:
            break
        time.sleep(0.05)
    try:
        holder = json.loads(text)
    except ValueError:
        return "an unknown process"
    return f"pid {holder.get('pid')} on {holder.get('host')} ({holder.get('purpose')}), since {holder.get('since')}"

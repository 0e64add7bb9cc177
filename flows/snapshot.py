"""The published snapshot: what readers see, in a file of its own, so that no reader can hold up a run.

DuckDB lets one process write a database file, and a process that has it open (even read-only)
stops another from opening it for writing. So the writer never shares its file: after each
publish (and after alerts change `ops.alerts`) it copies what readers need (`mart.*`, `ops.*`,
`ref.*`) into a new DuckDB file beside the database, `<name>.published.duckdb`, and renames it
into place. A reader (`jkn status`, `jkn report`, `jkn alerts --dry-run`, a dashboard or
notebook) opens that file read-only and sees one whole published state: a rename is atomic, and
a reader that opened the previous file keeps reading it until it closes it.
`ops.snapshot` says when it was taken, and for which run and month.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from flows.errors import ConfigError
from flows.settings import Settings

SCHEMAS = ("mart", "ops", "ref")


def snapshot_path(db_path: Path) -> Path:
    return db_path.with_name(f"{db_path.stem}.published{db_path.suffix or '.duckdb'}")


def publish(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> Path:
    """Write the snapshot of what the writer's connection `con` holds now and swap it in."""
    db_path = Path(con.execute("select path from duckdb_databases() where database_name = current_database()")
                   .fetchone()[0])
    target = snapshot_path(db_path)
    written = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    written.unlink(missing_ok=True)
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables "
        f"where table_catalog = current_database() and table_schema in {SCHEMAS} and table_type = 'BASE TABLE' "
        "order by all"
    ).fetchall()
    quoted = str(written).replace("'", "''")
    con.execute(f"attach '{quoted}' as snapshot")
    try:
        for schema in SCHEMAS:
            con.execute(f"create schema snapshot.{schema}")
        for schema, name in tables:
            con.execute(f"create table snapshot.{schema}.{name} as select * from {schema}.{name}")
        month = (con.execute("select max(month) from mart.coverage").fetchone()[0]
                 if ("mart", "coverage") in tables else None)
        con.execute("create table snapshot.ops.snapshot as select now() as taken_at, ?::varchar as run_id, "
                    "?::date as latest_month", [run_id, month])
    finally:
        con.execute("detach snapshot")
    os.chmod(written, 0o600)
    os.replace(written, target)
    return target


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """Open the published snapshot read-only. Before the first publish of a database written by an
    earlier release there is none; then the database itself is read (read-only, as before)."""
    path = snapshot_path(settings.db_path)
    if path.exists():
        con = duckdb.connect(str(path), read_only=True)
        con.execute("set enable_progress_bar = false")
        return con
    if settings.db_path.exists():
        from flows import database

        return database.connect(settings, read_only=True)
    raise ConfigError(f"nothing is published yet at {path}: run `jkn run` or `jkn demo` first")

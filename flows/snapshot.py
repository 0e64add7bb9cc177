"""The published snapshot: what readers see, in a file of its own, so that no reader can hold up a run.

DuckDB lets one process write a database file, and a process that has it open (even read-only)
stops another from opening it for writing. So the writer never shares its file: after each
publish (and after alerts change `ops.alerts`) it copies what readers need (`mart.*`, `ops.*`,
`ref.*`, the views `report.*`) into a new DuckDB file beside the database, `<name>.published.duckdb`, and renames it
into place. A reader (`jkn status`, `jkn report`, `jkn alerts --dry-run`, a dashboard or
notebook) opens that file read-only and sees one whole published state: a rename is atomic, and
a reader that opened the previous file keeps reading it until it closes it.
`ops.snapshot` says when it was taken, and for which run and month.

The marts are most of the file (275,000 employer rows at national scale) and only a publish
changes them; the alerts stage changes `ops` alone. So each publish labels its mart tables with
a publication id (a table comment, which any other rewrite of the table clears), the snapshot
records the labels it copied, and `refresh` (after alerts) starts from a byte copy of the current
snapshot and rewrites only `ops` and `ref` when the labels still match: seconds saved per run.
A publish itself copies the checkpointed database file and drops the writer's own schemas (`raw`,
`staging`, `build`) from the copy; the space they held stays in the file as free blocks (marts-level
aggregates, never participant rows: those live in Parquet parts).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import duckdb

from flows.errors import ConfigError
from flows.settings import Settings

# `report` holds only views (sql/views/ over mart, ops and ref): the file copy carries them; a snapshot
# written table by table has none, and readers then read the views' own SQL (flows/views.py).
SCHEMAS = ("mart", "ops", "ref", "report")
# Schemas a run changes after its publish (alert states, deliveries, seeds reloaded by `jkn alerts`).
UNPUBLISHED_SCHEMAS = ("ops", "ref")
PUBLICATION = "jkn publication "
# A mart built into `mart` under this suffix is not published yet (flows/metrics.py, SWAPPED_MARTS): it is
# neither labelled nor copied into the snapshot.
BUILT_SUFFIX = "__built"
NOT_BUILT = f"not ends_with(table_name, '{BUILT_SUFFIX}')"


def snapshot_path(db_path: Path) -> Path:
    return db_path.with_name(f"{db_path.stem}.published{db_path.suffix or '.duckdb'}")


def label_marts(con: duckdb.DuckDBPyConnection) -> str:
    """Mark every mart table as written by one publication (inside the publish transaction)."""
    publication = PUBLICATION + uuid.uuid4().hex
    for (name,) in con.execute(
        "select table_name from duckdb_tables() where database_name = current_database() and schema_name = 'mart' "
        f"and {NOT_BUILT}"
    ).fetchall():
        con.execute(f"comment on table mart.{name} is '{publication}'")
    return publication


def _mart_labels(con: duckdb.DuckDBPyConnection, catalog: str) -> str:
    """The published marts' labels as one string: table -> comment (None for a table no publish labelled)."""
    rows = con.execute(
        "select table_name, comment from duckdb_tables() where database_name = ? "
        f"and schema_name = 'mart' and {NOT_BUILT} order by table_name",
        [catalog],
    ).fetchall()
    return json.dumps(rows)


def _database_path(con: duckdb.DuckDBPyConnection) -> Path:
    return Path(
        con.execute("select path from duckdb_databases() where database_name = current_database()").fetchone()[0]
    )


def _tables(con: duckdb.DuckDBPyConnection, schemas: tuple[str, ...]) -> list[tuple[str, str]]:
    return con.execute(
        "select table_schema, table_name from information_schema.tables "
        f"where table_catalog = current_database() and table_schema in {schemas} and table_type = 'BASE TABLE' "
        f"and (table_schema <> 'mart' or {NOT_BUILT}) order by all"
    ).fetchall()


def publish(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> Path:
    """Write the snapshot of what the writer's connection `con` holds now and swap it in.

    The database file itself is copied (after a checkpoint it is whole on disk) and what readers do not
    get is dropped from the copy: copying 275,000 employer rows table by table made DuckDB compress them
    again, ~5 s a run. Should the checkpoint be refused, the tables are copied one by one instead."""
    db_path = _database_path(con)
    target = snapshot_path(db_path)
    written = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    written.unlink(missing_ok=True)
    try:
        con.execute("checkpoint")
    except duckdb.Error:
        return _write(con, run_id, target, written, SCHEMAS, fresh=True)
    with open(os.open(written, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as copy, db_path.open("rb") as src:
        _copy_file(src, copy)
    return _write(con, run_id, target, written, (), fresh=False, keep=SCHEMAS)


def _copy_file(src, copy) -> None:
    """Copy the open file `src` into the new, empty file `copy`: in the kernel (`copy_file_range`: no
    pass through this process's memory, a third of the time for a 100 MB database), else through a buffer."""
    size = os.fstat(src.fileno()).st_size
    done = 0
    try:
        while done < size:
            copied = os.copy_file_range(src.fileno(), copy.fileno(), size - done)
            if not copied:
                break
            done += copied
    except (AttributeError, OSError):  # no such call here, or not between these files: copy the rest by hand
        pass
    if done < size:
        src.seek(done)
        copy.seek(done)
        shutil.copyfileobj(src, copy, 16 * 2**20)


def refresh(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> Path:
    """The snapshot after a stage that changed only `ops` and `ref` (alerts): the current snapshot's
    marts are kept as they are (a file copy) when they are still the published ones, and only `ops`
    and `ref` are written again. Otherwise (no snapshot yet, one from an earlier release, marts
    published since without a snapshot) the whole snapshot is written, as `publish` does."""
    target = snapshot_path(_database_path(con))
    labels = _mart_labels(con, con.execute("select current_database()").fetchone()[0])
    if not target.exists() or PUBLICATION not in labels:
        return publish(con, run_id)
    written = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    written.unlink(missing_ok=True)
    shutil.copyfile(target, written)  # a reader has it open read-only at most: the file is whole
    quoted = str(written).replace("'", "''")
    try:
        con.execute(f"attach '{quoted}' as snapshot")
        try:
            columns = {
                row[0]
                for row in con.execute(
                    "select column_name from duckdb_columns() where database_name = 'snapshot' "
                    "and schema_name = 'ops' and table_name = 'snapshot'"
                ).fetchall()
            }
            same = "marts" in columns and con.execute("select marts from snapshot.ops.snapshot").fetchone() == (labels,)
        finally:
            con.execute("detach snapshot")
    except duckdb.Error:
        same = False  # an unreadable snapshot is written again whole
    if not same:
        written.unlink(missing_ok=True)
        return publish(con, run_id)
    return _write(con, run_id, target, written, UNPUBLISHED_SCHEMAS, fresh=False)


def _write(
    con: duckdb.DuckDBPyConnection,
    run_id: str | None,
    target: Path,
    written: Path,
    schemas: tuple[str, ...],
    fresh: bool,
    keep: tuple[str, ...] = SCHEMAS,
) -> Path:
    """Copy the tables of `schemas` into the file `written` (new, or a copy of a database whose tables
    of those schemas are replaced; in a copy, schemas not in `keep` are dropped) and swap it in as `target`."""
    tables = _tables(con, schemas) if schemas else []
    quoted = str(written).replace("'", "''")
    con.execute(f"attach '{quoted}' as snapshot")
    try:
        if not fresh:
            for schema in schemas:
                con.execute(f"drop schema if exists snapshot.{schema} cascade")
            others = con.execute(
                "select schema_name from duckdb_schemas() where database_name = 'snapshot' and not internal "
                f"and schema_name not in {(*keep, 'main')}"
            ).fetchall()
            for (schema,) in others:  # raw and staging views, build tables: the writer's own
                con.execute(f"drop schema snapshot.{schema} cascade")
            built = con.execute(
                "select table_name from duckdb_tables() where database_name = 'snapshot' and schema_name = 'mart' "
                f"and not {NOT_BUILT}"
            ).fetchall()
            for (name,) in built:  # marts built and not published (yet)
                con.execute(f"drop table snapshot.mart.{name}")
            con.execute("drop table if exists snapshot.ops.snapshot")
        for schema in schemas:
            con.execute(f"create schema snapshot.{schema}")
        for schema in keep:
            con.execute(f"create schema if not exists snapshot.{schema}")
        for schema, name in tables:
            con.execute(f"create table snapshot.{schema}.{name} as select * from {schema}.{name}")
        has_coverage = con.execute(
            "select count(*) from duckdb_tables() where database_name = current_database() "
            "and schema_name = 'mart' and table_name = 'coverage'"
        ).fetchone()[0]
        month = con.execute("select max(month) from mart.coverage").fetchone()[0] if has_coverage else None
        labels = _mart_labels(con, con.execute("select current_database()").fetchone()[0])
        con.execute(
            "create table snapshot.ops.snapshot as select now() as taken_at, ?::varchar as run_id, "
            "?::date as latest_month, ?::varchar as marts",
            [run_id, month, labels],
        )
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

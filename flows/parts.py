"""Where the extracts' rows live: immutable Parquet parts beside the database, and the views over them.

Each accepted file becomes one part, `<database>.parts/<kind>/period=<period>/<sha256>.parquet`,
written once by ingest and never changed. The database holds no copy of the rows: `ops.load_log`
registers each part (column `part`, relative to the parts folder), and `raw.<kind>` is a view over
the registered parts of loads that are `staged` or `published`, with the load's id, file name
and period as columns. A part is read only once its `load_log` row has committed; a part
nobody registered (a crash between the write and the commit) or whose load was superseded by a
correction is removed by `remove_unregistered`, which the writer runs before each ingest and after
each publish.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import duckdb

from flows.ingest.kinds import KINDS, ExtractKind, raw_schema

log = logging.getLogger(__name__)

LIVE_STATUSES = ("staged", "published")
VIEW_LABEL = "jkn parts sha256:"


def parts_root(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".parts")


def root_of(con: duckdb.DuckDBPyConnection) -> Path:
    """The parts folder of the database `con` is connected to (set by `database.connect`)."""
    value = con.execute("select getvariable('jkn_parts_root')").fetchone()[0]
    if not value:
        raise RuntimeError("this connection does not know its parts folder: open it with flows.database.connect")
    return Path(value)


def _quote(text: str) -> str:
    return text.replace("'", "''")


def view_sql(kind: ExtractKind, root: Path, loads: list[tuple]) -> str:
    """`raw.<kind>`: one SELECT per registered part, typed as `raw_schema` says (a part written by
    an older release has the same columns under older types), the load's columns as constants."""
    schema = raw_schema(kind)
    if not loads:
        columns = ", ".join(f"null::{sql_type} as {name}" for name, sql_type in schema)
        return f"select {columns} where false"
    selects = []
    for load_id, file_name, period, part in loads:
        constants = {
            "load_id": str(int(load_id)),
            "file_name": f"'{_quote(file_name)}'",
            "period": f"'{_quote(period)}'",
        }
        columns = ", ".join(
            f"{constants[name]}::{sql_type} as {name}" if name in constants else f"{name}::{sql_type} as {name}"
            for name, sql_type in schema
        )
        path = _quote(str(root / part))
        selects.append(f"select {columns} from read_parquet('{path}', hive_partitioning = false)")
    return "\nunion all\n".join(selects)


def refresh_views(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create every `raw.<kind>` view over the parts registered now."""
    root = root_of(con)
    registered = con.execute(
        "select kind, load_id, file_name, period, part from ops.load_log "
        f"where status in {LIVE_STATUSES} and part is not null order by load_id"
    ).fetchall()
    missing = [(row[1], row[2], row[4]) for row in registered if not (root / row[4]).exists()]
    if missing:
        load_id, file_name, part = missing[0]
        raise RuntimeError(
            f"{len(missing)} registered part(s) are missing from {root}, first: {part} (load {load_id}, "
            f"{file_name}); the database and its parts folder belong together: restore the folder, or make "
            "the database forget those loads (delete their ops.load_log rows) and ingest the files again"
        )
    # Each view carries a digest of its SQL: a writer opens the file several times a run and the parts
    # rarely change between opens, so a view is made again only when its definition would differ.
    stored = dict(
        con.execute(
            "select view_name, comment from duckdb_views() where database_name = current_database() "
            "and schema_name = 'raw'"
        ).fetchall()
    )
    for kind in KINDS.values():
        loads = [row[1:] for row in registered if row[0] == kind.name]
        sql = view_sql(kind, root, loads)
        label = VIEW_LABEL + hashlib.sha256(sql.encode("utf-8")).hexdigest()
        if stored.get(kind.table.split(".")[1]) == label:
            continue
        con.execute(f"create or replace view {kind.table} as\n{sql}")
        con.execute(f"comment on view {kind.table} is '{label}'")


def remove_unregistered(con: duckdb.DuckDBPyConnection) -> list[Path]:
    """Delete every file under the parts folder that no live load registers (orphans of a crash,
    parts of superseded loads, temporary files). Only the writer calls it."""
    root = root_of(con)
    if not root.exists():
        return []
    keep = {
        root / part
        for (part,) in con.execute(
            f"select part from ops.load_log where status in {LIVE_STATUSES} and part is not null"
        ).fetchall()
    }
    removed = []
    for path in root.rglob("*"):
        if path.is_file() and path not in keep:
            path.unlink(missing_ok=True)
            removed.append(path)
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    if removed:
        log.info("removed %d file(s) no load registers under %s", len(removed), root)
    return removed

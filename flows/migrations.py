"""Bring a database written by an earlier release up to date, in place, the first time it is opened for writing.

Each step checks whether it is needed, so `upgrade` is cheap on a current database and safe to
run again after a crash half-way (a part written before the crash is written again; the tables
are dropped only in the transaction that registers the parts).

1. `ops.load_log.part` (releases up to 07fb6da had none).
2. Rows of extracts in `raw.<kind>` tables (releases up to 07fb6da): each live load's rows are
   written to its Parquet part, `person_key` from 64 hex digits to its 32 bytes, the part is
   registered, and the tables are dropped; `raw.<kind>` then becomes the view over the parts.
3. `ops.load_log.province_code` (releases up to 60d89e8 had none: every load covered the whole country).
4. `ops.participant_profile` and `ops.participant_repeats` (releases up to 60d89e8 had none):
   created empty with the other `ops` tables (`database.ensure_tables`); the first check profiles
   every live participants load, the published ones too, each once (flows/participant_profile.py).
5. Columns renamed for their unit or `is_` (releases up to 60d89e8): `unpaid_contributions` ->
   `unpaid_contributions_idr` (`*.compliance_by_region`), `wage_below_minimum` -> `is_wage_below_minimum`
   (`*.employer_compliance`, `*.enforcement_worklist`), in `build` and `mart`; the published snapshot is
   written again from the renamed marts, so readers never meet the old names next to new code.
6. The views of `sql/views/` (schema `report`, releases up to 71c4b6d had none; each publish makes them):
   created (or made again, where a view's label says it is an earlier file's) over the marts already
   published, and the snapshot written again, so readers have this release's views before the next publish.
   A view whose sources an older release's marts lack waits for that publish (readers read its SQL in its
   place meanwhile, flows/views.py).
7. `ops.schema_version` (releases up to 9fd0f10 had none): created empty with the other `ops` tables; after
   a complete upgrade (no view left waiting) it holds this release's digest (`database.schema_version()`), and
   a writer's open then skips every step here (a check of that row and of the `report` views' labels).
"""

from __future__ import annotations

import logging

import duckdb

from flows import parts
from flows.ingest.kinds import KINDS, part_columns
from flows.ingest.part import part_name

log = logging.getLogger(__name__)


def upgrade(con: duckdb.DuckDBPyConnection) -> bool:
    """Every step below, each only where needed; True when the database is this release's in full (no
    view left waiting for a publish), so `database.ensure_tables` may record it and skip this next time."""
    con.execute("alter table ops.load_log add column if not exists part varchar")
    con.execute("alter table ops.load_log add column if not exists province_code varchar")
    legacy = [kind for kind in KINDS.values() if _is_table(con, kind.table)]
    if legacy:
        _rows_to_parts(con, legacy)
    _rename_columns(con)
    return _create_views(con)


# (table without schema, old name, new name), in `build` and `mart`
RENAMED_COLUMNS = (
    ("compliance_by_region", "unpaid_contributions", "unpaid_contributions_idr"),
    ("employer_compliance", "wage_below_minimum", "is_wage_below_minimum"),
    ("enforcement_worklist", "wage_below_minimum", "is_wage_below_minimum"),
)


def _rename_columns(con: duckdb.DuckDBPyConnection) -> None:
    renames = [
        (f"{schema}.{table}", old, new)
        for schema in ("build", "mart")
        for table, old, new in RENAMED_COLUMNS
        if con.execute(
            "select count(*) from information_schema.columns where table_schema = ? and table_name = ? "
            "and column_name = ?",
            [schema, table, old],
        ).fetchone()[0]
    ]
    if not renames:
        return
    con.begin()
    try:
        for relation, old, new in renames:
            con.execute(f"alter table {relation} rename column {old} to {new}")
        con.commit()
    except BaseException:
        con.rollback()
        raise
    log.info(
        "renamed %d column(s) of an earlier release: %s",
        len(renames),
        ", ".join(f"{relation}.{old} -> {new}" for relation, old, new in renames),
    )
    if any(relation.startswith("mart.") for relation, _, _ in renames):
        from flows import snapshot

        snapshot.publish(con)


def _create_views(con: duckdb.DuckDBPyConnection) -> bool:
    if not _is_table(con, "mart.coverage"):
        return True  # nothing published yet: the first publish makes them
    from flows import metrics, snapshot, views

    stored = views.stored_labels(con)
    missing = [model for model in metrics.models(("views",)) if stored.get(model.name) != views.label(model.name)]
    if not missing:
        return True
    con.execute("create schema if not exists report")
    made = []
    waiting = False
    for model in missing:
        try:
            made.append(metrics.run_model(con, model))
        except RuntimeError as error:
            log.warning("view %s waits for the next publish: %s", model.relation, error)
            waiting = True
            continue
        con.execute(f"comment on view {model.relation} is '{views.label(model.name)}'")
    if made:
        log.info("created %d view(s) of this release over the published marts: %s", len(made), ", ".join(made))
        snapshot.publish(con)
    return not waiting


def _is_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    return (
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ? "
            "and table_type = 'BASE TABLE'",
            [schema, name],
        ).fetchone()[0]
        > 0
    )


def _rows_to_parts(con: duckdb.DuckDBPyConnection, kinds: list) -> None:
    root = parts.root_of(con)
    registered = []
    for kind in kinds:
        loads = con.execute(
            f"select load_id, sha256, period from ops.load_log where kind = ? and status in {parts.LIVE_STATUSES}",
            [kind.name],
        ).fetchall()
        columns = ["unhex(person_key) as person_key" if name == "person_key" else name for name in part_columns(kind)]
        for load_id, sha256, period in loads:
            name = part_name(kind.name, period, sha256)
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            written = target.with_name(f".{sha256}.migrated.parquet")
            con.execute(
                f"copy (select {', '.join(columns)} from {kind.table} where load_id = ?) "
                f"to '{str(written).replace(chr(39), chr(39) * 2)}' (format parquet, compression zstd)",
                [load_id],
            )
            written.replace(target)
            registered.append((name, load_id))
    con.begin()
    try:
        for name, load_id in registered:
            con.execute("update ops.load_log set part = ? where load_id = ?", [name, load_id])
        for kind in kinds:
            con.execute(f"drop table {kind.table}")
        con.execute("drop sequence if exists ops.load_id_seq")
        con.commit()
    except BaseException:
        con.rollback()
        raise
    log.warning(
        "upgraded the database: %d load(s) of %s moved from raw tables to Parquet parts in %s",
        len(registered),
        ", ".join(kind.name for kind in kinds),
        root,
    )

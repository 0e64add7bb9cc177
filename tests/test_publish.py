"""Publish makes the built employer marts the published ones by a rename, not a second write (flows/metrics.py)."""

from datetime import date

import duckdb

from flows import metrics, snapshot
from flows.backfill import build_window
from tests import rows

SWAPPED = metrics.SWAPPED_MARTS


def _month(con, month: str, workers: int) -> None:
    rows.population(con, "2022-S1", {"3325": 1000, "3326": 2000})
    rows.region_counts(con, month, {"3325": (800, 100), "3326": (1500, 300)})
    rows.employers(
        con,
        month,
        [
            ("E001", "9120000000001", "PT Satu", "3325", workers, workers * 1_000_000, 900_000, 450_000, 1),
            ("E002", None, "CV Dua", "3326", 2, 5_000_000, 250_000, 250_000, 0),
        ],
    )
    rows.workforce(
        con, month, [("9120000000001", "PT SATU", "3325", workers + 4), ("9120000000003", "UD TIGA", "3326", 7)]
    )


def _oid(con, schema: str, name: str) -> int | None:
    found = con.execute(
        "select table_oid from duckdb_tables() where database_name = current_database() "
        "and schema_name = ? and table_name = ?",
        [schema, name],
    ).fetchone()
    return found[0] if found else None


def _type(con, schema: str, name: str) -> str | None:
    found = con.execute(
        "select table_type from information_schema.tables where table_schema = ? and table_name = ?", [schema, name]
    ).fetchone()
    return found[0] if found else None


def _rows(con, relation: str) -> list[tuple]:
    return con.execute(f"select * from {relation} order by all").fetchall()


def _snapshot(settings, sql: str) -> list[tuple]:
    reader = duckdb.connect(str(snapshot.snapshot_path(settings.db_path)), read_only=True)
    try:
        return reader.execute(sql).fetchall()
    finally:
        reader.close()


def test_the_employer_marts_are_built_into_mart_and_published_by_a_rename(con, settings):
    _month(con, "2022-08", 3)
    rows.build(con)
    for name in SWAPPED:
        assert _type(con, "build", name) == "VIEW"
        assert _type(con, "mart", f"{name}__built") == "BASE TABLE"
        assert _rows(con, f"build.{name}") == _rows(con, metrics.built_table(name))
    built = {name: (_oid(con, "mart", f"{name}__built"), _rows(con, f"build.{name}")) for name in SWAPPED}
    assert all(rows_ for _, rows_ in built.values())

    metrics.publish(con)
    for name, (oid, built_rows) in built.items():
        assert _oid(con, "mart", name) == oid  # the built table itself, renamed: its rows are not written again
        assert _type(con, "mart", f"{name}__built") is None
        assert _type(con, "build", name) == "VIEW"
        assert _rows(con, f"mart.{name}") == _rows(con, f"build.{name}") == built_rows
        assert _snapshot(settings, f"select * from mart.{name} order by all") == built_rows
    # the other marts are copied as before
    assert _type(con, "build", "coverage") == _type(con, "mart", "coverage") == "BASE TABLE"
    assert _rows(con, "mart.coverage") == _rows(con, "build.coverage")

    # published again with nothing built since: the marts stay as they are
    metrics.publish(con)
    for name, (oid, built_rows) in built.items():
        assert _oid(con, "mart", name) == oid
        assert _rows(con, f"mart.{name}") == built_rows


def test_marts_built_and_not_published_stay_out_of_the_published_marts_and_the_snapshot(con, settings):
    _month(con, "2022-08", 3)
    rows.build(con)
    metrics.publish(con)
    published = {name: _rows(con, f"mart.{name}") for name in SWAPPED}
    labels = _snapshot(settings, "select marts from ops.snapshot")

    _month(con, "2022-09", 5)  # a new batch built, say, and stopped by the mart checks: not published
    rows.build(con)
    for name in SWAPPED:
        assert _rows(con, f"build.{name}") != published[name]
        assert _rows(con, f"mart.{name}") == published[name]
    snapshot.refresh(con, "run-after")  # the marts' labels are unchanged: ops and ref only
    assert _snapshot(settings, "select marts from ops.snapshot") == labels
    snapshot.publish(con, "run-whole")  # the whole file copied: the built tables are dropped from it
    in_snapshot = {
        row[0] for row in _snapshot(settings, "select table_name from duckdb_tables() where schema_name = 'mart'")
    }
    assert in_snapshot == set(metrics.mart_names())
    for name in SWAPPED:
        assert _snapshot(settings, f"select * from mart.{name} order by all") == published[name]

    metrics.publish(con)
    for name in SWAPPED:
        assert _rows(con, f"mart.{name}") == _rows(con, f"build.{name}") != published[name]


def test_a_database_whose_employer_marts_an_earlier_release_built_as_tables(con, settings):
    _month(con, "2022-08", 3)
    rows.build(con)
    expected = {name: _rows(con, f"build.{name}") for name in SWAPPED}
    # as an earlier release left it: build.<name> tables, published copies, no built tables in mart
    for name in SWAPPED:
        con.execute(f"create table main.{name} as select * from build.{name}")
        con.execute(f"drop view build.{name}")
        con.execute(f"drop table mart.{name}__built")
        con.execute(f"create table build.{name} as select * from main.{name}")
    metrics.publish(con)  # copies from the tables
    for name in SWAPPED:
        assert _rows(con, f"mart.{name}") == expected[name]
        assert _type(con, "build", name) == "BASE TABLE"
    rows.build(con)  # the tables give way to the views
    metrics.publish(con)
    for name in SWAPPED:
        assert _type(con, "build", name) == "VIEW"
        assert _rows(con, f"mart.{name}") == expected[name]


def test_a_backfill_replaces_its_months_in_the_built_tables_and_publishes_them_without_them(con, settings):
    _month(con, "2022-08", 3)
    _month(con, "2022-09", 5)
    rows.build(con)
    metrics.publish(con)
    published = {name: _rows(con, f"mart.{name}") for name in SWAPPED}
    september = date(2022, 9, 1)

    done = build_window(con, september, september)
    assert done == {"months": [september], "full": []}  # month by month: the built tables were current
    for name in SWAPPED:  # the published rows copied to the table built into, whose window was replaced
        assert _type(con, "mart", f"{name}__built") == "BASE TABLE"
        assert _rows(con, f"build.{name}") == _rows(con, metrics.built_table(name)) == published[name]
    metrics.publish_months(con, september, september)
    in_snapshot = {
        row[0] for row in _snapshot(settings, "select table_name from duckdb_tables() where schema_name = 'mart'")
    }
    assert in_snapshot == set(metrics.mart_names())
    for name in SWAPPED:
        assert _rows(con, f"mart.{name}") == published[name]
        assert _snapshot(settings, f"select * from mart.{name} order by all") == published[name]

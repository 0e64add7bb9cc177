"""The views of `sql/views/` (schema `report`): what the report, its charts, the worklist and the CLI read.

flows/metrics.py creates them with every publish, so they are in the published snapshot for any reader
(a dashboard too), and a caller only filters and orders (`where month = ?`). A database or snapshot
written before they existed (an earlier release's, not yet opened for writing; marts written by hand in
a test) has none: then the view's own SQL is read in its place, so every reader sees the same rows.
"""

from __future__ import annotations

import functools

import duckdb

from flows.settings import PROJECT_ROOT

VIEWS_DIR = PROJECT_ROOT / "sql" / "views"


@functools.cache
def _sql(name: str) -> str:
    return (VIEWS_DIR / f"{name}.sql").read_text(encoding="utf-8")


def relation(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """`report.<name>`, or, where the database `con` reads has no such view, the view's SQL as a subquery."""
    stored = con.execute(
        "select count(*) from duckdb_views() where database_name = current_database() "
        "and schema_name = 'report' and view_name = ?",
        [name],
    ).fetchone()[0]
    return f"report.{name}" if stored else f"(\n{_sql(name)}\n)"


def rows(con: duckdb.DuckDBPyConnection, sql: str, params=()) -> list[dict]:
    """The rows of a query as dicts, by column name."""
    cursor = con.execute(sql, params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

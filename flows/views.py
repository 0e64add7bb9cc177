"""The views of `sql/views/` (schema `report`): what the report, its charts, the worklist, the digests'
actions and the CLI read.

flows/metrics.py creates them with every publish, so they are in the published snapshot for any reader
(a dashboard too), and a caller only filters and orders (`where month = ?`). Each view is labelled with a
digest of its file. Where a database has no view of that label (written before the view existed or
changed, by a release whose snapshot no writer has opened since; marts written by hand in a test), the
view's own SQL is read in its place, so every reader sees what this release's file says.
"""

from __future__ import annotations

import functools
import hashlib
import re

import duckdb

from flows.settings import PROJECT_ROOT

VIEWS_DIR = PROJECT_ROOT / "sql" / "views"


@functools.cache
def _sql(name: str) -> str:
    return (VIEWS_DIR / f"{name}.sql").read_text(encoding="utf-8")


@functools.cache
def label(name: str) -> str:
    """The comment a view made from this release's file carries."""
    return "jkn view sha256:" + hashlib.sha256(_sql(name).encode("utf-8")).hexdigest()


def stored_labels(con: duckdb.DuckDBPyConnection) -> dict[str, str | None]:
    """view name -> its label, for the views in schema `report` of the database `con` reads."""
    return dict(
        con.execute(
            "select view_name, comment from duckdb_views() where database_name = current_database() "
            "and schema_name = 'report'"
        ).fetchall()
    )


def relation(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """`report.<name>`, or, where the database `con` reads has no such view of this release, its SQL."""
    stored = con.execute(
        "select comment from duckdb_views() where database_name = current_database() "
        "and schema_name = 'report' and view_name = ?",
        [name],
    ).fetchone()
    return f"report.{name}" if stored == (label(name),) else f"(\n{_sql(name)}\n)"


def over(schema: str, name: str) -> str:
    """The view's SQL reading the marts of `schema` instead of `mart` (`build`: the marts built, not yet
    published), as a subquery."""
    return "(\n" + re.sub(r"\bmart\.", f"{schema}.", _sql(name)) + "\n)"


def rows(con: duckdb.DuckDBPyConnection, sql: str, params=()) -> list[dict]:
    """The rows of a query as dicts, by column name."""
    cursor = con.execute(sql, params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

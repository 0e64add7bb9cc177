"""Regions missing from a month's batch (issue 14): published as "not reported this month", with their
last figures and the month those are of, never passed off as this month's.

`mart.region_reporting` (sql/marts/region_reporting.sql) holds one row per month x region that reported
before; sql/alerts/region_not_reported.sql is the alert rule that tells the region's recipients and `ops`
(a warning the first month, escalated to critical from `threshold` months in a row); this module reads
the rows that `jkn status` and the report show, from the view sql/views/not_reported.sql (the report's words
for them are in templates/report_words_<language>.j2).
"""

from __future__ import annotations

import duckdb

from flows import database, views

RULE = "region_not_reported"
MEASURE = "months_not_reported"
SOURCE = "mart.region_reporting"

# Its alert rule is sql/alerts/region_not_reported.sql; what status and the report show of each region missing
# from a month (its last figures and their month) is the view sql/views/not_reported.sql, and of the scopes that
# lack them sql/views/partial_scopes.sql.


def published(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the mart exists (a database published before issue 14 has no mart.region_reporting
    until its next run rebuilds the marts)."""
    return database.table_exists(con, *SOURCE.split("."))


def not_reported(con: duckdb.DuckDBPyConnection, month) -> list[dict]:
    """Regions that reported before but not in `month` (a date or 'YYYY-MM'), most months missing first."""
    if not published(con) or month is None:
        return []
    value = month[:7] if isinstance(month, str) else month.strftime("%Y-%m")
    return views.rows(
        con,
        f"select * from {views.relation(con, 'not_reported')} where month = $month "
        "order by months_not_reported desc, name",
        {"month": value},
    )


def partial_scopes(con: duckdb.DuckDBPyConnection, month) -> dict[tuple[str, str], int]:
    """(level, code) -> regions not reported in `month`, for the branch, province and national rows of
    mart.coverage that lack a region (empty for a mart published before it had the column)."""
    columns = {
        row[0]
        for row in con.execute(
            "select column_name from information_schema.columns where table_schema = 'mart' and table_name = 'coverage'"
        ).fetchall()
    }
    if "regions_not_reported" not in columns or month is None:
        return {}
    return {
        (level, code): count
        for level, code, count in con.execute(
            f"select level, code, regions_not_reported from {views.relation(con, 'partial_scopes')} where month = ?",
            [month],
        ).fetchall()
    }


def status_note(missing: int) -> str:
    """`jkn status`'s note on a scope's row that lacks regions."""
    return f"partial: {missing} region{'' if missing == 1 else 's'} not reported"


def region_note(row: dict) -> str:
    """`jkn status`'s note on a region missing this month: its figures are of another month."""
    months = row["months_not_reported"]
    return f"not reported this month, last figures from {row['reported_month']}" + (
        f" ({months} months in a row)" if months >= 2 else ""
    )


def annotate_scopes(con: duckdb.DuckDBPyConnection, month, scopes: list[dict]) -> None:
    """Add `regions_not_reported` to the report's branch, province and national rows."""
    partial = partial_scopes(con, month)
    for row in scopes:
        row["regions_not_reported"] = partial.get((row["level"], row["code"]), 0)

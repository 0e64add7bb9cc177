"""Regions missing from a month's batch (issue 14): published as "not reported this month", with their
last figures and the month those are of, never passed off as this month's.

`mart.region_reporting` (sql/marts/region_reporting.sql) holds one row per month x region that reported
before; sql/alerts/region_not_reported.sql is the alert rule that tells the region's recipients and `ops`
(a warning the first month, escalated to critical from `threshold` months in a row); this module holds
the rows that `jkn status` and the report show (the report's words for them are in
templates/report_words_<language>.j2).
"""

from __future__ import annotations

import duckdb

RULE = "region_not_reported"
MEASURE = "months_not_reported"
SOURCE = "mart.region_reporting"

# Its alert rule is sql/alerts/region_not_reported.sql.

# What status and the report show of each region missing from `month`: its last figures and their month.
NOT_REPORTED = """
select
    code,
    name,
    province_code,
    branch_office,
    strftime(month, '%Y-%m') as month,
    strftime(reported_month, '%Y-%m') as reported_month,
    months_not_reported,
    -- as the alert rule judges it: escalated from its threshold of months in a row
    months_not_reported >= coalesce(
        (select any_value(threshold) from ref.alert_rules where rule = 'region_not_reported'), 2
    ) as is_escalated,
    population,
    participants,
    coverage_pct,
    active_rate_pct,
    expected_pct,
    gap_pp,
    trajectory_status
from mart.region_reporting
where month = $month and not is_reported
order by months_not_reported desc, name
"""


def published(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the mart exists (a database published before issue 14 has no mart.region_reporting
    until its next run rebuilds the marts)."""
    schema, table = SOURCE.split(".")
    return (
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]
        > 0
    )


def not_reported(con: duckdb.DuckDBPyConnection, month) -> list[dict]:
    """Regions that reported before but not in `month` (a date or 'YYYY-MM'), most months missing first."""
    if not published(con) or month is None:
        return []
    value = month if not isinstance(month, str) else f"{month[:7]}-01"
    cursor = con.execute(NOT_REPORTED, {"month": value})
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


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
            "select level, code, regions_not_reported from mart.coverage where month = ? and is_partial", [month]
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

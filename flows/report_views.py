"""The parts of the report that follow its filter and put action first: this month's actions, headline
cards per scope, the worklist in groups with its exported files, and the forecast with its range.

`flows/report.py` reads the marts and renders the page; this module adds what those parts need to its data
(`collect`), so the page can show, for whichever province, branch or region the reader picks, the same cards,
tables, charts and worklist the nation gets. Their words are in templates/report_words_<language>.j2, with
the rest of the report's.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from flows import actions, labels, views, worklist

# Rows of a worklist group shown at once; the rest of the group is folded, and past the cap it is in the file.
WORKLIST_ROWS_OPEN = 5
WORKLIST_ROWS_PER_GROUP = 25
# Groups open for the current filter; the rest are folded (the reader opens them).
WORKLIST_GROUPS_OPEN = 2

# The forecast's range of each scope in the month: the view sql/views/forecasts.sql.
FORECAST_ROWS = (
    "select code, level, projected_earliest_month, projected_latest_month, forecast_horizon_month "
    "from {relation} where month = $month"
)


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The columns of `schema.table` in the database `con` reads, in order (the marts' columns may differ
    between releases: the report shows what is there)."""
    schema, name = table.split(".")
    return [
        row[0]
        for row in con.execute(
            "select column_name from duckdb_columns() where database_name = current_database() "
            "and schema_name = ? and table_name = ? order by column_index",
            [schema, name],
        ).fetchall()
    ]


def collect(con: duckdb.DuckDBPyConnection, data: dict, report_dir: Path | None = None) -> dict:
    """What these parts need, added to the report's `data` (which already holds scopes, regions and marts)."""
    extra: dict = {"actions": [], "worklist_groups": [], "worklist_exports": [], "forecasts": {}}
    if data.get("month") is None:
        return extra
    extra["actions"] = actions.candidates(con, "ID", data["month"])
    if {"projected_earliest_month", "projected_latest_month"} <= set(table_columns(con, "mart.trajectory")):
        extra["forecasts"] = {
            f"{level}:{code}": {"early": early, "late": late, "horizon": horizon}
            for code, level, early, late, horizon in con.execute(
                FORECAST_ROWS.format(relation=views.relation(con, "forecasts")), {"month": data["month"]}
            ).fetchall()
        }
    if data.get("worklist_month") is not None:
        # Only the rows a group shows; its count says how many more the export holds.
        shown = worklist.rows(
            con,
            "ID",
            data["worklist_month"],
            per_group=WORKLIST_ROWS_PER_GROUP,
            columns=tuple(data.get("worklist_columns") or ()),
        )
        extra["worklist_groups"] = worklist.groups(shown)
        if report_dir is not None:
            extra["worklist_exports"] = [
                item
                for item in worklist.latest_exports(con, report_dir, "ID")
                if item["month"] == data["worklist_month"]
            ]
    return extra


def scope_cards(data: dict) -> list[dict]:
    """One set of headline cards per scope the filter can pick: the nation, each province, branch, region."""
    cards = []
    if data.get("national"):
        cards.append({**data["national"], "scope": "national:ID"})
    for row in (data.get("provinces") or []) + (data.get("branches") or []):
        cards.append({**row, "scope": f"{row['level']}:{row['code']}"})
    for row in data.get("regions") or []:
        cards.append({**row, "level": "region", "scope": f"region:{row['code']}"})
    return cards


def segment_name(code: str, locale: str) -> str:
    return labels.name(labels.SEGMENT_NAMES, code, locale)


def level_name(level: str, locale: str) -> str:
    return labels.name(labels.LEVEL_NAMES, level, locale)


def step_name(code: str, locale: str) -> str:
    return labels.name(labels.STEP_NAMES, code, locale)


def sentence(action: actions.Action, locale: str) -> str:
    return actions.sentence(action, locale)

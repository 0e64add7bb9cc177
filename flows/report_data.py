"""What the report shows, read from the views of sql/views/ (`report.*`, over the published marts, ops.* and
ref.*): `collect` returns it language-neutral, and flows/report.py renders it in each language."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from flows import charts, codes, database, missing_regions, report_views, views
from flows.errors import ConfigError

SEGMENTS = codes.SEGMENTS  # seeds/segments.csv
# Enough for a manager to act on; the whole list stays in mart.enforcement_worklist.
WORKLIST_ROWS_PER_REGION = 10

# The columns shown, in this order, of those the compliance marts have (CONTRACT.md section 3);
# the metrics model owns the tables, so a column it drops is simply not shown.
COMPLIANCE_COLUMNS = (
    "employers_reported",
    "employers_registered",
    "employers_not_registered",
    "workers_reported",
    "workers_registered",
    "unregistered_workers",
    "worker_registration_pct",
    "underreporting_employers",
    "arrears_employers",
    "unpaid_contributions_idr",
    "payment_ratio_pct",
    "estimated_contributions_lost_idr",
)
WORKLIST_COLUMNS = (
    "priority",
    "name",
    "business_id",
    "unregistered_workers",
    "unpaid_contributions_idr",
    "estimated_contributions_lost_idr",
    "months_non_compliant",
    "reasons",
    "next_sanction_step",
)


def _worklist(con: duckdb.DuckDBPyConnection, columns: list[str]) -> tuple[list[str], list[dict], date | None]:
    """The latest month's worklist: the first rows of each region, in the model's own priority order
    (`priority` numbers each month's employers of a region from 1)."""
    if not {"month", "region_code", "priority"} <= set(columns):
        return [], [], None
    month = con.execute("select max(month) from mart.enforcement_worklist").fetchone()[0]
    rows = views.rows(
        con,
        "select *, province_code as provinces, branch_office as branch, region_name as scope_name "
        f"from {views.relation(con, 'worklist')} where month = $month and priority <= $limit "
        "order by region_code, priority",
        {"month": month, "limit": WORKLIST_ROWS_PER_REGION},
    )
    return [name for name in WORKLIST_COLUMNS if name in columns], rows, rows[0]["month"] if rows else None


def collect(con: duckdb.DuckDBPyConnection, month: date | None = None, report_dir: Path | None = None) -> dict:
    """Everything the report shows, language-neutral, read from mart.*, ops.* and ref.* (worklist files
    already exported into `report_dir` are linked)."""
    tables = database.existing_tables(con)
    data: dict = {"month": None, "generated_at": datetime.now(UTC)}
    have_marts = {"mart.coverage", "mart.trajectory"} <= tables
    if month is not None and not (
        have_marts and con.execute("select count(*) from mart.coverage where month = ?", [month]).fetchone()[0]
    ):
        raise ConfigError(f"no published coverage for {month:%Y-%m}")
    if have_marts:
        data["month"] = month or con.execute("select max(month) from mart.coverage").fetchone()[0]
    if data["month"] is not None:
        params = {"month": data["month"]}
        scope_rows = views.relation(con, "scopes")
        scopes = views.rows(
            con, f"select * from {scope_rows} where month = $month and level <> 'region' order by level, code", params
        )
        data["national"] = next((row for row in scopes if row["level"] == "national"), None)
        data["provinces"] = [row for row in scopes if row["level"] == "province"]
        data["branches"] = [row for row in scopes if row["level"] == "branch"]
        data["regions"] = views.rows(
            con,
            f"select * from {scope_rows} where month = $month and level = 'region' "
            "order by gap_pp desc nulls last, code",
            params,
        )
        missing_regions.annotate_scopes(con, data["month"], scopes)
        data["not_reported"] = missing_regions.not_reported(con, data["month"])
        data["trajectories"] = {
            f"{level}:{code}": {"series": value["series"], "target": value["target"]}
            for level in ("national", "province", "branch", "region")
            for code, value in charts.trajectory_datasets(con, level, data["month"]).items()
        }
        data["segments"] = (
            views.rows(
                con,
                f"select * exclude (month) from {views.relation(con, 'segments')} where month = $month "
                "order by level, code, array_position($segments, segment), segment",
                {**params, "segments": list(SEGMENTS)},
            )
            if "mart.coverage_by_segment" in tables
            else []
        )
    data["compliance"], data["compliance_columns"], data["compliance_month"] = [], [], None
    if "mart.compliance_by_region" in tables:
        data["compliance"] = views.rows(
            con,
            f"select * exclude (level_rank) from {views.relation(con, 'compliance')} "
            "where month = $month order by level_rank, code",
            {"month": con.execute("select max(month) from mart.compliance_by_region").fetchone()[0]},
        )
        present = set(report_views.table_columns(con, "mart.compliance_by_region"))
        data["compliance_columns"] = [name for name in COMPLIANCE_COLUMNS if name in present]
        data["compliance_month"] = data["compliance"][0]["month"] if data["compliance"] else None
    data["worklist_columns"], data["worklist"], data["worklist_month"] = [], [], None
    if "mart.enforcement_worklist" in tables:
        data["worklist_columns"], data["worklist"], data["worklist_month"] = _worklist(
            con, report_views.table_columns(con, "mart.enforcement_worklist")
        )
    data["dq"] = views.rows(
        con,
        f"select * from {views.relation(con, 'data_quality')} order by success, severity, suite, expectation",
    )
    data["loads"] = views.rows(
        con,
        f"select * from {views.relation(con, 'loads')} order by status <> 'published', loaded_at desc, file_name",
    )
    data.update(report_views.collect(con, data, report_dir))
    return data

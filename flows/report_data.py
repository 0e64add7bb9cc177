"""What the report shows, read from the published marts (mart.*), ops.* and ref.*: `collect` returns it
language-neutral, and flows/report.py renders it in each language."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from flows import charts, codes, database, missing_regions, report_views
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


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params=()) -> list[dict]:
    cursor = con.execute(sql, params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    schema, name = table.split(".")
    return [
        row[0]
        for row in con.execute(
            "select column_name from duckdb_columns() where database_name = current_database() "
            "and schema_name = ? and table_name = ? order by column_index",
            [schema, name],
        ).fetchall()
    ]


SCOPES_SQL = """
with regions as (
    select region_code, province_code, nullif(branch_office, '') as branch_office from ref.regions
),
uhc as (
    select
        grouping(regions.province_code) as no_province,
        grouping(regions.branch_office) as no_branch,
        regions.province_code,
        regions.branch_office,
        count(*) as regions,
        count(*) filter (where coverage.is_uhc) as uhc_regions
    from mart.coverage as coverage
    inner join regions on coverage.code = regions.region_code
    where coverage.month = $month and coverage.level = 'region'
    group by grouping sets ((regions.province_code), (regions.branch_office), ())
),
branch_provinces as (
    select branch_office, string_agg(distinct province_code, ' ' order by province_code) as provinces
    from regions where branch_office is not null group by branch_office
)
select
    coverage.level,
    coverage.code,
    coverage.name,
    case coverage.level
        when 'province' then coverage.code
        when 'branch' then branch_provinces.provinces
    end as provinces,
    coverage.population,
    coverage.participants,
    coverage.active_participants,
    coverage.coverage_pct,
    coverage.active_rate_pct,
    coverage.is_uhc,
    uhc.regions,
    uhc.uhc_regions,
    trajectory.expected_pct,
    trajectory.gap_pp,
    trajectory.target_pct,
    trajectory.target_date,
    trajectory.projected_target_month,
    trajectory.status
from mart.coverage as coverage
left join mart.trajectory as trajectory
    on coverage.month = trajectory.month and coverage.level = trajectory.level and coverage.code = trajectory.code
left join branch_provinces on coverage.level = 'branch' and coverage.code = branch_provinces.branch_office
left join uhc
    on (coverage.level = 'national' and uhc.no_province = 1 and uhc.no_branch = 1)
    or (coverage.level = 'province' and uhc.no_province = 0 and uhc.province_code = coverage.code)
    or (coverage.level = 'branch' and uhc.no_branch = 0 and uhc.branch_office = coverage.code)
where coverage.month = $month and coverage.level <> 'region'
order by coverage.level, coverage.code
"""

REGIONS_SQL = """
select
    coverage.code,
    coverage.name,
    regions.province_code,
    regions.province_name,
    nullif(regions.branch_office, '') as branch_office,
    coverage.population,
    coverage.participants,
    coverage.active_participants,
    coverage.coverage_pct,
    coverage.active_rate_pct,
    coverage.is_uhc,
    trajectory.expected_pct,
    trajectory.gap_pp,
    trajectory.people_needed,
    trajectory.target_pct,
    trajectory.target_date,
    trajectory.projected_target_month,
    trajectory.status
from mart.coverage as coverage
left join mart.trajectory as trajectory
    on coverage.month = trajectory.month and coverage.level = trajectory.level and coverage.code = trajectory.code
left join ref.regions as regions on coverage.code = regions.region_code
where coverage.month = $month and coverage.level = 'region'
order by trajectory.gap_pp desc nulls last, coverage.code
"""

SEGMENTS_SQL = """
select level, code, segment, participants, active_participants, share_pct
from mart.coverage_by_segment
where month = $month
order by level, code, array_position($segments, segment), segment
"""

# Level rows carry the province(s) and branch they belong to, so one filter serves every table.
COMPLIANCE_SQL = """
with regions as (
    select region_code, province_code, nullif(branch_office, '') as branch_office from ref.regions
),
branch_provinces as (
    select branch_office, string_agg(distinct province_code, ' ' order by province_code) as provinces
    from regions where branch_office is not null group by branch_office
)
select
    compliance.*,
    coalesce(names.name, compliance.code) as scope_name,
    case compliance.level
        when 'region' then regions.province_code
        when 'province' then compliance.code
        when 'branch' then branch_provinces.provinces
    end as provinces,
    case compliance.level
        when 'region' then regions.branch_office
        when 'branch' then compliance.code
    end as branch
from mart.compliance_by_region as compliance
left join regions on compliance.level = 'region' and compliance.code = regions.region_code
left join branch_provinces on compliance.level = 'branch' and compliance.code = branch_provinces.branch_office
left join (select distinct level, code, name from mart.coverage) as names
    on compliance.level = names.level and compliance.code = names.code
where compliance.month = (select max(month) from mart.compliance_by_region)
order by
    array_position(['national', 'province', 'branch', 'region'], compliance.level),
    compliance.code
"""


def _worklist(con: duckdb.DuckDBPyConnection, columns: list[str]) -> tuple[list[str], list[dict], date | None]:
    """The latest month's worklist: the first rows of each region, in the model's own priority order."""
    if "month" not in columns or "region_code" not in columns:
        return [], [], None
    order = "priority" if "priority" in columns else "region_code"
    rows = _rows(
        con,
        f"""
        select worklist.*, regions.province_code as provinces, nullif(regions.branch_office, '') as branch,
            regions.region_name as scope_name
        from mart.enforcement_worklist as worklist
        left join ref.regions as regions on worklist.region_code = regions.region_code
        where worklist.month = (select max(month) from mart.enforcement_worklist)
        qualify row_number() over (partition by worklist.region_code order by worklist.{order}) <= $limit
        order by worklist.region_code, worklist.{order}
        """,
        {"limit": WORKLIST_ROWS_PER_REGION},
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
        scopes = _rows(con, SCOPES_SQL, params)
        data["national"] = next((row for row in scopes if row["level"] == "national"), None)
        data["provinces"] = [row for row in scopes if row["level"] == "province"]
        data["branches"] = [row for row in scopes if row["level"] == "branch"]
        data["regions"] = _rows(con, REGIONS_SQL, params)
        missing_regions.annotate_scopes(con, data["month"], scopes)
        data["not_reported"] = missing_regions.not_reported(con, data["month"])
        data["trajectories"] = {
            f"{level}:{code}": {"series": value["series"], "target": value["target"]}
            for level in ("national", "province", "branch", "region")
            for code, value in charts.trajectory_datasets(con, level, data["month"]).items()
        }
        data["segments"] = (
            _rows(con, SEGMENTS_SQL, {**params, "segments": list(SEGMENTS)})
            if "mart.coverage_by_segment" in tables
            else []
        )
    data["compliance"], data["compliance_columns"], data["compliance_month"] = [], [], None
    if "mart.compliance_by_region" in tables:
        data["compliance"] = _rows(con, COMPLIANCE_SQL)
        present = set(_columns(con, "mart.compliance_by_region"))
        data["compliance_columns"] = [name for name in COMPLIANCE_COLUMNS if name in present]
        data["compliance_month"] = data["compliance"][0]["month"] if data["compliance"] else None
    data["worklist_columns"], data["worklist"], data["worklist_month"] = [], [], None
    if "mart.enforcement_worklist" in tables:
        data["worklist_columns"], data["worklist"], data["worklist_month"] = _worklist(
            con, _columns(con, "mart.enforcement_worklist")
        )
    data["dq"] = _rows(
        con,
        """
        -- the run that published the marts shown (a `jkn check` of staged files since is not it);
        -- marts published by `jkn metrics` alone have no ops.runs row: then the newest checks
        with latest as (select run_id, max(checked_at) as checked_at from ops.dq_results
                        group by run_id
                        order by run_id in (select run_id from ops.runs where status = 'completed') desc,
                                 checked_at desc
                        limit 1)
        select results.run_id, latest.checked_at, results.suite, results.expectation, results.severity,
            results.success, results.observed
        from ops.dq_results as results
        inner join latest on results.run_id = latest.run_id
        order by results.success, results.severity, results.suite, results.expectation
        """,
    )
    data["loads"] = _rows(
        con,
        """
        select file_name, kind, period, rows_loaded, rows_rejected, status, message, loaded_at
        from ops.load_log
        order by status <> 'published', loaded_at desc, file_name
        """,
    )
    data.update(report_views.collect(con, data, report_dir))
    return data

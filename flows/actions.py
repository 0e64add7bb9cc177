""" "This month": the few actions that matter for a scope, ranked, for the top of the report and every digest.

Three kinds, in this order, each ranked within itself:

1. `checks`: the latest data-quality run had failures (the figures below may be off), once;
2. `region`: regions behind their trajectory (status CRITICAL, BEHIND or AT_RISK), the gap that grew most
   since the previous month first; each says how many new participants a month reach the target in time;
3. `employer`: employers of the enforcement worklist, the sanction step furthest along first, then most
   unregistered workers, then most unpaid contributions; each says its next step.

Reads only `mart.*`, `ops.dq_results` and `ref.regions`. Words are Jinja2 macros per language
(`templates/this_month_<language>.j2`); each action also names the report anchor that holds its detail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache

import duckdb
from jinja2 import Environment, PackageLoader, StrictUndefined

from flows import database, formats, labels

REGIONS_PER_SCOPE = 3
EMPLOYERS_PER_SCOPE = 3

# Regions behind, with how their gap moved since their previous month. `$scope` as in flows.worklist.
REGION_SQL = """
with months as (
    select
        trajectory.*,
        trajectory.gap_pp - lag(trajectory.gap_pp) over (partition by trajectory.code order by trajectory.month)
            as gap_change_pp
    from mart.trajectory as trajectory
    where trajectory.level = 'region'
)
select
    months.code,
    months.name,
    regions.province_code,
    nullif(regions.branch_office, '') as branch_office,
    months.status,
    months.gap_pp,
    months.gap_change_pp,
    months.people_needed,
    months.monthly_pace_needed,
    months.recent_pace,
    months.target_pct,
    months.target_date,
    months.projected_target_month
from months
left join ref.regions as regions on months.code = regions.region_code
where months.month = coalesce($month, (select max(month) from mart.trajectory where level = 'region'))
    and months.status in ('CRITICAL', 'BEHIND', 'AT_RISK')
    and ($scope = 'ID' or $scope in (regions.province_code, regions.branch_office, months.code))
order by months.gap_change_pp desc nulls last, months.gap_pp desc, months.code
"""

# The first few employers of each region (the report filters them; a digest takes the scope's first).
EMPLOYER_SQL = """
select
    worklist.region_code,
    worklist.region_name,
    regions.province_code,
    nullif(regions.branch_office, '') as branch_office,
    worklist.name,
    worklist.business_id,
    worklist.unregistered_workers,
    worklist.unpaid_contributions_idr,
    worklist.months_non_compliant,
    worklist.next_sanction_step,
    worklist.reasons
from mart.enforcement_worklist as worklist
left join ref.regions as regions on worklist.region_code = regions.region_code
where worklist.month = (select max(month) from mart.enforcement_worklist)
    and ($scope = 'ID' or $scope in (regions.province_code, regions.branch_office, worklist.region_code))
qualify row_number() over (partition by worklist.region_code order by worklist.priority) <= $per_region
order by
    list_position($steps, worklist.next_sanction_step),
    worklist.unregistered_workers desc,
    worklist.unpaid_contributions_idr desc,
    worklist.region_code,
    worklist.priority
"""

CHECKS_SQL = """
with latest as (
    select run_id from ops.dq_results group by run_id order by max(checked_at) desc limit 1
)
select
    count(*) filter (where not results.success) as failed,
    count(*) filter (where not results.success and results.severity = 'critical') as critical,
    count(*) as checked
from ops.dq_results as results
inner join latest on results.run_id = latest.run_id
"""


@dataclass
class Action:
    kind: str  # checks | region | employer
    anchor: str  # the report element that holds its detail
    row: dict
    province_code: str | None = None
    branch_office: str | None = None
    region_code: str | None = None
    name: str = ""  # the region's name, for the report's name search


def _dicts(cursor) -> list[dict]:
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def candidates(
    con: duckdb.DuckDBPyConnection, scope: str = "ID", month: date | None = None, per_region: int = 3
) -> list[Action]:
    """Every action of the scope, each kind ranked. The report takes the first few visible under its filter;
    `for_scope` takes the first few outright."""
    tables = database.existing_tables(con)
    actions: list[Action] = []
    if "ops.dq_results" in tables:
        failed, critical, checked = con.execute(CHECKS_SQL).fetchone()
        if failed:
            actions.append(
                Action("checks", "data-quality", {"failed": failed, "critical": critical, "checked": checked})
            )
    if "mart.trajectory" in tables:
        for row in _dicts(con.execute(REGION_SQL, {"scope": scope, "month": month})):
            actions.append(
                Action(
                    "region",
                    f"chart-{row['code']}",
                    row,
                    row["province_code"],
                    row["branch_office"],
                    row["code"],
                    row["name"],
                )
            )
    if "mart.enforcement_worklist" in tables:
        cursor = con.execute(
            EMPLOYER_SQL, {"scope": scope, "per_region": per_region, "steps": list(labels.SANCTION_STEPS)}
        )
        for row in _dicts(cursor):
            actions.append(
                Action(
                    "employer",
                    f"wl-{row['next_sanction_step']}-{row['region_code']}",
                    row,
                    row["province_code"],
                    row["branch_office"],
                    row["region_code"],
                    row["region_name"] or "",
                )
            )
    return actions


def for_scope(
    con: duckdb.DuckDBPyConnection, scope: str = "ID", month: date | None = None, include_checks: bool = True
) -> list[Action]:
    """The scope's actions: failed checks (if asked), its first regions, its first employers."""
    limits = {"checks": 1 if include_checks else 0, "region": REGIONS_PER_SCOPE, "employer": EMPLOYERS_PER_SCOPE}
    taken = dict.fromkeys(limits, 0)
    out = []
    for action in candidates(con, scope, month):
        if taken[action.kind] < limits[action.kind]:
            taken[action.kind] += 1
            out.append(action)
    return out


# ---------------------------------------------------------------- words


@cache
def _words(language: str):
    env = Environment(
        loader=PackageLoader("flows", "templates"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # plain text; the report and the email escape it where it goes
    )
    env.filters.update(
        num=lambda value, decimals=0: formats.number(value, language, decimals),
        # a change of gap is said in words ("up", "down"), so its size is shown without a sign
        pp=lambda value: formats.number(None if value is None else abs(value), language, 2),
        idr=lambda value: formats.rupiah(value, language),
        month_name=lambda value: formats.month_name(value, language),
        step=lambda code: labels.name(labels.STEP_NAMES, code, language),
        reasons=lambda text: labels.reasons(text, language),
    )
    return env.get_template(f"this_month_{language}.j2").module


def title(language: str) -> str:
    return str(_words(language).title()).strip()


def sentence(action: Action, language: str) -> str:
    """One action as a sentence a branch head reads in a few seconds."""
    words = _words(language)
    macro = {"checks": words.checks, "region": words.region, "employer": words.employer}[action.kind]
    return " ".join(str(macro(action.row)).split())


def nothing(language: str) -> str:
    return str(_words(language).nothing()).strip()


def phrase(macro: str, language: str, *args) -> str:
    """Another phrase of the same templates (`report_link`, `more_in_csv`, ...), as one line."""
    return " ".join(str(getattr(_words(language), macro)(*args)).split())


def templates(language: str):
    """The language's template module itself, for the email templates that show these phrases."""
    return _words(language)

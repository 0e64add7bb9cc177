""" "This month": the few actions that matter for a scope, ranked, for the top of the report and every digest.

Three kinds, in this order, each ranked within itself:

1. `checks`: the latest data-quality run had failures (the figures below may be off), once;
2. `region`: regions behind their trajectory (status CRITICAL, BEHIND or AT_RISK), the gap that grew most
   since the previous month first; each says how many new participants a month reach the target in time;
3. `employer`: employers of the enforcement worklist, the sanction step furthest along first, then most
   unregistered workers, then most unpaid contributions; each says its next step.

Reads only `mart.*`, `ops.dq_results` and `ref.regions`, through views of sql/views/ (named below). Words
are Jinja2 macros per language (`templates/this_month_<language>.j2`); each action also names the report
anchor that holds its detail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache

import duckdb
from jinja2 import Environment, PackageLoader, StrictUndefined

from flows import database, formats, labels, views

REGIONS_PER_SCOPE = 3
EMPLOYERS_PER_SCOPE = 3

# The rows are views of sql/views/ (schema `report`): region_actions, employer_actions, check_counts. Here they
# are only filtered to a scope (`$scope`: 'ID', a province, a branch office or a region, as in flows.worklist)
# and ordered.

# Regions behind in the month (the latest by default), the gap that grew most first.
REGION_ROWS = """
select * exclude (month) from {relation}
where month = coalesce($month, (select max(month) from mart.trajectory where level = 'region'))
    and ($scope = 'ID' or $scope in (province_code, branch_office, code))
order by gap_change_pp desc nulls last, gap_pp desc, code
"""

# The first few employers of each region (`priority` numbers them from 1; the report filters them, a digest
# takes the scope's first): the sanction step furthest along first, then most unregistered workers, most unpaid.
EMPLOYER_ROWS = """
select * exclude (priority) from {relation}
where ($scope = 'ID' or $scope in (province_code, branch_office, region_code)) and priority <= $per_region
order by
    list_position($steps, next_sanction_step),
    unregistered_workers desc,
    unpaid_contributions_idr desc,
    region_code,
    priority
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


def candidates(
    con: duckdb.DuckDBPyConnection, scope: str = "ID", month: date | None = None, per_region: int = 3
) -> list[Action]:
    """Every action of the scope, each kind ranked. The report takes the first few visible under its filter;
    `for_scope` takes the first few outright."""
    tables = database.existing_tables(con)
    actions: list[Action] = []
    if "ops.dq_results" in tables:
        failed, critical, checked = con.execute(
            "select checks_failed, critical_checks_failed, checks_run from " + views.relation(con, "check_counts")
        ).fetchone()
        if failed:
            actions.append(
                Action("checks", "data-quality", {"failed": failed, "critical": critical, "checked": checked})
            )
    if "mart.trajectory" in tables:
        region_rows = REGION_ROWS.format(relation=views.relation(con, "region_actions"))
        for row in views.rows(con, region_rows, {"scope": scope, "month": month}):
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
        employer_rows = EMPLOYER_ROWS.format(relation=views.relation(con, "employer_actions"))
        parameters = {"scope": scope, "per_region": per_region, "steps": list(labels.SANCTION_STEPS)}
        for row in views.rows(con, employer_rows, parameters):
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
    return first_actions(candidates(con, scope, month), include_checks)


def first_actions(candidates: list[Action], include_checks: bool = True) -> list[Action]:
    """What a scope's digest keeps of its `candidates`: the check action (if asked), the first regions,
    the first employers."""
    limits = {"checks": 1 if include_checks else 0, "region": REGIONS_PER_SCOPE, "employer": EMPLOYERS_PER_SCOPE}
    taken = dict.fromkeys(limits, 0)
    out = []
    for action in candidates:
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

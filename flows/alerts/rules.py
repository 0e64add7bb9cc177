"""Alert rules: one SQL file each in sql/alerts/, evaluated together on the published marts.

Each rule's query (run by flows/metrics.py's runner, as a temp view) gives one row per region (per
suite for data quality) of its source's latest month, with `fires` saying whether the rule holds;
its thresholds come from `ref.alert_rules` (seeds/alert_rules.csv). Columns a rule leaves out are
null (`union all by name`).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from flows import metrics
from flows.database import table_exists as _table_exists
from flows.errors import ConfigError

DATA_QUALITY_RULE = "data_quality_failed"

FINDING_COLUMNS = """
    select
        null::varchar as rule, null::varchar as level, null::varchar as code, null::date as month,
        null::boolean as fires, null::varchar as severity, null::double as gap, null::varchar as measure,
        null::double as value, null::double as previous_value, null::date as previous_month,
        null::double as threshold, null::bigint as count, null::varchar as detail
    where false
"""


@dataclass(frozen=True)
class Rule(metrics.Model):
    """One file of sql/alerts/: run only when every source table (and column) it reads is published."""

    sources: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()  # `schema.table.column` a database published by an earlier release may lack

    @property
    def relation(self) -> str:
        return f"alert_rule_{self.name}"

    @property
    def materialization(self) -> str:
        return "temp view"


def _rule(name: str, *sources: str, columns: tuple[str, ...] = ()) -> Rule:
    return Rule("alerts", name, sources, columns)


# The order rules are evaluated and a digest lists alerts of equal rank in; tests/test_alert_rules.py
# checks it against the files in sql/alerts/.
RULES = (
    _rule("coverage_behind_trajectory", "mart.trajectory"),
    _rule("target_at_risk", "mart.trajectory"),
    _rule("participants_decreased", "mart.coverage"),
    _rule(
        "uhc_lost",
        "mart.coverage",
        columns=("mart.coverage.uhc_min_coverage_pct", "mart.coverage.uhc_min_active_rate_pct"),
    ),
    _rule("worker_registration_low", "mart.compliance_by_region"),
    _rule("employer_arrears", "mart.compliance_by_region"),
    # A region missing from this month's batch: its recipients and ops are told (flows/missing_regions.py).
    _rule("region_not_reported", "mart.region_reporting"),
    # reads temp table alert_check_results (LATEST_CHECK_RUN, or the failures of this run)
    _rule(DATA_QUALITY_RULE),
)
RULE_NAMES = tuple(rule.name for rule in RULES)

# The region's place in the trajectory, added to every region alert (the
# contract's actual_pct ... projected_target_month mean the same for every rule).
TRAJECTORY_CONTEXT = """
    select level, code, actual_pct, expected_pct, target_pct, target_date, gap_pp, people_needed,
           projected_target_month
    from mart.trajectory
    where level = 'region' and month = (select max(month) from mart.trajectory where level = 'region')
"""
NO_TRAJECTORY_CONTEXT = """
    select null::varchar as level, null::varchar as code, null::double as actual_pct,
           null::double as expected_pct, null::double as target_pct, null::date as target_date,
           null::double as gap_pp, null::bigint as people_needed, null::varchar as projected_target_month
    where false
"""

LATEST_CHECK_RUN = """
    create or replace temp table alert_check_results as
    select suite, expectation, severity, success, observed, checked_at
    from ops.dq_results
    where run_id = (select run_id from ops.dq_results order by checked_at desc limit 1)
"""


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether `schema.table` exists."""
    return _table_exists(con, *name.split("."))


def _column_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    schema, table, column = name.split(".")
    return (
        con.execute(
            "select count(*) from information_schema.columns where table_schema = ? and table_name = ? "
            "and column_name = ?",
            [schema, table, column],
        ).fetchone()[0]
        > 0
    )


def enabled_rules(con: duckdb.DuckDBPyConnection, only: tuple[str, ...] | None = None) -> list[Rule]:
    """The rules to evaluate: enabled in ref.alert_rules and with their source published.

    A rule whose mart is not published yet (the compliance marts, say) finds
    nothing, and its open alerts are neither re-sent nor resolved.
    """
    enabled = {row[0] for row in con.execute("select rule from ref.alert_rules where enabled").fetchall()}
    unknown = enabled - set(RULE_NAMES)
    if unknown:
        raise ConfigError(f"alert_rules.csv: unknown rule(s) {', '.join(sorted(unknown))}")
    return [
        rule
        for rule in RULES
        if rule.name in enabled
        and (only is None or rule.name in only)
        and all(table_exists(con, source) for source in rule.sources)
        and all(_column_exists(con, column) for column in rule.columns)
    ]


def evaluate(con: duckdb.DuckDBPyConnection, rules: list[Rule], month: str) -> None:
    """Fill temp table `alert_findings`: one row per rule x scope, firing or not (`month`, 'YYYY-MM',
    for findings of no month of data)."""
    for rule in rules:
        metrics.run_model(con, rule)
    union = "\nunion all by name\n".join([FINDING_COLUMNS] + [f"select * from {rule.relation}" for rule in rules])
    context = TRAJECTORY_CONTEXT if table_exists(con, "mart.trajectory") else NO_TRAJECTORY_CONTEXT
    con.execute(
        f"""
        create or replace temp table alert_findings as
        with findings as ({union}),

        context as ({context})

        select
            findings.rule || ':' || findings.level || ':' || findings.code as alert_key,
            findings.rule,
            findings.level,
            findings.code,
            coalesce(regions.region_name, findings.code) as name,
            regions.province_code,
            nullif(regions.branch_office, '') as branch_office,
            coalesce(strftime(findings.month, '%Y-%m'), $month) as month,
            coalesce(findings.fires, false) as fires,
            coalesce(findings.severity, 'warning') as severity,
            findings.gap,
            rules.worsened_step,
            context.actual_pct,
            context.expected_pct,
            context.target_pct,
            context.target_date,
            context.gap_pp,
            context.people_needed,
            context.projected_target_month,
            findings.measure,
            findings.value,
            findings.previous_value,
            strftime(findings.previous_month, '%Y-%m') as previous_month,
            findings.threshold,
            findings.count,
            findings.detail
        from findings
        left join ref.regions as regions on findings.level = 'region' and findings.code = regions.region_code
        left join context on findings.level = context.level and findings.code = context.code
        left join ref.alert_rules as rules on findings.rule = rules.rule
        """,
        {"month": month},
    )

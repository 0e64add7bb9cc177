-- one row per month (YYYY-MM) x region that reported before but not in that month: what `jkn status` and the
-- report show of it (flows/missing_regions.py), its last figures and the month they are of
select
    code,
    name,
    province_code,
    branch_office,
    months_not_reported,
    population,
    participants,
    coverage_pct,
    active_rate_pct,
    expected_pct,
    gap_pp,
    trajectory_status,
    strftime(month, '%Y-%m') as month,
    strftime(reported_month, '%Y-%m') as reported_month,
    -- as the alert rule judges it: escalated from its threshold of months in a row
    months_not_reported >= coalesce(
        (
            select any_value(rules.threshold) from ref.alert_rules as rules
            where rules.rule = 'region_not_reported'
        ),
        2
    ) as is_escalated
from mart.region_reporting
where not is_reported

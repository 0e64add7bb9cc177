-- one row per region that reported before, in the latest month: fires where it did not report this month;
-- previous_month / previous_value / count are its last figures (month, coverage, participants)
select
    'region_not_reported' as rule,
    'region' as level,
    reporting.code,
    reporting.month,
    'months_not_reported' as measure,
    reporting.coverage_pct as previous_value,
    reporting.reported_month as previous_month,
    reporting.participants as count,
    reporting.months_not_reported::double as gap,
    reporting.months_not_reported::double as value,
    not reporting.is_reported as fires,
    case
        when reporting.months_not_reported >= coalesce(rule_config.threshold, 2) then 'critical'
        else rule_config.severity
    end as severity,
    coalesce(rule_config.threshold, 2) as threshold
from mart.region_reporting as reporting
inner join ref.alert_rules as rule_config on rule_config.rule = 'region_not_reported'
where reporting.month = (select max(newest.month) from mart.region_reporting as newest)

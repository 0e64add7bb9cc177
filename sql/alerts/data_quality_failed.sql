-- one row per suite of the latest check run (temp table alert_check_results): fires where a critical check failed
-- Long digit runs (not the decimals of a number) are cut from what GX observed:
-- an unexpected value can be a card number or a NIK, and alerts carry aggregates only.
select
    'data_quality_failed' as rule,
    'suite' as level,
    checks.suite as code,
    -- the run's month: checks are about the batch, not a month of data
    null::date as month,
    'failed_checks' as measure,
    count(*) filter (where not checks.success and checks.severity = 'critical') > 0 as fires,
    any_value(rule_config.severity) as severity,
    count(*) filter (where not checks.success and checks.severity = 'critical')::double as gap,
    count(*) filter (where not checks.success and checks.severity = 'critical')::double as value,
    count(*) filter (where not checks.success and checks.severity = 'critical') as count,
    left(regexp_replace(
        string_agg(
            checks.expectation || ': ' || coalesce(checks.observed, ''), '; ' order by checks.expectation
        ) filter (where not checks.success and checks.severity = 'critical'),
        '(^|[^0-9.])[0-9]{9,}', '\1[hidden]', 'g'
    ), 1000) as detail
from alert_check_results as checks
inner join ref.alert_rules as rule_config on rule_config.rule = 'data_quality_failed'
group by checks.suite

-- one row per region of the latest compliance month: fires where few reported workers are registered
with latest as (
    select max(compliance.month) as month
    from mart.compliance_by_region as compliance
    where compliance.level = 'region'
)

select
    'worker_registration_low' as rule,
    'region' as level,
    this_month.code,
    this_month.month,
    rule_config.severity,
    'worker_registration_pct' as measure,
    this_month.worker_registration_pct as value,
    month_before.worker_registration_pct as previous_value,
    month_before.month as previous_month,
    this_month.worker_registration_pct < coalesce(rule_config.threshold, 90) as fires,
    coalesce(rule_config.threshold, 90) - this_month.worker_registration_pct as gap,
    coalesce(rule_config.threshold, 90) as threshold,
    -- the reported workers the rate says are not registered
    round(this_month.workers_reported * (100 - this_month.worker_registration_pct) / 100)::bigint as count
from mart.compliance_by_region as this_month
inner join latest on this_month.month = latest.month
inner join ref.alert_rules as rule_config on rule_config.rule = 'worker_registration_low'
left join mart.compliance_by_region as month_before
    on
        month_before.level = 'region'
        and this_month.code = month_before.code
        and month_before.month = (this_month.month - interval 1 month)::date
where this_month.level = 'region'

-- one row per region of the latest compliance month: fires where unpaid employer contributions are high
with latest as (
    select max(compliance.month) as month
    from mart.compliance_by_region as compliance
    where compliance.level = 'region'
)

select
    'employer_arrears' as rule,
    'region' as level,
    this_month.code,
    this_month.month,
    rule_config.severity,
    'unpaid_contributions_idr' as measure,
    this_month.unpaid_contributions_idr as value,
    month_before.unpaid_contributions_idr as previous_value,
    month_before.month as previous_month,
    this_month.arrears_employers as count,
    this_month.unpaid_contributions_idr > coalesce(rule_config.threshold, 0) as fires,
    this_month.unpaid_contributions_idr - coalesce(rule_config.threshold, 0) as gap,
    coalesce(rule_config.threshold, 0) as threshold
from mart.compliance_by_region as this_month
inner join latest on this_month.month = latest.month
inner join ref.alert_rules as rule_config on rule_config.rule = 'employer_arrears'
left join mart.compliance_by_region as month_before
    on
        month_before.level = 'region'
        and this_month.code = month_before.code
        and month_before.month = (this_month.month - interval 1 month)::date
where this_month.level = 'region'

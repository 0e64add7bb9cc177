-- one row per region of the latest coverage month with a month before: fires where participants fell
with latest as (
    select max(coverage.month) as month
    from mart.coverage as coverage
    where coverage.level = 'region'
),

changes as (
    select
        this_month.code,
        this_month.month,
        this_month.participants,
        month_before.participants as previous_participants,
        month_before.month as previous_month,
        (month_before.participants - this_month.participants) * 100.0
        / nullif(month_before.participants, 0) as decrease_pct
    from mart.coverage as this_month
    inner join latest on this_month.month = latest.month
    inner join mart.coverage as month_before
        on
            month_before.level = 'region'
            and this_month.code = month_before.code
            and month_before.month = (this_month.month - interval 1 month)::date
    where this_month.level = 'region'
)

select
    'participants_decreased' as rule,
    'region' as level,
    changes.code,
    changes.month,
    rule_config.severity,
    'participants' as measure,
    changes.decrease_pct as gap,
    changes.participants as value,
    changes.previous_participants as previous_value,
    changes.previous_month,
    changes.decrease_pct > coalesce(rule_config.threshold, 0) as fires,
    coalesce(rule_config.threshold, 0) as threshold,
    changes.previous_participants - changes.participants as count
from changes
inner join ref.alert_rules as rule_config on rule_config.rule = 'participants_decreased'

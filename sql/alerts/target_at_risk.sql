-- one row per region of the latest trajectory month: fires where its recent pace reaches the target late
with latest as (
    select
        trajectory.level,
        trajectory.code,
        trajectory.month,
        trajectory.status,
        datediff(
            'month', date_trunc('month', trajectory.target_date),
            strptime(trajectory.projected_target_month, '%Y-%m')
        ) as months_late
    from mart.trajectory as trajectory
    where
        trajectory.level = 'region'
        and trajectory.month = (
            select max(newest.month)
            from mart.trajectory as newest
            where newest.level = 'region'
        )
)

-- A region behind its trajectory already has coverage_behind_trajectory, whose
-- message gives the projection: one alert per region, not two saying the same.
-- So this is the region on its path today whose recent pace still arrives late
-- (status AT_RISK; with no pace yet the projection is not judged).
select
    'target_at_risk' as rule,
    latest.level,
    latest.code,
    latest.month,
    rule_config.severity,
    'months_late' as measure,
    latest.months_late as gap,
    latest.months_late as value,
    latest.status = 'AT_RISK' and latest.months_late > coalesce(rule_config.threshold, 0) as fires,
    coalesce(rule_config.threshold, 0) as threshold
from latest
inner join ref.alert_rules as rule_config on rule_config.rule = 'target_at_risk'

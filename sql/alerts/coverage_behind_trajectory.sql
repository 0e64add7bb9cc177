-- one row per region of the latest trajectory month: fires where the region is behind its path to the target
select
    'coverage_behind_trajectory' as rule,
    trajectory.level,
    trajectory.code,
    trajectory.month,
    'gap_pp' as measure,
    trajectory.gap_pp as gap,
    trajectory.gap_pp as value,
    trajectory.status in ('BEHIND', 'CRITICAL') as fires,
    case when trajectory.status = 'CRITICAL' then 'critical' else rule_config.severity end as severity
from mart.trajectory as trajectory
inner join ref.alert_rules as rule_config on rule_config.rule = 'coverage_behind_trajectory'
where
    trajectory.level = 'region'
    and trajectory.month = (
        select max(latest.month)
        from mart.trajectory as latest
        where latest.level = 'region'
    )

-- one row per month x level x code: the trajectory chart's data as of that month (flows/charts.py), every scope in
-- one query (the report draws up to 514 regions). Lines run up to the month; the projection goes from the month's
-- coverage to the projected target month at the target, or, when that is beyond the horizon (24 months past the
-- target date) or never (no growth), along the recent pace to the horizon.
with latest as not materialized (
    select
        trajectory.month,
        trajectory.level,
        trajectory.code,
        trajectory.name,
        trajectory.actual_pct,
        trajectory.target_pct,
        date_trunc('month', trajectory.target_date)::date as target_month,
        trajectory.recent_pace * 100.0 / nullif(coverage.population, 0) as pace_pp,
        strptime(trajectory.projected_target_month, '%Y-%m')::date as projected_month,
        date_add(date_trunc('month', trajectory.target_date)::date, to_months(24)) as horizon_month
    from mart.trajectory as trajectory
    left join mart.coverage as coverage
        on
            trajectory.month = coverage.month
            and trajectory.level = coverage.level
            and trajectory.code = coverage.code
),

history as not materialized (
    select
        latest.month as as_of_month,
        latest.level,
        latest.code,
        trajectory.month,
        trajectory.actual_pct,
        trajectory.expected_pct
    from latest
    inner join mart.trajectory as trajectory
        on
            latest.level = trajectory.level
            and latest.code = trajectory.code
            and latest.month >= trajectory.month
),

projection_end as not materialized (
    select
        latest.*,
        case
            when latest.actual_pct >= latest.target_pct then null
            when latest.projected_month <= latest.horizon_month then latest.projected_month
            when latest.pace_pp is not null then latest.horizon_month
        end as end_month
    from latest
),

points as (
    select
        as_of_month,
        level,
        code,
        month,
        'actual' as series,
        actual_pct as value
    from history
    union all
    select
        as_of_month,
        level,
        code,
        month,
        'trajectory' as series,
        expected_pct as value
    from history
    where expected_pct is not null
    union all
    select
        month as as_of_month,
        level,
        code,
        target_month as month,
        'trajectory' as series,
        target_pct as value
    from latest
    where target_month > month
    union all
    select
        month as as_of_month,
        level,
        code,
        month,
        'projection' as series,
        actual_pct as value
    from projection_end
    where end_month is not null
    union all
    select
        month as as_of_month,
        level,
        code,
        end_month as month,
        'projection' as series,
        case
            when end_month = projected_month then target_pct
            else actual_pct + pace_pp * datediff('month', month, end_month)
        end as value
    from projection_end
    where end_month is not null
)

select
    latest.month,
    latest.level,
    latest.code,
    any_value(latest.name) as name,
    list(
        { 'month': strftime(points.month, '%Y-%m-01'), 'series': points.series, 'value': points.value }
        order by points.series, points.month
    ) as series,
    any_value(latest.target_pct) as target_pct,
    any_value(strftime(latest.target_month, '%Y-%m-01')) as target_month,
    -- the first month drawn: every month up to this one has an actual point
    strftime(min(points.month) filter (where points.series = 'actual'), '%Y-%m-01') as start_month
from latest
inner join points on latest.month = points.as_of_month and latest.level = points.level and latest.code = points.code
group by latest.month, latest.level, latest.code

-- one row per month x level x code with a target
-- (coverage against the straight path to the target, and the forecast at the recent pace)
with coverage as (
    select
        coverage.month,
        coverage.level,
        coverage.code,
        coverage.name,
        coverage.population,
        coverage.participants,
        coverage.coverage_pct,
        year(coverage.month) * 12 + month(coverage.month) - 1 as month_index
    from build.coverage as coverage
    where coverage.coverage_pct is not null
),

-- each month's change in participants since the scope's previous month, per month between them
month_changes as (
    select
        coverage.*,
        (coverage.participants - lag(coverage.participants) over scope_months)
        / (coverage.month_index - lag(coverage.month_index) over scope_months) as month_pace
    from coverage
    window scope_months as (partition by coverage.level, coverage.code order by coverage.month_index)
),

-- least-squares slope of participants over the last 6 calendar months (this one included), in people per month;
-- null until the scope has two months of history in that window. The slowest and fastest month-on-month
-- changes of the same 6 months (the 5 changes ending in its last 5 months) bound the forecast's range.
paced as (
    select
        month_changes.*,
        case
            when count(*) over last_six_months >= 2
                then regr_slope(month_changes.participants, month_changes.month_index) over last_six_months
        end as recent_pace,
        min(month_changes.month_pace) over changes_in_last_six_months as slowest_pace,
        max(month_changes.month_pace) over changes_in_last_six_months as fastest_pace
    from month_changes
    window
        last_six_months as (
            partition by month_changes.level, month_changes.code
            order by month_changes.month_index
            range between 5 preceding and current row
        ),
        changes_in_last_six_months as (
            partition by month_changes.level, month_changes.code
            order by month_changes.month_index
            range between 4 preceding and current row
        )
),

scopes as (
    select distinct
        coverage.level,
        coverage.code,
        case when coverage.level = 'region' then left(coverage.code, 2) end as province_code
    from coverage
),

-- the most specific target rows a scope has: its own, else (for a region) its province's, else the national ones
scope_targets as (
    select
        scopes.level,
        scopes.code,
        targets.target_pct,
        targets.target_date,
        targets.baseline_month,
        coalesce(targets.tolerance_pp, 1.0) as tolerance_pp,
        -- past the scope's last target date plus 10 years a forecast month means nothing to anyone
        max(targets.target_date) over (partition by scopes.level, scopes.code) as last_target_date
    from scopes
    inner join ref.targets as targets
        on targets.scope_code in (scopes.code, scopes.province_code, 'ID')
    qualify dense_rank() over (
        partition by scopes.level, scopes.code
        order by case targets.scope_code when scopes.code then 1 when scopes.province_code then 2 else 3 end
    ) = 1
),

-- the nearest target whose date is not before the month
month_targets as (
    select
        paced.*,
        scope_targets.target_pct,
        scope_targets.target_date,
        scope_targets.tolerance_pp,
        year(scope_targets.last_target_date) * 12 + month(scope_targets.last_target_date) - 1
        + 12 * 10 as horizon_index,
        strptime(scope_targets.baseline_month, '%Y-%m')::date as configured_baseline_month,
        year(scope_targets.target_date) * 12 + month(scope_targets.target_date) - 1 as target_index
    from paced
    inner join scope_targets
        on
            paced.level = scope_targets.level
            and paced.code = scope_targets.code
            and paced.month <= scope_targets.target_date
    qualify row_number() over (
        partition by paced.month, paced.level, paced.code order by scope_targets.target_date
    ) = 1
),

-- the baseline: the scope's first month with coverage on or after the configured baseline month, else its first month
baselines as (
    select
        month_targets.month,
        month_targets.level,
        month_targets.code,
        min(history.month) as baseline_month
    from month_targets
    inner join coverage as history
        on
            month_targets.level = history.level
            and month_targets.code = history.code
            and history.month >= coalesce(month_targets.configured_baseline_month, '1900-01-01'::date)
    group by month_targets.month, month_targets.level, month_targets.code
),

with_baseline as (
    select
        month_targets.*,
        baselines.baseline_month,
        baseline.coverage_pct as baseline_pct,
        baseline.month_index as baseline_index
    from month_targets
    inner join baselines
        on
            month_targets.month = baselines.month
            and month_targets.level = baselines.level
            and month_targets.code = baselines.code
    inner join coverage as baseline
        on
            baselines.level = baseline.level
            and baselines.code = baseline.code
            and baselines.baseline_month = baseline.month
    -- before its baseline a scope has no path yet
    where month_targets.month_index >= baseline.month_index
),

expected as (
    select
        with_baseline.*,
        case
            when with_baseline.target_index <= with_baseline.baseline_index then with_baseline.target_pct
            else
                with_baseline.baseline_pct
                + (with_baseline.target_pct - with_baseline.baseline_pct)
                * (with_baseline.month_index - with_baseline.baseline_index)
                / (with_baseline.target_index - with_baseline.baseline_index)
        end as expected_pct,
        -- participants still missing to reach the target at today's population
        greatest(with_baseline.target_pct / 100.0 * with_baseline.population - with_baseline.participants, 0)
            as people_to_target
    from with_baseline
),

projected as (
    select
        expected.*,
        expected.expected_pct - expected.coverage_pct as gap_pp,
        strftime(expected.baseline_month, '%Y-%m') as baseline_month_label,
        case
            when expected.coverage_pct >= expected.target_pct then expected.month_index
            when expected.recent_pace > 0
                then expected.month_index + ceil(round(expected.people_to_target / expected.recent_pace, 6))::bigint
        end as projected_index,
        -- a pace under 1 in 10,000 residents a month (1 pp in over 8 years) is not a forecast anyone can plan on
        expected.population / 10000.0 as negligible_pace
    from expected
),

-- the month shown, and its range at the slowest and fastest recent month-on-month pace; null (shown as
-- "not at the current pace") past the horizon or at a negligible or shrinking pace
forecast as (
    select
        projected.*,
        case
            when projected.coverage_pct >= projected.target_pct then projected.month_index
            when
                projected.recent_pace >= projected.negligible_pace
                and projected.projected_index <= projected.horizon_index
                then projected.projected_index
        end as forecast_index,
        case
            when projected.coverage_pct >= projected.target_pct then projected.month_index
            when projected.fastest_pace >= projected.negligible_pace
                then
                    projected.month_index
                    + ceil(round(projected.people_to_target / projected.fastest_pace, 6))::bigint
        end as earliest_index,
        case
            when projected.coverage_pct >= projected.target_pct then projected.month_index
            when projected.slowest_pace >= projected.negligible_pace
                then
                    projected.month_index
                    + ceil(round(projected.people_to_target / projected.slowest_pace, 6))::bigint
        end as latest_index
    from projected
),

judged as (
    select
        forecast.*,
        -- round away floating-point noise before ceil, so an exact whole number of people is not rounded up
        greatest(ceil(round(forecast.expected_pct / 100.0 * forecast.population - forecast.participants, 6)), 0)
        ::bigint as people_needed,
        forecast.people_to_target / greatest(forecast.target_index - forecast.month_index, 1)
            as monthly_pace_needed,
        strftime(
            make_date((forecast.forecast_index // 12)::bigint, (forecast.forecast_index % 12 + 1)::bigint, 1),
            '%Y-%m'
        ) as projected_target_month,
        -- the range is given only where a month is shown; its late end is null when the slowest pace would
        -- not get there before the horizon
        case when forecast.forecast_index is not null then strftime(
            make_date((forecast.earliest_index // 12)::bigint, (forecast.earliest_index % 12 + 1)::bigint, 1),
            '%Y-%m'
        ) end as projected_earliest_month,
        case
            when forecast.forecast_index is not null and forecast.latest_index <= forecast.horizon_index
                then strftime(
                    make_date((forecast.latest_index // 12)::bigint, (forecast.latest_index % 12 + 1)::bigint, 1),
                    '%Y-%m'
                )
        end as projected_latest_month,
        forecast.forecast_index is not null as is_target_reached_at_pace,
        strftime(
            make_date((forecast.horizon_index // 12)::bigint, (forecast.horizon_index % 12 + 1)::bigint, 1),
            '%Y-%m'
        ) as forecast_horizon_month,
        case
            when forecast.coverage_pct >= forecast.target_pct then 'ACHIEVED'
            when forecast.gap_pp > 3 * forecast.tolerance_pp then 'CRITICAL'
            -- once a pace exists: never reaching the target, or reaching it more than 12 months late
            when
                forecast.recent_pace is not null
                and (forecast.projected_index is null or forecast.projected_index - forecast.target_index > 12)
                then 'CRITICAL'
            when forecast.gap_pp > forecast.tolerance_pp then 'BEHIND'
            when forecast.projected_index > forecast.target_index then 'AT_RISK'
            else 'ON_TRACK'
        end as status
    from forecast
)

select
    judged.month,
    judged.level,
    judged.code,
    judged.name,
    judged.target_pct,
    judged.target_date,
    judged.baseline_month_label as baseline_month,
    judged.baseline_pct,
    judged.expected_pct,
    judged.coverage_pct as actual_pct,
    judged.gap_pp,
    judged.people_needed,
    judged.monthly_pace_needed,
    judged.recent_pace,
    judged.projected_target_month,
    judged.tolerance_pp,
    judged.status,
    judged.slowest_pace,
    judged.fastest_pace,
    judged.projected_earliest_month,
    judged.projected_latest_month,
    judged.is_target_reached_at_pace,
    judged.forecast_horizon_month
from judged

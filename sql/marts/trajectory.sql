-- one row per month x level x code with a target: coverage against the straight path to the target, and the forecast at the recent pace
with coverage as (
    select
        coverage.month,
        coverage.level,
        coverage.code,
        coverage.name,
        coverage.population,
        coverage.participants,
        coverage.coverage_pct,
        year(coverage.month) * 12 + month(coverage.month) - 1 as month_index,
        min(coverage.month) over (partition by coverage.level, coverage.code) as first_month
    from build.coverage as coverage
),

scopes as (
    select distinct
        coverage.level,
        coverage.code
    from coverage
),

-- a scope uses its own target rows when it has any, else the national ones
scope_targets as (
    select
        scopes.level,
        scopes.code,
        targets.target_pct,
        targets.target_date,
        targets.baseline_month,
        coalesce(targets.tolerance_pp, 1.0) as tolerance_pp
    from scopes
    inner join ref.targets as targets
        on targets.scope_code = scopes.code
        or (
            targets.scope_code = 'ID'
            and not exists (select 1 from ref.targets as own where own.scope_code = scopes.code)
        )
),

-- the nearest target whose date is not before the month
month_targets as (
    select
        coverage.*,
        scope_targets.target_pct,
        scope_targets.target_date,
        scope_targets.tolerance_pp,
        coalesce(strptime(scope_targets.baseline_month, '%Y-%m')::date, coverage.first_month) as baseline_month,
        year(scope_targets.target_date) * 12 + month(scope_targets.target_date) - 1 as target_index
    from coverage
    inner join scope_targets
        on coverage.level = scope_targets.level
        and coverage.code = scope_targets.code
        and scope_targets.target_date >= coverage.month
    qualify row_number() over (
        partition by coverage.month, coverage.level, coverage.code order by scope_targets.target_date
    ) = 1
),

with_baseline as (
    select
        month_targets.*,
        baseline.coverage_pct as baseline_pct,
        year(month_targets.baseline_month) * 12 + month(month_targets.baseline_month) - 1 as baseline_index
    from month_targets
    left join coverage as baseline
        on month_targets.level = baseline.level
        and month_targets.code = baseline.code
        and month_targets.baseline_month = baseline.month
),

paced as (
    select
        with_baseline.*,
        case
            when with_baseline.month_index < with_baseline.baseline_index then null
            when with_baseline.target_index <= with_baseline.baseline_index then with_baseline.target_pct
            else with_baseline.baseline_pct
                + (with_baseline.target_pct - with_baseline.baseline_pct)
                * (with_baseline.month_index - with_baseline.baseline_index)
                / (with_baseline.target_index - with_baseline.baseline_index)
        end as expected_pct,
        -- least-squares slope of participants over the last 6 months, in people per month;
        -- null until the scope has two months of history
        case
            when count(*) over last_six_months >= 2
                then regr_slope(with_baseline.participants, with_baseline.month_index) over last_six_months
        end as recent_pace,
        greatest(with_baseline.target_pct / 100.0 * with_baseline.population - with_baseline.participants, 0)
            as people_to_target
    from with_baseline
    window last_six_months as (
        partition by with_baseline.level, with_baseline.code
        order by with_baseline.month_index
        range between 5 preceding and current row
    )
),

projected as (
    select
        paced.*,
        case
            when paced.coverage_pct >= paced.target_pct then paced.month_index
            when paced.recent_pace > 0
                then paced.month_index + ceil(paced.people_to_target / paced.recent_pace)::bigint
        end as projected_index
    from paced
)

select
    projected.month,
    projected.level,
    projected.code,
    projected.name,
    projected.target_pct,
    projected.target_date,
    strftime(projected.baseline_month, '%Y-%m') as baseline_month,
    projected.baseline_pct,
    projected.expected_pct,
    projected.coverage_pct as actual_pct,
    projected.expected_pct - projected.coverage_pct as gap_pp,
    greatest(ceil(projected.expected_pct / 100.0 * projected.population - projected.participants), 0)::bigint
        as people_needed,
    projected.people_to_target / greatest(projected.target_index - projected.month_index, 1)
        as monthly_pace_needed,
    projected.recent_pace,
    case
        when projected.projected_index is not null
            then strftime(make_date((projected.projected_index // 12)::bigint, (projected.projected_index % 12 + 1)::bigint, 1), '%Y-%m')
    end as projected_target_month,
    projected.tolerance_pp,
    case
        when projected.coverage_pct >= projected.target_pct then 'ACHIEVED'
        when projected.expected_pct - projected.coverage_pct > 3 * projected.tolerance_pp then 'CRITICAL'
        -- with no pace yet (a single month of history) the projection is not judged
        when
            projected.recent_pace is not null
            and (projected.projected_index is null or projected.projected_index - projected.target_index > 12)
            then 'CRITICAL'
        when projected.expected_pct - projected.coverage_pct > projected.tolerance_pp then 'BEHIND'
        when projected.projected_index > projected.target_index then 'AT_RISK'
        else 'ON_TRACK'
    end as status
from projected
where projected.coverage_pct is not null

-- one row per month x level x code: coverage against its trajectory, where the scope sits, its UHC regions
-- Read by the report (scope and region tables) and by `jkn status` and the run summary (flows/terminal.py).
with regions as (
    select
        region_code,
        province_code,
        province_name,
        nullif(branch_office, '') as branch_office
    from ref.regions
),

region_uhc as not materialized (
    select
        coverage.month,
        regions.province_code,
        regions.branch_office,
        coverage.is_uhc
    from mart.coverage as coverage
    inner join regions on coverage.code = regions.region_code
    where coverage.level = 'region'
),

uhc as (
    select
        month,
        'national' as level,
        'ID' as code,
        count(*) as regions,
        count(*) filter (where is_uhc) as uhc_regions
    from region_uhc
    group by month
    union all
    select
        month,
        'province' as level,
        province_code as code,
        count(*) as regions,
        count(*) filter (where is_uhc) as uhc_regions
    from region_uhc
    group by month, province_code
    union all
    select
        month,
        'branch' as level,
        branch_office as code,
        count(*) as regions,
        count(*) filter (where is_uhc) as uhc_regions
    from region_uhc
    where branch_office is not null
    group by month, branch_office
),

branch_provinces as (
    select
        branch_office,
        string_agg(distinct province_code, ' ' order by province_code) as provinces
    from regions
    where branch_office is not null
    group by branch_office
)

select
    coverage.month,
    coverage.level,
    coverage.code,
    coverage.name,
    regions.province_code,
    regions.province_name,
    regions.branch_office,
    coverage.population,
    coverage.participants,
    coverage.active_participants,
    coverage.coverage_pct,
    coverage.active_rate_pct,
    coverage.is_uhc,
    uhc.regions,
    uhc.uhc_regions,
    trajectory.actual_pct,
    trajectory.expected_pct,
    trajectory.gap_pp,
    trajectory.people_needed,
    trajectory.target_pct,
    trajectory.target_date,
    trajectory.projected_target_month,
    trajectory.status,
    -- the order scopes are listed in: the nation first, regions last
    case coverage.level when 'national' then 0 when 'province' then 1 when 'branch' then 2 else 3 end as level_rank,
    case coverage.level
        when 'province' then coverage.code
        when 'branch' then branch_provinces.provinces
    end as provinces,
    trajectory.code is not null as is_tracked
from mart.coverage as coverage
left join mart.trajectory as trajectory
    on coverage.month = trajectory.month and coverage.level = trajectory.level and coverage.code = trajectory.code
left join regions on coverage.level = 'region' and coverage.code = regions.region_code
left join branch_provinces on coverage.level = 'branch' and coverage.code = branch_provinces.branch_office
left join uhc on coverage.month = uhc.month and coverage.level = uhc.level and coverage.code = uhc.code

-- one row per month x region that has reported before: whether it reported this month and, when it did not,
-- its last figures with the month they are of (`reported_month`), never counted as this month's
with reporting as (
    select
        reporting.month,
        reporting.region_code,
        reporting.is_reported,
        reporting.reported_month,
        reporting.months_not_reported
    from build.region_reporting_months as reporting
)

select
    reporting.month,
    reporting.region_code as code,
    regions.region_name as name,
    regions.province_code,
    reporting.is_reported,
    reporting.reported_month,
    reporting.months_not_reported,
    -- the figures of `reported_month` (this month's when the region reported)
    coverage.population,
    coverage.participants,
    coverage.active_participants,
    coverage.coverage_pct,
    coverage.active_rate_pct,
    coverage.is_uhc,
    trajectory.expected_pct,
    trajectory.gap_pp,
    trajectory.status as trajectory_status,
    nullif(regions.branch_office, '') as branch_office
from reporting
inner join ref.regions as regions on reporting.region_code = regions.region_code
left join build.coverage as coverage
    on
        coverage.level = 'region'
        and reporting.region_code = coverage.code
        and reporting.reported_month = coverage.month
left join build.trajectory as trajectory
    on
        trajectory.level = 'region'
        and reporting.region_code = trajectory.code
        and reporting.reported_month = trajectory.month

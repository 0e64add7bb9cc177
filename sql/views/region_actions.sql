-- one row per month x region behind its trajectory (status CRITICAL, BEHIND or AT_RISK): "this month"'s region
-- actions (flows/actions.py), with how the gap moved since the region's previous month, and the province and
-- branch office the region belongs to (so one scope filter serves the report and every digest)
with months as (
    select
        trajectory.*,
        trajectory.gap_pp
        - lag(trajectory.gap_pp) over (partition by trajectory.code order by trajectory.month) as gap_change_pp
    from mart.trajectory as trajectory
    where trajectory.level = 'region'
)

select
    months.month,
    months.code,
    months.name,
    regions.province_code,
    months.status,
    months.gap_pp,
    months.gap_change_pp,
    months.people_needed,
    months.monthly_pace_needed,
    months.recent_pace,
    months.target_pct,
    months.target_date,
    months.projected_target_month,
    nullif(regions.branch_office, '') as branch_office
from months
left join ref.regions as regions on months.code = regions.region_code
where months.status in ('CRITICAL', 'BEHIND', 'AT_RISK')

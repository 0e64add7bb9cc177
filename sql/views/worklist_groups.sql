-- one row per month x region x non-compliant employer: the enforcement worklist (as in worklist.sql) in its
-- groups (sanction step x region), the groups ranked for the month: the step furthest along PP 86/2013 first
-- (the order flows/labels.py's SANCTION_STEPS holds), then the region with most unregistered workers, then most
-- owed. A group lies in one region, so its totals and rank hold in any scope (nation, province, branch, region).
with worklist as (
    select
        worklist.*,
        regions.province_code,
        nullif(regions.branch_office, '') as branch_office
    from mart.enforcement_worklist as worklist
    left join ref.regions as regions on worklist.region_code = regions.region_code
),

step_groups as (
    select
        month,
        next_sanction_step,
        region_code,
        count(*) as group_employers,
        sum(unregistered_workers) as group_unregistered_workers,
        sum(unpaid_contributions_idr) as group_unpaid_idr,
        sum(contributions_owed_idr) as group_owed_idr
    -- from the mart itself, so that the rows above are read once and a month's filter reaches both reads
    from mart.enforcement_worklist
    group by month, next_sanction_step, region_code
),

ranked_groups as (
    -- ranked here, over a few thousand groups, rather than over every row
    select
        *,
        dense_rank() over (
            partition by month
            order by
                list_position(
                    ['NO_PUBLIC_SERVICES', 'FINE', 'WRITTEN_WARNING_2', 'WRITTEN_WARNING_1'], next_sanction_step
                ) asc,
                group_unregistered_workers desc,
                group_owed_idr desc,
                region_code asc
        ) as group_rank
    from step_groups
)

-- the mart's own columns, as it publishes them
select
    worklist.*,  -- noqa: AM04
    step_groups.group_employers,
    step_groups.group_unregistered_workers,
    step_groups.group_unpaid_idr,
    step_groups.group_rank
from worklist
inner join ranked_groups as step_groups
    on
        worklist.month = step_groups.month
        and worklist.next_sanction_step = step_groups.next_sanction_step
        and worklist.region_code = step_groups.region_code

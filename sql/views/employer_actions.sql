-- one row per employer of the latest month's enforcement worklist: "this month"'s employer actions
-- (flows/actions.py), each with the province and branch office of its region, so one scope filter serves the
-- report and every digest. `priority` numbers a month's employers of a region from 1 (the mart's own ranking):
-- the report shows a region's first few, a digest its scope's first.
select
    worklist.region_code,
    worklist.region_name,
    regions.province_code,
    worklist.name,
    worklist.business_id,
    worklist.unregistered_workers,
    worklist.unpaid_contributions_idr,
    worklist.months_non_compliant,
    worklist.next_sanction_step,
    worklist.reasons,
    worklist.priority,
    nullif(regions.branch_office, '') as branch_office
from mart.enforcement_worklist as worklist
left join ref.regions as regions on worklist.region_code = regions.region_code
where worklist.month = (select max(latest.month) from mart.enforcement_worklist as latest)

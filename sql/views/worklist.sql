-- one row per month x region x non-compliant employer: the enforcement worklist, each row with the province and
-- branch office of its region (so one filter of the report serves every table); in its groups: worklist_groups
-- the mart's own columns, as it publishes them
select
    worklist.*,  -- noqa: AM04
    regions.province_code,
    nullif(regions.branch_office, '') as branch_office
from mart.enforcement_worklist as worklist
left join ref.regions as regions on worklist.region_code = regions.region_code

-- one row per month x level x code: employer compliance, each row with the province(s) and branch it belongs to
-- (so one filter of the report serves every table) and the scope's name
with regions as (
    select
        region_code,
        province_code,
        nullif(branch_office, '') as branch_office
    from ref.regions
),

branch_provinces as (
    select
        branch_office,
        string_agg(distinct province_code, ' ' order by province_code) as provinces
    from regions
    where branch_office is not null
    group by branch_office
),

names as (
    select distinct
        level,
        code,
        name
    from mart.coverage
)

-- the mart's own columns, as it publishes them
select
    compliance.*,  -- noqa: AM04
    coalesce(names.name, compliance.code) as scope_name,
    case compliance.level
        when 'region' then regions.province_code
        when 'province' then compliance.code
        when 'branch' then branch_provinces.provinces
    end as provinces,
    case compliance.level
        when 'region' then regions.branch_office
        when 'branch' then compliance.code
    end as branch,
    -- the order scopes are listed in: the nation first, regions last
    case compliance.level when 'national' then 0 when 'province' then 1 when 'branch' then 2 else 3 end as level_rank
from mart.compliance_by_region as compliance
left join regions on compliance.level = 'region' and compliance.code = regions.region_code
left join branch_provinces on compliance.level = 'branch' and compliance.code = branch_provinces.branch_office
left join names on compliance.level = names.level and compliance.code = names.code

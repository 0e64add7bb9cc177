-- one row per month x employer registration (insurer's registry), from the current file of each month and province
-- (staging.current_loads: the newest live load covering each province)
with current_loads as (
    select
        current_loads.load_id,
        current_loads.province_code,
        current_loads.is_whole_load
    from staging.current_loads as current_loads
    where current_loads.kind = 'employers'
),

whole_loads as (
    select distinct current_loads.load_id
    from current_loads
    where current_loads.is_whole_load
),

partial_slices as (
    select
        current_loads.load_id,
        current_loads.province_code
    from current_loads
    where not current_loads.is_whole_load
),

-- a load current for all it covers is read whole (the usual case, no per-row test); one partly
-- replaced by a province file only for the provinces it still supplies
current_rows as (
    select employers.*
    from raw.employers as employers
    where employers.load_id in (select whole_loads.load_id from whole_loads)
    union all
    select employers.*
    from raw.employers as employers
    semi join partial_slices
        on
            employers.load_id = partial_slices.load_id
            and left(employers.region_code, 2) = partial_slices.province_code
)

select
    employers.month,
    employers.employer_id,
    employers.business_id,
    employers.name,
    employers.region_code,
    employers.registered_workers,
    employers.reported_wage_total,
    employers.contribution_due,
    employers.contribution_paid,
    employers.months_in_arrears,
    employers.file_name
from current_rows as employers

-- one row per month x company line of the manpower office's workforce report (WLKP)
-- (from the current file of each month and province: a province's rows come from the newest live load
-- covering it; a whole-country file covers every province, a province file, `<kind>_<period>_p<province>`,
-- its own; flows/ingest/slices.py)
with current_loads as (
    select
        current_loads.load_id,
        current_loads.province_code,
        current_loads.is_whole_load
    from staging.current_loads as current_loads
    where current_loads.kind = 'workforce'
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
    select workforce.*
    from raw.workforce as workforce
    where workforce.load_id in (select whole_loads.load_id from whole_loads)
    union all
    select workforce.*
    from raw.workforce as workforce
    semi join partial_slices
        on
            workforce.load_id = partial_slices.load_id
            and left(workforce.region_code, 2) = partial_slices.province_code
)

select
    workforce.month,
    workforce.business_id,
    workforce.name,
    workforce.region_code,
    workforce.workers,
    workforce.file_name
from current_rows as workforce

-- one row per month x region x segment x status, from the current file of each month and province
-- (staging.current_loads: the newest live load covering each province)
with current_loads as (
    select
        current_loads.load_id,
        current_loads.province_code,
        current_loads.is_whole_load
    from staging.current_loads as current_loads
    where current_loads.kind = 'region_counts'
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
    select counts.*
    from raw.region_counts as counts
    where counts.load_id in (select whole_loads.load_id from whole_loads)
    union all
    select counts.*
    from raw.region_counts as counts
    semi join partial_slices
        on
            counts.load_id = partial_slices.load_id
            and left(counts.region_code, 2) = partial_slices.province_code
)

select
    counts.month,
    counts.region_code,
    counts.segment,
    counts.status,
    counts.participants,
    counts.file_name
from current_rows as counts

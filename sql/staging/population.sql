-- one row per semester x region: civil-registry population, from the current file of each semester and province
-- (staging.current_loads: the newest live load covering each province)
with current_loads as (
    select
        current_loads.load_id,
        current_loads.province_code,
        current_loads.is_whole_load
    from staging.current_loads as current_loads
    where current_loads.kind = 'population'
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
    select population.*
    from raw.population as population
    where population.load_id in (select whole_loads.load_id from whole_loads)
    union all
    select population.*
    from raw.population as population
    semi join partial_slices
        on
            population.load_id = partial_slices.load_id
            and left(population.region_code, 2) = partial_slices.province_code
)

select
    population.as_of,
    population.period,
    population.region_code,
    population.population,
    population.file_name
from current_rows as population

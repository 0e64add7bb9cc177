-- one row per semester x region: civil-registry population, from the current file of each semester
with current_files as (
    select load_log.load_id
    from ops.load_log as load_log
    where load_log.kind = 'population' and load_log.status in ('staged', 'published')
    qualify row_number() over (partition by load_log.period order by load_log.load_id desc) = 1
)

select
    population.as_of,
    population.period,
    population.region_code,
    population.population,
    population.file_name
from raw.population as population
where population.load_id in (select current_files.load_id from current_files)

-- one row per semester x region: civil-registry population, from the current file of each semester and province
-- (staging.current_rows: the rows of the newest live load covering each province, staging.current_loads)
select
    population.as_of,
    population.period,
    population.region_code,
    population.population,
    population.file_name
from staging.current_rows('population') as population

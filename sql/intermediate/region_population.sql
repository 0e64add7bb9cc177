-- one row per month x region: the population figure in force
-- (the latest whose as-of date plus the configured lag is not after the month's end)
with months as (
    select distinct counts.month
    from build.region_month_counts as counts
)

select
    months.month,
    population.region_code,
    population.population,
    population.period as population_period
from months
inner join staging.population as population
    on population.as_of + to_months(getvariable('population_lag_months')) <= last_day(months.month)
qualify row_number() over (
    partition by months.month, population.region_code order by population.as_of desc
) = 1

-- one row per month x region: the minimum wage (UMK) in force
-- (the region's figure for the month's year, else its latest earlier one)
-- the employers extract's months, from its current loads (reading `month` from staging.employers read every
-- column of every part)
with months as (
    select distinct strptime(current_loads.period, '%Y-%m')::date as month
    from staging.current_loads as current_loads
    inner join ops.load_log as load_log on current_loads.load_id = load_log.load_id
    where current_loads.kind = 'employers' and load_log.rows_loaded > 0
)

select
    months.month,
    wages.region_code,
    wages.monthly_minimum_wage,
    wages.year as minimum_wage_year
from months
inner join ref.minimum_wages as wages
    on wages.year <= year(months.month)
qualify row_number() over (partition by months.month, wages.region_code order by wages.year desc) = 1

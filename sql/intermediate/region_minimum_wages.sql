-- one row per month x region: the minimum wage (UMK) in force
-- (the region's figure for the month's year, else its latest earlier one)
with months as (
    select distinct employers.month
    from staging.employers as employers
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

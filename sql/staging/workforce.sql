-- one row per month x company line of the manpower office's workforce report (WLKP), from the current
-- file of each month and province
-- (staging.current_rows: the rows of the newest live load covering each province, staging.current_loads)
select
    workforce.month,
    workforce.business_id,
    workforce.name,
    workforce.region_code,
    workforce.workers,
    workforce.file_name
from staging.current_rows('workforce') as workforce

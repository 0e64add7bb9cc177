-- one row per month x region x segment x status, from the current file of each month and province
-- (staging.current_rows: the rows of the newest live load covering each province, staging.current_loads)
select
    counts.month,
    counts.region_code,
    counts.segment,
    counts.status,
    counts.participants,
    counts.file_name
from staging.current_rows('region_counts') as counts

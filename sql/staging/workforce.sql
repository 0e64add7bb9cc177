-- one row per month x company line of the manpower office's workforce report (WLKP)
-- (from the current file of each month)
with current_files as (
    select load_log.load_id
    from ops.load_log as load_log
    where load_log.kind = 'workforce' and load_log.status in ('staged', 'published')
    qualify row_number() over (partition by load_log.period order by load_log.load_id desc) = 1
)

select
    workforce.month,
    workforce.business_id,
    workforce.name,
    workforce.region_code,
    workforce.workers,
    workforce.file_name
from raw.workforce as workforce
where workforce.load_id in (select current_files.load_id from current_files)

-- one row per month x region x segment x status, from the current file of each month
with current_files as (
    select load_log.load_id
    from ops.load_log as load_log
    where load_log.kind = 'region_counts' and load_log.status in ('staged', 'published')
    qualify row_number() over (partition by load_log.period order by load_log.load_id desc) = 1
)

select
    counts.month,
    counts.region_code,
    counts.segment,
    counts.status,
    counts.participants,
    counts.file_name
from raw.region_counts as counts
where counts.load_id in (select current_files.load_id from current_files)

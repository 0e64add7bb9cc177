-- one row per month x employer registration (insurer's registry), from the current file of each month
with current_files as (
    select load_log.load_id
    from ops.load_log as load_log
    where load_log.kind = 'employers' and load_log.status in ('staged', 'published')
    qualify row_number() over (partition by load_log.period order by load_log.load_id desc) = 1
)

select
    employers.month,
    employers.employer_id,
    employers.business_id,
    employers.name,
    employers.region_code,
    employers.registered_workers,
    employers.reported_wage_total,
    employers.contribution_due,
    employers.contribution_paid,
    employers.months_in_arrears,
    employers.file_name
from raw.employers as employers
where employers.load_id in (select current_files.load_id from current_files)

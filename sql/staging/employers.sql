-- one row per month x employer registration (insurer's registry), from the current file of each month and province
-- (staging.current_rows: the rows of the newest live load covering each province, staging.current_loads)
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
from staging.current_rows('employers') as employers

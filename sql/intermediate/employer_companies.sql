-- one row per month x company registered with the insurer
-- (registrations sharing a business id, NIB, are one company)
with registrations as (
    select
        employers.*,
        coalesce(employers.business_id, 'NPP:' || employers.employer_id) as company_key
    from staging.employers as employers
),

companies as (
    select
        registrations.month,
        registrations.company_key,
        -- the lowest registration number stands for the company; the others are counted
        min(registrations.employer_id) as employer_id,
        count(*) as employer_registrations,
        any_value(registrations.business_id) as business_id,
        arg_min(registrations.name, registrations.employer_id) as name,
        arg_min(registrations.region_code, registrations.employer_id) as region_code,
        sum(registrations.registered_workers)::bigint as registered_workers,
        sum(registrations.reported_wage_total) as reported_wage_total,
        sum(registrations.contribution_due) as contribution_due,
        sum(registrations.contribution_paid) as contribution_paid,
        max(registrations.months_in_arrears) as months_in_arrears
    from registrations
    group by registrations.month, registrations.company_key
)

select
    companies.*,
    wages.monthly_minimum_wage as minimum_wage,
    wages.minimum_wage_year
from companies
left join build.region_minimum_wages as wages
    on companies.month = wages.month and companies.region_code = wages.region_code

-- one row per month x employer (registrations sharing a business id counted once) or unregistered company with workers
with workforce_months as (
    -- for each month of the insurer's registry, the latest workforce report not after it
    select
        employer_months.month,
        max(workforce_months.month) as workforce_month
    from (select distinct employers.month from staging.employers as employers) as employer_months
    inner join (select distinct workforce.month from staging.workforce as workforce) as workforce_months
        on employer_months.month >= workforce_months.month
    group by employer_months.month
),

reported as (
    -- one row per company in that report; a company listed on several lines is summed
    select
        workforce_months.month,
        workforce_months.workforce_month,
        workforce.business_id,
        arg_max(workforce.name, workforce.workers) as name,
        arg_max(workforce.region_code, workforce.workers) as region_code,
        sum(workforce.workers) as workers
    from workforce_months
    inner join staging.workforce as workforce on workforce_months.workforce_month = workforce.month
    group by workforce_months.month, workforce_months.workforce_month, workforce.business_id
),

matched as (
    -- insurer's employers matched to the manpower office's companies by business id (NIB)
    select
        coalesce(companies.month, reported.month) as month,
        coalesce(companies.company_key, reported.business_id) as company_key,
        companies.employer_id,
        coalesce(companies.employer_registrations, 0) as employer_registrations,
        coalesce(companies.business_id, reported.business_id) as business_id,
        coalesce(companies.name, reported.name) as name,
        coalesce(companies.region_code, reported.region_code) as region_code,
        workforce_months.workforce_month,
        reported.business_id is not null as is_in_workforce_report,
        companies.company_key is null as is_unregistered_employer,
        reported.workers as workers_reported,
        coalesce(companies.registered_workers, 0) as workers_registered,
        companies.reported_wage_total,
        companies.contribution_due,
        companies.contribution_paid,
        companies.months_in_arrears
    from build.employer_companies as companies
    full join reported
        on companies.month = reported.month and companies.business_id = reported.business_id
    left join workforce_months on coalesce(companies.month, reported.month) = workforce_months.month
    -- a company with no workers and no registration owes nothing
    where companies.company_key is not null or reported.workers > 0
),

measured as (
    select
        matched.*,
        coalesce(wages.monthly_minimum_wage, companies.minimum_wage) as minimum_wage,
        coalesce(wages.minimum_wage_year, companies.minimum_wage_year) as minimum_wage_year,
        -- greatest() skips nulls: a company missing from the workforce report has no unregistered count
        case
            when matched.workers_reported is not null
                then greatest(matched.workers_reported - matched.workers_registered, 0)
        end as unregistered_workers,
        matched.reported_wage_total / nullif(matched.workers_registered, 0) as avg_reported_wage,
        worker_wages.workers_in_participant_extract,
        worker_wages.workers_below_minimum,
        worker_wages.contribution_base_idr as worker_contribution_base_idr,
        coalesce(worker_wages.workers_with_wage, 0) > 0 as is_base_from_worker_wages
    from matched
    left join build.employer_companies as companies
        on matched.month = companies.month and matched.company_key = companies.company_key
    left join build.region_minimum_wages as wages
        on matched.is_unregistered_employer and matched.month = wages.month and matched.region_code = wages.region_code
    left join build.employer_worker_wages as worker_wages
        on matched.month = worker_wages.month and matched.company_key = worker_wages.company_key
),

based as (
    select
        measured.*,
        -- per DOMAIN.md: base = min(max(wage, minimum wage), cap); from each worker's wage when the participant
        -- extract has them, else from the average reported wage of the registered workers
        case
            when measured.is_base_from_worker_wages then measured.worker_contribution_base_idr
            when measured.workers_registered > 0
                then measured.workers_registered * least(
                    greatest(measured.avg_reported_wage, measured.minimum_wage),
                    getvariable('contribution_wage_cap_idr')
                )
            else 0
        end as contribution_base,
        -- what one unregistered worker would pay: the average reported wage (the minimum wage when none) floored and capped
        least(
            greatest(coalesce(measured.avg_reported_wage, measured.minimum_wage), measured.minimum_wage),
            getvariable('contribution_wage_cap_idr')
        ) as unregistered_worker_base
    from measured
),

amounts as (
    select
        based.*,
        greatest(coalesce(based.contribution_due, 0) - coalesce(based.contribution_paid, 0), 0) as unpaid,
        based.unregistered_workers * based.unregistered_worker_base * getvariable('contribution_rate_pct') / 100
            as contributions_lost
    from based
)

select
    amounts.month,
    amounts.company_key,
    amounts.employer_id,
    amounts.employer_registrations,
    amounts.business_id,
    amounts.name,
    amounts.region_code,
    amounts.workforce_month,
    amounts.is_in_workforce_report,
    amounts.is_unregistered_employer,
    amounts.workers_reported,
    amounts.workers_registered,
    amounts.unregistered_workers,
    amounts.workers_registered * 100.0 / nullif(amounts.workers_reported, 0) as registration_pct,
    amounts.avg_reported_wage::decimal(20, 2) as avg_reported_wage,
    amounts.minimum_wage,
    amounts.minimum_wage_year,
    amounts.avg_reported_wage < amounts.minimum_wage as wage_below_minimum,
    amounts.workers_in_participant_extract,
    amounts.workers_below_minimum,
    amounts.is_base_from_worker_wages,
    amounts.contribution_base::decimal(20, 2) as contribution_base_idr,
    (amounts.contribution_base * getvariable('contribution_rate_pct') / 100)::decimal(20, 2) as contribution_idr,
    (amounts.contribution_base * getvariable('employer_share_pct') / 100)::decimal(20, 2) as employer_contribution_idr,
    (amounts.contribution_base * getvariable('worker_share_pct') / 100)::decimal(20, 2) as worker_contribution_idr,
    amounts.contribution_due,
    amounts.contribution_paid,
    amounts.unpaid::decimal(20, 2) as unpaid_contributions_idr,
    amounts.contribution_paid * 100.0 / nullif(amounts.contribution_due, 0) as payment_ratio_pct,
    amounts.months_in_arrears,
    coalesce(amounts.months_in_arrears, 0) > 0 or amounts.unpaid > 0 as is_in_arrears,
    amounts.contributions_lost::decimal(20, 2) as estimated_contributions_lost_idr,
    amounts.is_unregistered_employer
    or coalesce(amounts.unregistered_workers, 0) > 0
    or coalesce(amounts.avg_reported_wage < amounts.minimum_wage, false)
    or coalesce(amounts.months_in_arrears, 0) > 0
    or amounts.unpaid > 0 as is_non_compliant
from amounts

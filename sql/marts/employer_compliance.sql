-- one row per month x employer or unregistered company with workers
-- (registrations sharing a business id, NIB, are one employer)
with employer_months as (
    select distinct employers.month
    from staging.employers as employers
),

report_months as (
    select distinct workforce.month
    from staging.workforce as workforce
),

workforce_months as (
    -- for each month of the insurer's registry, the latest workforce report not after it
    select
        employer_months.month,
        max(report_months.month) as workforce_month
    from employer_months
    inner join report_months on employer_months.month >= report_months.month
    group by employer_months.month
),

reported as (
    -- one row per company in that report; a company listed on several lines is summed
    select
        workforce_months.month,
        workforce.business_id,
        arg_max(workforce.name, workforce.workers) as name,
        arg_max(workforce.region_code, workforce.workers) as region_code,
        sum(workforce.workers)::bigint as workers
    from workforce_months
    inner join staging.workforce as workforce on workforce_months.workforce_month = workforce.month
    group by workforce_months.month, workforce.business_id
),

matched as (
    -- the insurer's employers matched to the manpower office's companies by business id (NIB)
    select
        companies.employer_id,
        companies.reported_wage_total,
        companies.contribution_due,
        companies.contribution_paid,
        companies.months_in_arrears,
        reported.workers as workers_reported,
        coalesce(companies.month, reported.month) as month,
        coalesce(companies.company_key, reported.business_id) as company_key,
        coalesce(companies.employer_registrations, 0) as employer_registrations,
        coalesce(companies.business_id, reported.business_id) as business_id,
        coalesce(companies.name, reported.name) as name,
        coalesce(companies.region_code, reported.region_code) as region_code,
        reported.business_id is not null as is_in_workforce_report,
        companies.company_key is null as is_unregistered_employer,
        coalesce(companies.registered_workers, 0) as workers_registered,
        coalesce(companies.minimum_wage, wages.monthly_minimum_wage) as minimum_wage,
        coalesce(companies.minimum_wage_year, wages.minimum_wage_year) as minimum_wage_year
    from temp.employer_companies as companies
    full join reported
        on companies.month = reported.month and companies.business_id = reported.business_id
    -- an unregistered company is held to the minimum wage of its region in the workforce report
    left join build.region_minimum_wages as wages
        on
            companies.company_key is null
            and reported.month = wages.month
            and reported.region_code = wages.region_code
    -- a company with no workers and no registration owes nothing
    where companies.company_key is not null or reported.workers > 0
),

measured as (
    select
        matched.*,
        workforce_months.workforce_month,
        worker_wages.workers_in_participant_extract,
        worker_wages.workers_below_minimum,
        worker_wages.contribution_base_idr as worker_contribution_base_idr,
        -- greatest() skips nulls: a company missing from the workforce report has no unregistered count
        case
            when matched.workers_reported is not null
                then greatest(matched.workers_reported - matched.workers_registered, 0)
        end as unregistered_workers,
        matched.reported_wage_total / nullif(matched.workers_registered, 0) as avg_reported_wage,
        coalesce(worker_wages.workers_with_wage, 0) > 0 as is_base_from_worker_wages
    from matched
    left join workforce_months on matched.month = workforce_months.month
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
        -- one unregistered worker's base: the average reported wage (else the minimum wage), floored and capped
        least(
            greatest(coalesce(measured.avg_reported_wage, measured.minimum_wage), measured.minimum_wage),
            getvariable('contribution_wage_cap_idr')
        ) as unregistered_worker_base,
        greatest(coalesce(measured.contribution_due, 0) - coalesce(measured.contribution_paid, 0), 0) as unpaid
    from measured
),

final as (
    select
        based.month,
        based.company_key,
        based.employer_id,
        based.employer_registrations,
        based.business_id,
        based.name,
        based.region_code,
        based.workforce_month,
        based.is_in_workforce_report,
        based.is_unregistered_employer,
        based.workers_reported,
        based.workers_registered,
        based.unregistered_workers,
        based.minimum_wage,
        based.minimum_wage_year,
        based.workers_in_participant_extract,
        based.workers_below_minimum,
        based.is_base_from_worker_wages,
        based.contribution_due,
        based.contribution_paid,
        based.months_in_arrears,
        -- rupiah amounts to the sen
        based.avg_reported_wage::decimal(20, 2) as avg_reported_wage,
        based.contribution_base::decimal(20, 2) as contribution_base_idr,
        based.unpaid::decimal(20, 2) as unpaid_contributions_idr,
        (based.contribution_base * getvariable('contribution_rate_pct') / 100)::decimal(20, 2) as contribution_idr,
        (based.contribution_base * getvariable('employer_share_pct') / 100)::decimal(20, 2)
            as employer_contribution_idr,
        (based.contribution_base * getvariable('worker_share_pct') / 100)::decimal(20, 2) as worker_contribution_idr,
        (based.unregistered_workers * based.unregistered_worker_base * getvariable('contribution_rate_pct') / 100)
        ::decimal(20, 2) as estimated_contributions_lost_idr,
        based.workers_registered * 100.0 / nullif(based.workers_reported, 0) as registration_pct,
        based.avg_reported_wage < based.minimum_wage as is_wage_below_minimum,
        based.contribution_paid * 100.0 / nullif(based.contribution_due, 0) as payment_ratio_pct,
        coalesce(based.months_in_arrears, 0) > 0 or based.unpaid > 0 as is_in_arrears,
        based.is_unregistered_employer
        or coalesce(based.unregistered_workers, 0) > 0
        or coalesce(based.avg_reported_wage < based.minimum_wage, false)
        or coalesce(based.months_in_arrears, 0) > 0
        or based.unpaid > 0 as is_non_compliant
    from based
)

select
    final.month,
    final.company_key,
    final.employer_id,
    final.employer_registrations,
    final.business_id,
    final.name,
    final.region_code,
    final.workforce_month,
    final.is_in_workforce_report,
    final.is_unregistered_employer,
    final.workers_reported,
    final.workers_registered,
    final.unregistered_workers,
    final.registration_pct,
    final.avg_reported_wage,
    final.minimum_wage,
    final.minimum_wage_year,
    final.is_wage_below_minimum,
    final.workers_in_participant_extract,
    final.workers_below_minimum,
    final.is_base_from_worker_wages,
    final.contribution_base_idr,
    final.contribution_idr,
    final.employer_contribution_idr,
    final.worker_contribution_idr,
    final.contribution_due,
    final.contribution_paid,
    final.unpaid_contributions_idr,
    final.payment_ratio_pct,
    final.months_in_arrears,
    final.is_in_arrears,
    final.estimated_contributions_lost_idr,
    final.is_non_compliant
from final

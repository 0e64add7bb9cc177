-- one row per month x level x code: employers and workers registered against the workforce report, wages, payments
with employers as (
    select
        compliance.month,
        compliance.is_in_workforce_report,
        compliance.is_unregistered_employer,
        compliance.workers_reported,
        compliance.workers_registered,
        compliance.unregistered_workers,
        compliance.is_wage_below_minimum,
        compliance.is_in_arrears,
        compliance.is_non_compliant,
        compliance.contribution_due,
        compliance.contribution_paid,
        compliance.unpaid_contributions_idr,
        compliance.contribution_base_idr,
        compliance.contribution_idr,
        compliance.employer_contribution_idr,
        compliance.worker_contribution_idr,
        compliance.estimated_contributions_lost_idr,
        compliance.region_code,
        regions.region_name,
        regions.province_code,
        regions.province_name,
        nullif(regions.branch_office, '') as branch_office
    from build.employer_compliance as compliance
    inner join ref.regions as regions on compliance.region_code = regions.region_code
),

levels as (
    select
        employers.*,
        'region' as level,
        employers.region_code as code,
        employers.region_name as name
    from employers
    union all
    select
        employers.*,
        'branch' as level,
        employers.branch_office as code,
        'KC ' || upper(employers.branch_office[1]) || lower(employers.branch_office[2:]) as name
    from employers
    where employers.branch_office is not null
    union all
    select
        employers.*,
        'province' as level,
        employers.province_code as code,
        employers.province_name as name
    from employers
    union all
    select
        employers.*,
        'national' as level,
        'ID' as code,
        'Indonesia' as name
    from employers
),

totals as (
    select
        levels.month,
        levels.level,
        levels.code,
        levels.name,
        count(*) filter (where levels.is_in_workforce_report) as employers_reported,
        count(*) filter (where not levels.is_unregistered_employer) as employers_registered,
        count(*) filter (where levels.is_in_workforce_report and not levels.is_unregistered_employer)
            as employers_matched,
        count(*) filter (where levels.is_unregistered_employer) as employers_not_registered,
        coalesce(sum(levels.workers_reported), 0)::bigint as workers_reported,
        sum(levels.workers_registered)::bigint as workers_registered,
        -- workers of reported companies covered by a registration: a company counts at most its reported headcount
        coalesce(sum(levels.workers_reported - levels.unregistered_workers), 0)::bigint as workers_reported_registered,
        coalesce(sum(levels.unregistered_workers), 0)::bigint as unregistered_workers,
        count(*) filter (where levels.is_wage_below_minimum) as underreporting_employers,
        count(*) filter (where levels.is_in_arrears) as arrears_employers,
        count(*) filter (where levels.is_non_compliant) as non_compliant_employers,
        coalesce(sum(levels.contribution_due), 0) as contribution_due,
        coalesce(sum(levels.contribution_paid), 0) as contribution_paid,
        sum(levels.unpaid_contributions_idr) as unpaid_contributions_idr,
        sum(levels.contribution_base_idr) as contribution_base_idr,
        sum(levels.contribution_idr) as contribution_idr,
        sum(levels.employer_contribution_idr) as employer_contribution_idr,
        sum(levels.worker_contribution_idr) as worker_contribution_idr,
        coalesce(sum(levels.estimated_contributions_lost_idr), 0) as estimated_contributions_lost_idr
    from levels
    group by levels.month, levels.level, levels.code, levels.name
),

rates as (
    select
        totals.*,
        totals.workers_reported_registered * 100.0 / nullif(totals.workers_reported, 0) as worker_registration_pct,
        totals.contribution_paid * 100.0 / nullif(totals.contribution_due, 0) as payment_ratio_pct
    from totals
)

select
    rates.month,
    rates.level,
    rates.code,
    rates.name,
    rates.employers_reported,
    rates.employers_registered,
    rates.employers_matched,
    rates.employers_not_registered,
    rates.workers_reported,
    rates.workers_registered,
    rates.unregistered_workers,
    rates.worker_registration_pct,
    rates.underreporting_employers,
    rates.arrears_employers,
    rates.non_compliant_employers,
    rates.contribution_due,
    rates.contribution_paid,
    rates.unpaid_contributions_idr,
    rates.payment_ratio_pct,
    rates.contribution_base_idr,
    rates.contribution_idr,
    rates.employer_contribution_idr,
    rates.worker_contribution_idr,
    rates.estimated_contributions_lost_idr
from rates

-- one row per month x level x code: employers and workers registered against the workforce report, wages, payments
-- (summed per month and region first, then the regions' sums to their branch, province and the nation: every
-- figure is a count or an exact sum, so the same totals as summing the employers at each level)
with regions as (
    -- per month x region: the employers' counts and sums
    select
        compliance.month,
        compliance.region_code,
        count(*) filter (where compliance.is_in_workforce_report) as employers_reported,
        count(*) filter (where not compliance.is_unregistered_employer) as employers_registered,
        count(*) filter (where compliance.is_in_workforce_report and not compliance.is_unregistered_employer)
            as employers_matched,
        count(*) filter (where compliance.is_unregistered_employer) as employers_not_registered,
        sum(compliance.workers_reported) as workers_reported,
        sum(compliance.workers_registered) as workers_registered,
        -- workers of reported companies covered by a registration: a company counts at most its reported headcount
        sum(compliance.workers_reported - compliance.unregistered_workers) as workers_reported_registered,
        sum(compliance.unregistered_workers) as unregistered_workers,
        count(*) filter (where compliance.is_wage_below_minimum) as underreporting_employers,
        count(*) filter (where compliance.is_in_arrears) as arrears_employers,
        count(*) filter (where compliance.is_non_compliant) as non_compliant_employers,
        sum(compliance.contribution_due) as contribution_due,
        sum(compliance.contribution_paid) as contribution_paid,
        sum(compliance.unpaid_contributions_idr) as unpaid_contributions_idr,
        sum(compliance.contribution_base_idr) as contribution_base_idr,
        sum(compliance.contribution_idr) as contribution_idr,
        sum(compliance.employer_contribution_idr) as employer_contribution_idr,
        sum(compliance.worker_contribution_idr) as worker_contribution_idr,
        sum(compliance.estimated_contributions_lost_idr) as estimated_contributions_lost_idr
    from build.employer_compliance as compliance
    group by compliance.month, compliance.region_code
),

employers as (
    select
        regions.*,
        ref_regions.region_name,
        ref_regions.province_code,
        ref_regions.province_name,
        nullif(ref_regions.branch_office, '') as branch_office
    from regions
    inner join ref.regions as ref_regions on regions.region_code = ref_regions.region_code
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
        sum(levels.employers_reported)::bigint as employers_reported,
        sum(levels.employers_registered)::bigint as employers_registered,
        sum(levels.employers_matched)::bigint as employers_matched,
        sum(levels.employers_not_registered)::bigint as employers_not_registered,
        coalesce(sum(levels.workers_reported), 0)::bigint as workers_reported,
        sum(levels.workers_registered)::bigint as workers_registered,
        coalesce(sum(levels.workers_reported_registered), 0)::bigint as workers_reported_registered,
        coalesce(sum(levels.unregistered_workers), 0)::bigint as unregistered_workers,
        sum(levels.underreporting_employers)::bigint as underreporting_employers,
        sum(levels.arrears_employers)::bigint as arrears_employers,
        sum(levels.non_compliant_employers)::bigint as non_compliant_employers,
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

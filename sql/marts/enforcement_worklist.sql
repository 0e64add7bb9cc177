-- one row per month x region x non-compliant employer
-- (ranked: most unregistered workers first, then most unpaid contributions)
with non_compliant as (
    -- only the keys and figures the streaks and the ranking need: the window functions below carry every
    -- column they are given, so the company's other columns are joined back once, at the end
    select
        compliance.month,
        compliance.company_key,
        compliance.region_code,
        compliance.unregistered_workers,
        compliance.unpaid_contributions_idr,
        year(compliance.month) * 12 + month(compliance.month) - 1 as month_index,
        coalesce(compliance.estimated_contributions_lost_idr, 0) + compliance.unpaid_contributions_idr
            as contributions_owed_this_month_idr
    from build.employer_compliance as compliance
    where compliance.is_non_compliant
),

streaks as (
    -- consecutive calendar months of non-compliance share one streak number per company
    select
        non_compliant.*,
        non_compliant.month_index
        - row_number() over (partition by non_compliant.company_key order by non_compliant.month_index) as streak
    from non_compliant
),

counted as (
    select
        streaks.*,
        row_number() over streak_so_far as months_non_compliant,
        min(streaks.month) over streak_so_far as non_compliant_since,
        sum(streaks.contributions_owed_this_month_idr) over streak_so_far as contributions_owed_idr
    from streaks
    window streak_so_far as (
        partition by streaks.company_key, streaks.streak
        order by streaks.month_index
        rows between unbounded preceding and current row
    )
),

ranked as (
    select
        counted.month,
        counted.company_key,
        counted.months_non_compliant,
        counted.non_compliant_since,
        counted.contributions_owed_idr,
        row_number() over (
            partition by counted.month, counted.region_code
            order by
                coalesce(counted.unregistered_workers, 0) desc,
                counted.unpaid_contributions_idr desc,
                counted.contributions_owed_idr desc,
                counted.company_key asc
        ) as priority
    from counted
),

stepped as (
    -- PP 86/2013: two written warnings of 10 working days each, then a fine, then loss of public services;
    -- one step per monthly extract in which the employer is still non-compliant
    select
        compliance.*,
        ranked.months_non_compliant,
        ranked.non_compliant_since,
        ranked.contributions_owed_idr,
        ranked.priority,
        regions.region_name,
        case
            when ranked.months_non_compliant = 1 then 'WRITTEN_WARNING_1'
            when ranked.months_non_compliant = 2 then 'WRITTEN_WARNING_2'
            when ranked.months_non_compliant = 3 then 'FINE'
            else 'NO_PUBLIC_SERVICES'
        end as next_sanction_step,
        case
            when ranked.months_non_compliant = 1 then 'First written warning: comply within 10 working days'
            when ranked.months_non_compliant = 2 then 'Second written warning: comply within 10 working days'
            when ranked.months_non_compliant = 3 then 'Fine of 0.1% per month of the contributions owed'
            else 'Withhold certain public services (permits, tenders) until compliant'
        end as next_sanction,
        case
            when ranked.months_non_compliant >= 3
                then (ranked.contributions_owed_idr * getvariable('fine_pct_per_month') / 100)::decimal(20, 2)
        end as fine_per_month_idr,
        coalesce(compliance.unregistered_workers, 0) as unregistered_workers_count,
        concat_ws(
            ', ',
            case when compliance.is_unregistered_employer then 'employer not registered' end,
            case
                when not compliance.is_unregistered_employer and compliance.unregistered_workers > 0
                    then 'workers not registered'
            end,
            case when compliance.is_wage_below_minimum then 'wage below minimum' end,
            case
                when coalesce(compliance.months_in_arrears, 0) > 0 or compliance.unpaid_contributions_idr > 0
                    then 'arrears'
            end
        ) as reasons,
        strftime(ranked.non_compliant_since, '%Y-%m') as non_compliant_since_month
    from ranked
    inner join build.employer_compliance as compliance
        on ranked.month = compliance.month and ranked.company_key = compliance.company_key
    left join ref.regions as regions on compliance.region_code = regions.region_code
)

select
    stepped.month,
    stepped.region_code,
    stepped.region_name,
    stepped.priority,
    stepped.company_key,
    stepped.employer_id,
    stepped.business_id,
    stepped.name,
    stepped.is_unregistered_employer,
    stepped.workers_reported,
    stepped.workers_registered,
    stepped.unregistered_workers_count as unregistered_workers,
    stepped.is_wage_below_minimum,
    stepped.months_in_arrears,
    stepped.unpaid_contributions_idr,
    stepped.estimated_contributions_lost_idr,
    stepped.contributions_owed_idr,
    stepped.reasons,
    stepped.months_non_compliant,
    stepped.non_compliant_since_month as non_compliant_since,
    stepped.next_sanction_step,
    stepped.next_sanction,
    stepped.fine_per_month_idr
from stepped

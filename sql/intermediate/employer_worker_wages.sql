-- one row per month x registered company with wage-earner participants (PPU_BU) in the participant-level extract
select
    participants.month,
    companies.company_key,
    count(*) as workers_in_participant_extract,
    count(participants.wage) as workers_with_wage,
    count(*) filter (where participants.wage < companies.minimum_wage) as workers_below_minimum,
    -- each worker's contribution base: the wage (the minimum wage when none is reported) floored at the
    -- minimum wage and capped
    sum(
        least(
            greatest(coalesce(participants.wage, companies.minimum_wage), companies.minimum_wage),
            getvariable('contribution_wage_cap_idr')
        )
    ) as contribution_base_idr
from staging.participants as participants
inner join staging.employers as employers
    on participants.month = employers.month and participants.employer_id = employers.employer_id
inner join temp.employer_companies as companies
    on
        employers.month = companies.month
        and coalesce(employers.business_id, 'NPP:' || employers.employer_id) = companies.company_key
where participants.segment = 'PPU_BU'
group by participants.month, companies.company_key

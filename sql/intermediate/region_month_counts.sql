-- one row per month x region x segment x status
-- (from participant-level extracts where a region-month has them, else from pre-aggregated counts)
with from_participants as (
    select
        participants.month,
        participants.region_code,
        participants.segment,
        participants.status,
        count(*) as participants
    from staging.participants as participants
    group by participants.month, participants.region_code, participants.segment, participants.status
),

participant_months as (
    select distinct
        from_participants.month,
        from_participants.region_code
    from from_participants
),

from_counts as (
    select
        counts.month,
        counts.region_code,
        counts.segment,
        counts.status,
        sum(counts.participants) as participants
    from staging.region_counts as counts
    anti join participant_months
        on counts.month = participant_months.month and counts.region_code = participant_months.region_code
    group by counts.month, counts.region_code, counts.segment, counts.status
)

select
    from_participants.month,
    from_participants.region_code,
    from_participants.segment,
    from_participants.status,
    from_participants.participants
from from_participants
union all
select
    from_counts.month,
    from_counts.region_code,
    from_counts.segment,
    from_counts.status,
    from_counts.participants
from from_counts

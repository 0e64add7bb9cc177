-- one row per month x region x segment x status
-- (from participant-level extracts where a region-month has them, else from pre-aggregated counts)
-- The participant-level counts are read from each current load's profile (ops.participant_profile: its rows
-- per month x region x segment x status, stored by ingest with the load; a load that came without one is
-- profiled before the build, flows/participant_profile.py), for the provinces the load is current for
-- (staging.current_loads, the rule staging.current_rows applies to the rows): no participant row is read.
with participant_loads as (
    select
        current_loads.load_id,
        current_loads.province_code,
        current_loads.is_whole_load
    from staging.current_loads as current_loads
    where current_loads.kind = 'participants'
),

from_participants as (
    select
        profile.month,
        profile.region_code,
        profile.segment,
        profile.status,
        sum(profile.participants)::bigint as participants
    from ops.participant_profile as profile
    semi join participant_loads
        on
            profile.load_id = participant_loads.load_id
            and (participant_loads.is_whole_load or left(profile.region_code, 2) = participant_loads.province_code)
    group by profile.month, profile.region_code, profile.segment, profile.status
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

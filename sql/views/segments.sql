-- one row per month x level x code x segment: the report's segment mix (its order is the segments seed's)
select
    month,
    level,
    code,
    segment,
    participants,
    active_participants,
    share_pct
from mart.coverage_by_segment

-- one row per month x level x code x segment: participants of the segment and its share of the scope's participants
with region_segments as (
    select
        counts.month,
        counts.region_code,
        regions.region_name,
        regions.province_code,
        regions.province_name,
        counts.segment,
        nullif(regions.branch_office, '') as branch_office,
        sum(counts.participants) as participants,
        coalesce(sum(counts.participants) filter (where counts.status = 'ACTIVE'), 0) as active_participants
    from build.region_month_counts as counts
    inner join ref.regions as regions on counts.region_code = regions.region_code
    group by all
),

levels as (
    select
        month,
        'region' as level,
        region_code as code,
        segment,
        participants,
        active_participants
    from region_segments
    union all
    select
        month,
        'branch' as level,
        branch_office as code,
        segment,
        sum(participants) as participants,
        sum(active_participants) as active_participants
    from region_segments
    where branch_office is not null
    group by month, branch_office, segment
    union all
    select
        month,
        'province' as level,
        province_code as code,
        segment,
        sum(participants) as participants,
        sum(active_participants) as active_participants
    from region_segments
    group by month, province_code, segment
    union all
    select
        month,
        'national' as level,
        'ID' as code,
        segment,
        sum(participants) as participants,
        sum(active_participants) as active_participants
    from region_segments
    group by month, segment
)

select
    month,
    level,
    code,
    segment,
    participants,
    active_participants,
    participants * 100.0 / nullif(sum(participants) over (partition by month, level, code), 0) as share_pct
from levels

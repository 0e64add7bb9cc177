-- one row per month x level x code: participants, population, coverage, active rate and UHC status
with region_totals as (
    select
        counts.month,
        counts.region_code,
        sum(counts.participants) as participants,
        coalesce(sum(counts.participants) filter (where counts.status = 'ACTIVE'), 0) as active_participants
    from build.region_month_counts as counts
    group by counts.month, counts.region_code
),

regions as (
    select
        region_totals.month,
        region_totals.region_code,
        regions.region_name,
        regions.province_code,
        regions.province_name,
        population.population,
        population.population_period,
        region_totals.participants,
        region_totals.active_participants,
        nullif(regions.branch_office, '') as branch_office
    from region_totals
    inner join ref.regions as regions on region_totals.region_code = regions.region_code
    left join build.region_population as population
        on region_totals.month = population.month and region_totals.region_code = population.region_code
),

levels as (
    select
        regions.month,
        'region' as level,
        regions.region_code as code,
        regions.region_name as name,
        regions.population,
        regions.population_period,
        regions.participants,
        regions.active_participants
    from regions
    union all
    select
        regions.month,
        'branch' as level,
        regions.branch_office as code,
        'KC ' || upper(regions.branch_office[1]) || lower(regions.branch_office[2:]) as name,
        -- a scope's population only when every region in it has one: a partial sum would overstate coverage
        case when count(regions.population) = count(*) then sum(regions.population) end as population,
        -- the oldest semester any of its regions uses
        min(regions.population_period) as population_period,
        sum(regions.participants) as participants,
        sum(regions.active_participants) as active_participants
    from regions
    where regions.branch_office is not null
    group by regions.month, regions.branch_office
    union all
    select
        regions.month,
        'province' as level,
        regions.province_code as code,
        regions.province_name as name,
        -- a scope's population only when every region in it has one: a partial sum would overstate coverage
        case when count(regions.population) = count(*) then sum(regions.population) end as population,
        -- the oldest semester any of its regions uses
        min(regions.population_period) as population_period,
        sum(regions.participants) as participants,
        sum(regions.active_participants) as active_participants
    from regions
    group by regions.month, regions.province_code, regions.province_name
    union all
    select
        regions.month,
        'national' as level,
        'ID' as code,
        'Indonesia' as name,
        -- a scope's population only when every region in it has one: a partial sum would overstate coverage
        case when count(regions.population) = count(*) then sum(regions.population) end as population,
        -- the oldest semester any of its regions uses
        min(regions.population_period) as population_period,
        sum(regions.participants) as participants,
        sum(regions.active_participants) as active_participants
    from regions
    group by regions.month
),

-- regions that reported before but are missing from a month: a scope's sum without them is partial, not low
missing as (
    select
        reporting.month,
        regions.province_code,
        nullif(regions.branch_office, '') as branch_office
    from build.region_reporting_months as reporting
    inner join ref.regions as regions on reporting.region_code = regions.region_code
    where not reporting.is_reported
),

not_reported as (
    select
        missing.month,
        'branch' as level,
        missing.branch_office as code,
        count(*) as regions_not_reported
    from missing
    where missing.branch_office is not null
    group by missing.month, missing.branch_office
    union all
    select
        missing.month,
        'province' as level,
        missing.province_code as code,
        count(*) as regions_not_reported
    from missing
    group by missing.month, missing.province_code
    union all
    select
        missing.month,
        'national' as level,
        'ID' as code,
        count(*) as regions_not_reported
    from missing
    group by missing.month
),

rule_in_force as (
    select
        months.month,
        rules.effective_from,
        rules.min_coverage_pct,
        rules.min_active_rate_pct
    from (select distinct levels.month from levels) as months
    inner join ref.uhc_rules as rules on months.month >= rules.effective_from
    qualify row_number() over (partition by months.month order by rules.effective_from desc) = 1
),

with_pct as (
    select
        levels.*,
        levels.participants * 100.0 / nullif(levels.population, 0) as coverage_pct,
        levels.active_participants * 100.0 / nullif(levels.participants, 0) as active_rate_pct
    from levels
)

select
    with_pct.month,
    with_pct.level,
    with_pct.code,
    with_pct.name,
    with_pct.population,
    with_pct.population_period,
    with_pct.participants,
    with_pct.active_participants,
    with_pct.coverage_pct,
    with_pct.active_rate_pct,
    -- the thresholds of that rule, so a reader (the uhc_lost alert) can say how far a scope is below them
    rule_in_force.min_coverage_pct as uhc_min_coverage_pct,
    rule_in_force.min_active_rate_pct as uhc_min_active_rate_pct,
    coalesce(
        with_pct.coverage_pct >= rule_in_force.min_coverage_pct
        and (
            rule_in_force.min_active_rate_pct is null
            or with_pct.active_rate_pct >= rule_in_force.min_active_rate_pct
        ),
        false
    ) as is_uhc,
    'coverage >= ' || rule_in_force.min_coverage_pct
    || coalesce(' and active rate >= ' || rule_in_force.min_active_rate_pct, '')
    || ' (from ' || rule_in_force.effective_from || ')' as uhc_rule,
    coalesce(not_reported.regions_not_reported, 0) as regions_not_reported,
    coalesce(not_reported.regions_not_reported, 0) > 0 as is_partial
from with_pct
left join rule_in_force on with_pct.month = rule_in_force.month
left join not_reported
    on with_pct.month = not_reported.month and with_pct.level = not_reported.level and with_pct.code = not_reported.code

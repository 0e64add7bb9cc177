-- one row per region of the latest coverage month under a UHC rule: fires where a region once UHC is not now
-- UHC status and the rule in force are mart.coverage's own (sql/marts/coverage.sql), never derived again here.
with latest as (
    select max(coverage.month) as month
    from mart.coverage as coverage
    where coverage.level = 'region'
),

last_uhc as (
    select
        coverage.code,
        max(coverage.month) as month
    from mart.coverage as coverage
    inner join latest on coverage.month < latest.month
    where coverage.level = 'region' and coverage.is_uhc
    group by coverage.code
),

this_month as (
    select
        coverage.code,
        coverage.month,
        coverage.is_uhc,
        coverage.coverage_pct,
        coverage.active_rate_pct,
        coverage.uhc_min_coverage_pct,
        coverage.uhc_min_active_rate_pct,
        last_uhc.month as last_uhc_month,
        -- the criterion that fails (coverage first), to say why in the message
        coalesce(coverage.coverage_pct < coverage.uhc_min_coverage_pct, true) as is_coverage_short
    from mart.coverage as coverage
    inner join latest on coverage.month = latest.month
    left join last_uhc on coverage.code = last_uhc.code
    -- a month with no UHC rule in force has no status to lose
    where coverage.level = 'region' and coverage.uhc_rule is not null
)

select
    'uhc_lost' as rule,
    'region' as level,
    this_month.code,
    this_month.month,
    rule_config.severity,
    this_month.last_uhc_month as previous_month,
    not this_month.is_uhc and this_month.last_uhc_month is not null as fires,
    greatest(
        this_month.uhc_min_coverage_pct - this_month.coverage_pct,
        coalesce(this_month.uhc_min_active_rate_pct - this_month.active_rate_pct, 0),
        0
    ) as gap,
    case when this_month.is_coverage_short then 'coverage_pct' else 'active_rate_pct' end as measure,
    case
        when this_month.is_coverage_short then this_month.coverage_pct else this_month.active_rate_pct
    end as value,
    case
        when this_month.is_coverage_short then last_uhc_coverage.coverage_pct
        else last_uhc_coverage.active_rate_pct
    end as previous_value,
    case
        when this_month.is_coverage_short then this_month.uhc_min_coverage_pct
        else this_month.uhc_min_active_rate_pct
    end as threshold
from this_month
inner join ref.alert_rules as rule_config on rule_config.rule = 'uhc_lost'
left join mart.coverage as last_uhc_coverage
    on
        last_uhc_coverage.level = 'region'
        and this_month.code = last_uhc_coverage.code
        and this_month.last_uhc_month = last_uhc_coverage.month

-- one row per month x region, from the region's first reported month to the latest month any region reported:
-- whether the region reported that month, and the month of its latest figures
-- (a late office is shown as not reported, never as its old figures passed off as this month's)
with reported as (
    select distinct
        counts.month,
        counts.region_code
    from build.region_month_counts as counts
),

spans as (
    select
        reported.region_code,
        min(reported.month) as first_month,
        (select max(everything.month) from reported as everything) as last_month
    from reported
    group by reported.region_code
),

months as (
    select
        spans.region_code,
        unnest(generate_series(spans.first_month, spans.last_month, interval 1 month))::date as month
    from spans
),

flagged as (
    select
        months.month,
        months.region_code,
        reported.month is not null as is_reported
    from months
    left join reported on months.month = reported.month and months.region_code = reported.region_code
),

with_last as (
    select
        flagged.*,
        max(case when flagged.is_reported then flagged.month end) over (
            partition by flagged.region_code order by flagged.month rows between unbounded preceding and current row
        ) as reported_month
    from flagged
)

select
    with_last.month,
    with_last.region_code,
    with_last.is_reported,
    with_last.reported_month,
    datediff('month', with_last.reported_month, with_last.month) as months_not_reported
from with_last

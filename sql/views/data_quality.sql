-- one row per expectation of the run that published the marts shown
-- (a `jkn check` of staged files since is not it); marts published by `jkn metrics` alone have no ops.runs row:
-- then the newest checks
with latest as (
    select
        run_id,
        max(checked_at) as checked_at
    from ops.dq_results
    group by run_id
    order by
        run_id in (
            select runs.run_id from ops.runs as runs
            where runs.status = 'completed'
        ) desc,
        checked_at desc
    limit 1
)

select
    results.run_id,
    latest.checked_at,
    results.suite,
    results.expectation,
    results.severity,
    results.success,
    results.observed
from ops.dq_results as results
inner join latest on results.run_id = latest.run_id

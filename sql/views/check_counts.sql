-- one row per database: how many expectations the latest data-quality run checked, failed, and failed at severity
-- critical ("this month"'s data-quality action, flows/actions.py)
with latest as (
    select run_id from ops.dq_results
    group by run_id
    order by max(checked_at) desc
    limit 1
)

select
    count(*) filter (where not results.success) as checks_failed,
    count(*) filter (where not results.success and results.severity = 'critical') as critical_checks_failed,
    count(*) as checks_run
from ops.dq_results as results
inner join latest on results.run_id = latest.run_id

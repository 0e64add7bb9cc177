-- one row per open alert, as `jkn status` lists it
select
    rule,
    level,
    code,
    severity,
    first_month,
    last_month
from ops.alerts
where state = 'open'

-- one row per month x level x code: the forecast's range (the report's "projected" cells, flows/report_views.py)
select
    month,
    code,
    level,
    projected_earliest_month,
    projected_latest_month,
    forecast_horizon_month
from mart.trajectory

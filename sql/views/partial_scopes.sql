-- one row per month x level x code of a branch, province or the nation that lacks regions not reported that month:
-- how many (`jkn status`'s note and the report's "partial" mark, flows/missing_regions.py)
select
    month,
    level,
    code,
    regions_not_reported
from mart.coverage
where is_partial

-- one row per live load x province it is current for: which load supplies each kind x period x province
-- (the one "current file" rule: a province's rows come from the newest live load covering it; a whole-country
-- file covers every province, a province file, `<kind>_<period>_p<province>`, its own; flows/ingest/slices.py).
-- Every staging view reads its rows through it, and the writer's bookkeeping (publish, backfill) too.
with provinces as (
    select distinct left(regions.region_code, 2) as province_code
    from ref.regions as regions
),

covering as (
    select
        load_log.kind,
        load_log.period,
        load_log.load_id,
        load_log.status,
        provinces.province_code,
        -- counted before qualify: every province the load covers
        count(*) over (partition by load_log.load_id) as provinces_covered
    from ops.load_log as load_log
    inner join provinces
        on coalesce(load_log.province_code, provinces.province_code) = provinces.province_code
    where load_log.status in ('staged', 'published')
    qualify row_number() over (
        partition by load_log.kind, load_log.period, provinces.province_code order by load_log.load_id desc
    ) = 1
)

select
    covering.kind,
    covering.period,
    covering.load_id,
    covering.status,
    covering.province_code,
    -- a load current for all it covers is read whole (the usual case, no per-row test)
    count(*) over (partition by covering.load_id) = covering.provinces_covered as is_whole_load
from covering

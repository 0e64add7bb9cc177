-- one row per month x participant (pseudonymised), from the current file of each month and province
-- (a province's rows come from the newest live load covering it: a whole-country file covers every province,
-- a province file, `<kind>_<period>_p<province>`, its own; flows/ingest/slices.py)
with provinces as (
    select distinct left(regions.region_code, 2) as province_code
    from ref.regions as regions
),

covering as (
    select
        load_log.load_id,
        provinces.province_code,
        -- counted before qualify: every province the load covers
        count(*) over (partition by load_log.load_id) as provinces_covered
    from ops.load_log as load_log
    inner join provinces
        on coalesce(load_log.province_code, provinces.province_code) = provinces.province_code
    where load_log.kind = 'participants' and load_log.status in ('staged', 'published')
    qualify row_number() over (
        partition by load_log.period, provinces.province_code order by load_log.load_id desc
    ) = 1
),

current_slices as (
    select
        covering.load_id,
        covering.province_code,
        count(*) over (partition by covering.load_id) = covering.provinces_covered as is_whole_load
    from covering
),

whole_loads as (
    select current_slices.load_id
    from current_slices
    where current_slices.is_whole_load
),

partial_slices as (
    select
        current_slices.load_id,
        current_slices.province_code
    from current_slices
    where not current_slices.is_whole_load
),

-- a load current for all it covers is read whole (the usual case, no per-row test); one partly
-- replaced by a province file only for the provinces it still supplies
current_rows as (
    select participants.*
    from raw.participants as participants
    where participants.load_id in (select whole_loads.load_id from whole_loads)
    union all
    select participants.*
    from raw.participants as participants
    semi join partial_slices
        on
            participants.load_id = partial_slices.load_id
            and left(participants.region_code, 2) = partial_slices.province_code
)

select
    participants.month,
    participants.card_no,
    participants.person_key,
    participants.sex,
    participants.birth_year,
    participants.region_code,
    participants.segment,
    participants.status,
    participants.employer_id,
    participants.wage,
    participants.file_name
from current_rows as participants

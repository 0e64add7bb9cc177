-- one row per month x participant (pseudonymised), from the current file of each month
with current_files as (
    select load_log.load_id
    from ops.load_log as load_log
    where load_log.kind = 'participants' and load_log.status in ('staged', 'published')
    qualify row_number() over (partition by load_log.period order by load_log.load_id desc) = 1
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
from raw.participants as participants
where participants.load_id in (select current_files.load_id from current_files)
